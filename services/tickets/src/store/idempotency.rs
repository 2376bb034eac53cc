//! `Idempotency-Key`: the first response to a create, kept 24 h per tenant and caller.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::idempotency_keys;

/// A remembered response.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub tenant_id: String,
    pub caller: String,
    pub key: String,
    /// SHA-256 of the request body (and path), hex.
    pub request_hash: String,
    pub status: i32,
    pub body: String,
    pub created_at: NaiveDateTime,
}

/// The remembered response for a key, if it is younger than `since`.
pub fn find(
    conn: &mut DbConn,
    tenant_id: &str,
    caller: &str,
    key: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<IdempotencyRow>> {
    idempotency_keys::table
        .filter(idempotency_keys::tenant_id.eq(tenant_id))
        .filter(idempotency_keys::caller.eq(caller))
        .filter(idempotency_keys::key.eq(key))
        .filter(idempotency_keys::created_at.gt(since))
        .first(conn)
        .optional()
}

/// Remembers a response; an expired row (older than `since`) for the same key is replaced.
/// A concurrent first use of the key fails this insert on the primary key.
pub fn insert(conn: &mut DbConn, row: &IdempotencyRow, since: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(&row.tenant_id))
            .filter(idempotency_keys::caller.eq(&row.caller))
            .filter(idempotency_keys::key.eq(&row.key))
            .filter(idempotency_keys::created_at.le(since)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Forgets keys older than `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
        .execute(conn)
}
