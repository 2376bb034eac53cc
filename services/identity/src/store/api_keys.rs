//! API keys: a public prefix and the SHA-256 of the whole key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::api_keys;

/// An API key row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub permissions: String,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &ApiKeyRow) -> QueryResult<()> {
    diesel::insert_into(api_keys::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_by_prefix(conn: &mut DbConn, prefix: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::prefix.eq(prefix))
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .filter(api_keys::id.eq(id))
        .first(conn)
        .optional()
}

/// One page of the tenant's keys, of one user when given, newest first.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ApiKeyRow>, i64)> {
    let query = || {
        let mut q = api_keys::table
            .filter(api_keys::tenant_id.eq(tenant_id))
            .into_boxed();
        if let Some(user) = user_id {
            q = q.filter(api_keys::user_id.eq(user));
        }
        q
    };
    let total = query().count().get_result(conn)?;
    let rows = query()
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(api_keys::table.find(id))
        .execute(conn)
        .map(drop)
}

pub fn record_use(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(now))
        .execute(conn)
        .map(drop)
}
