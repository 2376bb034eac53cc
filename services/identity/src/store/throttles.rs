//! Failed-login counters.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::login_throttles;

/// A counter row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = login_throttles)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, key: &str) -> QueryResult<Option<ThrottleRow>> {
    login_throttles::table.find(key).first(conn).optional()
}

/// Stores the counter (insert or replace).
pub fn save(conn: &mut DbConn, row: &ThrottleRow) -> QueryResult<()> {
    let n = diesel::update(login_throttles::table.find(&row.key))
        .set((
            login_throttles::failures.eq(row.failures),
            login_throttles::locked_until.eq(row.locked_until),
            login_throttles::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(login_throttles::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn clear(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    diesel::delete(login_throttles::table.find(key))
        .execute(conn)
        .map(drop)
}
