//! Products.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use fleetdesk_store::MultiBackend;

use super::schema::products;
use super::{DbConn, contains_pattern, lower};

/// A product row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: String,
    pub tenant_id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    /// JSON: `{"email": "...", "web": true, "api": true}`.
    pub channels: String,
    pub default_assignee_id: Option<String>,
    pub lead_id: Option<String>,
    /// JSON: the SLA policy.
    pub sla_policy: String,
    /// JSON: the product's own triage rules; `None`: the shipped defaults.
    pub triage_rules: Option<String>,
    pub triage_rules_version: i64,
    pub status: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What a PATCH may change; `None` leaves a field.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = products)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub channels: Option<String>,
    pub default_assignee_id: Option<Option<String>>,
    pub lead_id: Option<Option<String>>,
    pub sla_policy: Option<String>,
    pub triage_rules: Option<Option<String>>,
    pub triage_rules_version: Option<i64>,
    pub status: Option<String>,
}

pub fn insert(conn: &mut DbConn, row: &ProductRow) -> QueryResult<()> {
    diesel::insert_into(products::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<ProductRow>> {
    products::table
        .filter(products::tenant_id.eq(tenant_id))
        .filter(products::id.eq(id))
        .first(conn)
        .optional()
}

pub fn key_taken(conn: &mut DbConn, tenant_id: &str, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        products::table
            .filter(products::tenant_id.eq(tenant_id))
            .filter(products::key.eq(key)),
    ))
    .get_result(conn)
}

fn filtered<'a>(
    tenant_id: &'a str,
    status: Option<&'a str>,
    q: Option<&'a str>,
) -> products::BoxedQuery<'a, MultiBackend> {
    let mut query = products::table
        .filter(products::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(s) = status {
        query = query.filter(products::status.eq(s));
    }
    if let Some(q) = q {
        let p = contains_pattern(q);
        query = query.filter(
            lower(products::name)
                .like(p.clone())
                .escape('\\')
                .or(lower(products::key).like(p).escape('\\')),
        );
    }
    query
}

/// One page of the tenant's products by name, and the total.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    status: Option<&str>,
    q: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<ProductRow>, i64)> {
    let total = filtered(tenant_id, status, q).count().get_result(conn)?;
    let rows = filtered(tenant_id, status, q)
        .order((products::name.asc(), products::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

/// Writes `changes` if the version is still `expected`; false when it moved on.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    expected: i64,
    changes: &ProductChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        products::table
            .filter(products::id.eq(id))
            .filter(products::version.eq(expected)),
    )
    .set((
        changes,
        products::version.eq(expected + 1),
        products::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
