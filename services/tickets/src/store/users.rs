//! The read model of identity's users: who may be assigned tickets.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::users;

/// A user as tickets knows them.
#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    /// JSON array of effective permission nodes.
    pub permissions: String,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .first(conn)
        .optional()
}

/// Inserts or replaces a user.
pub fn upsert(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    let n = diesel::update(users::table.filter(users::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(users::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Sets a known user's status.
pub fn set_status(
    conn: &mut DbConn,
    id: &str,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((users::status.eq(status), users::updated_at.eq(now)))
        .execute(conn)
        .map(drop)
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(users::table.filter(users::id.eq(id)))
        .execute(conn)
        .map(drop)
}

/// A user by id in any tenant (tests and diagnostics).
pub fn find_any(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table.filter(users::id.eq(id)).first(conn).optional()
}
