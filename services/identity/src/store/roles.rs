//! Roles.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{roles, user_roles, users};
use super::users::UserRow;

/// A role row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = roles)]
pub struct RoleRow {
    pub id: String,
    pub tenant_id: String,
    pub moniker: String,
    pub title: String,
    pub description: String,
    pub permissions: String,
    pub system: i32,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Fields a PATCH may change.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = roles)]
pub struct RoleChanges {
    pub moniker: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &RoleRow) -> QueryResult<()> {
    diesel::insert_into(roles::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// The tenant's role with this id or moniker.
pub fn find(
    conn: &mut DbConn,
    tenant_id: &str,
    id_or_moniker: &str,
) -> QueryResult<Option<RoleRow>> {
    roles::table
        .filter(roles::tenant_id.eq(tenant_id))
        .filter(
            roles::id
                .eq(id_or_moniker)
                .or(roles::moniker.eq(id_or_moniker)),
        )
        .first(conn)
        .optional()
}

pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<RoleRow>, i64)> {
    let total = roles::table
        .filter(roles::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)?;
    let rows = roles::table
        .filter(roles::tenant_id.eq(tenant_id))
        .order((roles::system.desc(), roles::moniker.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

/// Roles of a user.
pub fn of_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<RoleRow>> {
    user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .order(roles::moniker.asc())
        .select(roles::all_columns)
        .load(conn)
}

/// Writes `changes` if the version is still `expected`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    expected: i64,
    changes: &RoleChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        roles::table
            .filter(roles::id.eq(id))
            .filter(roles::version.eq(expected)),
    )
    .set((
        changes,
        roles::version.eq(expected + 1),
        roles::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(roles::table.find(id))
        .execute(conn)
        .map(drop)
}

/// One page of the users holding a role, and their count.
/// The ids of every holder of a role.
pub fn holder_ids(conn: &mut DbConn, role_id: &str) -> QueryResult<Vec<String>> {
    user_roles::table
        .filter(user_roles::role_id.eq(role_id))
        .select(user_roles::user_id)
        .load(conn)
}

pub fn users_with(
    conn: &mut DbConn,
    role_id: &str,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    let total = user_roles::table
        .filter(user_roles::role_id.eq(role_id))
        .count()
        .get_result(conn)?;
    let rows = user_roles::table
        .inner_join(users::table)
        .filter(user_roles::role_id.eq(role_id))
        .order((users::created_at.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(users::all_columns)
        .load(conn)?;
    Ok((rows, total))
}
