//! Credentials and every version of their field values.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::{credential_values, credentials};

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = credentials)]
pub struct CredentialRow {
    pub id: String,
    pub tenant_id: String,
    pub type_id: String,
    pub company_id: String,
    pub name: String,
    pub name_lower: String,
    pub notes: String,
    /// The data key, wrapped by KEK `kek_version`.
    pub data_key: String,
    pub kek_version: i32,
    pub version: i64,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One version of one field's value; `value` is sealed when `secure`.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = credential_values)]
pub struct ValueRow {
    pub credential_id: String,
    pub field_id: String,
    pub version: i32,
    pub secure: bool,
    pub value: Option<String>,
    pub current: bool,
    pub changed_by: String,
    pub changed_at: NaiveDateTime,
    pub restored_from: Option<i32>,
}

/// List filters.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub company_id: Option<String>,
    pub type_id: Option<String>,
    /// A `LIKE` pattern over the lower-cased name.
    pub name_like: Option<String>,
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<CredentialRow>> {
    credentials::table
        .filter(credentials::tenant_id.eq(tenant_id))
        .filter(credentials::id.eq(id))
        .first(conn)
        .optional()
}

pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<CredentialRow>, i64)> {
    let query = || {
        let mut q = credentials::table
            .filter(credentials::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed();
        if let Some(c) = &filter.company_id {
            q = q.filter(credentials::company_id.eq(c.clone()));
        }
        if let Some(t) = &filter.type_id {
            q = q.filter(credentials::type_id.eq(t.clone()));
        }
        if let Some(p) = &filter.name_like {
            q = q.filter(credentials::name_lower.like(p.clone()));
        }
        q
    };
    let rows = query()
        .order((credentials::name_lower.asc(), credentials::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    let total = query().count().get_result(conn)?;
    Ok((rows, total))
}

pub fn insert(conn: &mut DbConn, row: &CredentialRow) -> QueryResult<()> {
    diesel::insert_into(credentials::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Bumps the version (and name, notes) if still at `version`; false when it moved on.
pub fn touch(
    conn: &mut DbConn,
    row: &CredentialRow,
    name: &str,
    notes: &str,
    by: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        credentials::table
            .filter(credentials::id.eq(&row.id))
            .filter(credentials::version.eq(row.version)),
    )
    .set((
        credentials::name.eq(name),
        credentials::name_lower.eq(super::lower(name)),
        credentials::notes.eq(notes),
        credentials::version.eq(row.version + 1),
        credentials::updated_by.eq(by),
        credentials::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(credential_values::table.filter(credential_values::credential_id.eq(id)))
        .execute(conn)?;
    diesel::delete(credentials::table.filter(credentials::id.eq(id)))
        .execute(conn)
        .map(drop)
}

/// Deletes every credential of a type with their values; returns how many.
pub fn delete_of_type(conn: &mut DbConn, type_id: &str) -> QueryResult<i64> {
    let ids: Vec<String> = credentials::table
        .filter(credentials::type_id.eq(type_id))
        .select(credentials::id)
        .load(conn)?;
    for chunk in ids.chunks(500) {
        diesel::delete(
            credential_values::table.filter(credential_values::credential_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    let n = diesel::delete(credentials::table.filter(credentials::type_id.eq(type_id)))
        .execute(conn)?;
    Ok(n as i64)
}

/// Every credential of a type (to check a change of its fields).
pub fn of_type(conn: &mut DbConn, type_id: &str) -> QueryResult<Vec<CredentialRow>> {
    credentials::table
        .filter(credentials::type_id.eq(type_id))
        .order(credentials::id.asc())
        .load(conn)
}

/// The current value rows of these credentials.
pub fn current_values(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<ValueRow>> {
    credential_values::table
        .filter(credential_values::credential_id.eq_any(ids))
        .filter(credential_values::current.eq(true))
        .order((
            credential_values::credential_id.asc(),
            credential_values::field_id.asc(),
        ))
        .load(conn)
}

/// A field value to write.
#[derive(Debug, Clone)]
pub struct NewValue<'a> {
    pub credential_id: &'a str,
    pub field_id: &'a str,
    pub secure: bool,
    /// Sealed when `secure`; `None` clears the field.
    pub value: Option<String>,
    pub by: &'a str,
    pub at: NaiveDateTime,
    pub restored_from: Option<i32>,
}

/// Writes a new current version of a field (the previous one is kept as history).
pub fn set_value(conn: &mut DbConn, v: NewValue<'_>) -> QueryResult<i32> {
    let NewValue {
        credential_id,
        field_id,
        secure,
        value,
        by,
        at: now,
        restored_from,
    } = v;
    let last: Option<i32> = credential_values::table
        .filter(credential_values::credential_id.eq(credential_id))
        .filter(credential_values::field_id.eq(field_id))
        .select(diesel::dsl::max(credential_values::version))
        .first(conn)?;
    diesel::update(
        credential_values::table
            .filter(credential_values::credential_id.eq(credential_id))
            .filter(credential_values::field_id.eq(field_id))
            .filter(credential_values::current.eq(true)),
    )
    .set(credential_values::current.eq(false))
    .execute(conn)?;
    let version = last.unwrap_or(0) + 1;
    diesel::insert_into(credential_values::table)
        .values(&ValueRow {
            credential_id: credential_id.to_owned(),
            field_id: field_id.to_owned(),
            version,
            secure,
            value,
            current: true,
            changed_by: by.to_owned(),
            changed_at: now,
            restored_from,
        })
        .execute(conn)?;
    Ok(version)
}

/// Inserts first versions (of a new credential).
pub fn insert_values(conn: &mut DbConn, rows: &[ValueRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Pg(c) => diesel::insert_into(credential_values::table)
            .values(rows)
            .execute(c)
            .map(drop),
        // SQLite: one writer, no round trips; a statement per row costs nothing.
        DbConn::Sqlite(_) => rows.iter().try_for_each(|r| {
            diesel::insert_into(credential_values::table)
                .values(r)
                .execute(conn)
                .map(drop)
        }),
    }
}

/// Every version of one field, newest first.
pub fn history(
    conn: &mut DbConn,
    credential_id: &str,
    field_id: &str,
) -> QueryResult<Vec<ValueRow>> {
    credential_values::table
        .filter(credential_values::credential_id.eq(credential_id))
        .filter(credential_values::field_id.eq(field_id))
        .order(credential_values::version.desc())
        .load(conn)
}

/// One version of one field.
pub fn value_version(
    conn: &mut DbConn,
    credential_id: &str,
    field_id: &str,
    version: i32,
) -> QueryResult<Option<ValueRow>> {
    credential_values::table
        .filter(credential_values::credential_id.eq(credential_id))
        .filter(credential_values::field_id.eq(field_id))
        .filter(credential_values::version.eq(version))
        .first(conn)
        .optional()
}
