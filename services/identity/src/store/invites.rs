//! Invitations to join a tenant.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::invites;

/// An invite row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = invites)]
pub struct InviteRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub name: String,
    pub roles: String,
    pub token_hash: String,
    pub invited_by: String,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &InviteRow) -> QueryResult<()> {
    diesel::insert_into(invites::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<InviteRow>> {
    invites::table
        .filter(invites::token_hash.eq(hash))
        .first(conn)
        .optional()
}

/// Marks the invite accepted, only once; false when it already was.
pub fn accept(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        invites::table
            .filter(invites::id.eq(id))
            .filter(invites::accepted_at.is_null()),
    )
    .set(invites::accepted_at.eq(now))
    .execute(conn)?;
    Ok(n == 1)
}
