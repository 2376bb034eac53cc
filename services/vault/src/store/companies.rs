//! The read model of tickets' companies: which company ids a credential may name.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::companies;

/// A company as the vault knows it.
#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = companies)]
pub struct CompanyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub identifier: String,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<CompanyRow>> {
    companies::table
        .filter(companies::tenant_id.eq(tenant_id))
        .filter(companies::id.eq(id))
        .first(conn)
        .optional()
}

/// Inserts or replaces a company.
pub fn upsert(conn: &mut DbConn, row: &CompanyRow) -> QueryResult<()> {
    let n = diesel::update(companies::table.filter(companies::id.eq(&row.id)))
        .set(row)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(companies::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(companies::table.filter(companies::id.eq(id))).execute(conn)
}

/// Names of these companies, by id.
pub fn names(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    companies::table
        .filter(companies::id.eq_any(ids))
        .select((companies::id, companies::name))
        .load(conn)
}
