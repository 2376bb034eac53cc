//! Tenants.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::tenants;

/// A tenant row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub settings: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &TenantRow) -> QueryResult<()> {
    diesel::insert_into(tenants::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<TenantRow>> {
    tenants::table.find(id).first(conn).optional()
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    tenants::table.count().get_result(conn)
}

/// Writes name and settings if the version is still `expected`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    expected: i64,
    name: &str,
    settings: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        tenants::table
            .filter(tenants::id.eq(id))
            .filter(tenants::version.eq(expected)),
    )
    .set((
        tenants::name.eq(name),
        tenants::settings.eq(settings),
        tenants::version.eq(expected + 1),
        tenants::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
