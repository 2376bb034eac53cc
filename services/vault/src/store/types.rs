//! Credential types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{credential_types, credentials};

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = credential_types)]
pub struct TypeRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_lower: String,
    pub icon: Option<String>,
    pub permission_scope: Option<String>,
    /// JSON array of `FieldDef`.
    pub fields: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = credential_types)]
pub struct TypeChanges {
    pub name: Option<String>,
    pub name_lower: Option<String>,
    pub icon: Option<Option<String>>,
    pub permission_scope: Option<Option<String>>,
    pub fields: Option<String>,
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<TypeRow>> {
    credential_types::table
        .filter(credential_types::tenant_id.eq(tenant_id))
        .filter(credential_types::id.eq(id))
        .first(conn)
        .optional()
}

pub fn find_by_name(
    conn: &mut DbConn,
    tenant_id: &str,
    name: &str,
) -> QueryResult<Option<TypeRow>> {
    credential_types::table
        .filter(credential_types::tenant_id.eq(tenant_id))
        .filter(credential_types::name_lower.eq(super::lower(name)))
        .first(conn)
        .optional()
}

pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<TypeRow>, i64)> {
    let rows = credential_types::table
        .filter(credential_types::tenant_id.eq(tenant_id))
        .order((
            credential_types::name_lower.asc(),
            credential_types::id.asc(),
        ))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    let total = credential_types::table
        .filter(credential_types::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)?;
    Ok((rows, total))
}

pub fn insert(conn: &mut DbConn, row: &TypeRow) -> QueryResult<()> {
    diesel::insert_into(credential_types::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Applies `changes` if the type is still at `version`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    version: i64,
    changes: &TypeChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = credential_types::table
        .filter(credential_types::id.eq(id))
        .filter(credential_types::version.eq(version));
    let n = if changes.name.is_none()
        && changes.icon.is_none()
        && changes.permission_scope.is_none()
        && changes.fields.is_none()
    {
        diesel::update(target)
            .set((
                credential_types::version.eq(version + 1),
                credential_types::updated_at.eq(now),
            ))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set((
                changes,
                credential_types::version.eq(version + 1),
                credential_types::updated_at.eq(now),
            ))
            .execute(conn)?
    };
    Ok(n == 1)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(credential_types::table.filter(credential_types::id.eq(id)))
        .execute(conn)
        .map(drop)
}

/// How many credentials each of these types has.
pub fn credential_counts(
    conn: &mut DbConn,
    type_ids: &[String],
) -> QueryResult<Vec<(String, i64)>> {
    credentials::table
        .filter(credentials::type_id.eq_any(type_ids))
        .group_by(credentials::type_id)
        .select((credentials::type_id, diesel::dsl::count_star()))
        .load(conn)
}
