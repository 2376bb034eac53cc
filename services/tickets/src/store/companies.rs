//! Companies (customer accounts) and their email domains.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use fleetdesk_store::MultiBackend;

use super::schema::{companies, company_domains};
use super::{DbConn, contains_pattern, lower};

/// A company row.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = companies)]
pub struct CompanyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub identifier: String,
    /// JSON array of domains.
    pub email_domains: String,
    /// JSON object, readable only with `company.read.address`.
    pub address: Option<String>,
    pub notes: String,
    pub external_ref: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What a PATCH may change.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = companies)]
pub struct CompanyChanges {
    pub name: Option<String>,
    pub identifier: Option<String>,
    pub email_domains: Option<String>,
    pub address: Option<Option<String>>,
    pub notes: Option<String>,
    pub external_ref: Option<Option<String>>,
}

pub fn insert(conn: &mut DbConn, row: &CompanyRow) -> QueryResult<()> {
    diesel::insert_into(companies::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find(conn: &mut DbConn, tenant_id: &str, id: &str) -> QueryResult<Option<CompanyRow>> {
    companies::table
        .filter(companies::tenant_id.eq(tenant_id))
        .filter(companies::id.eq(id))
        .first(conn)
        .optional()
}

pub fn identifier_taken(
    conn: &mut DbConn,
    tenant_id: &str,
    identifier: &str,
    except: Option<&str>,
) -> QueryResult<bool> {
    let mut q = companies::table
        .filter(companies::tenant_id.eq(tenant_id))
        .filter(companies::identifier.eq(identifier))
        .select(companies::id)
        .into_boxed();
    if let Some(id) = except {
        q = q.filter(companies::id.ne(id));
    }
    Ok(q.first::<String>(conn).optional()?.is_some())
}

/// The company a domain belongs to, if any.
pub fn owner_of_domain(
    conn: &mut DbConn,
    tenant_id: &str,
    domain: &str,
) -> QueryResult<Option<String>> {
    company_domains::table
        .filter(company_domains::tenant_id.eq(tenant_id))
        .filter(company_domains::domain.eq(domain))
        .select(company_domains::company_id)
        .first(conn)
        .optional()
}

/// Replaces the domains of a company.
pub fn set_domains(
    conn: &mut DbConn,
    tenant_id: &str,
    company_id: &str,
    domains: &[String],
) -> QueryResult<()> {
    diesel::delete(company_domains::table.filter(company_domains::company_id.eq(company_id)))
        .execute(conn)?;
    for d in domains {
        diesel::insert_into(company_domains::table)
            .values((
                company_domains::tenant_id.eq(tenant_id),
                company_domains::domain.eq(d),
                company_domains::company_id.eq(company_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn filtered<'a>(tenant_id: &'a str, q: Option<&'a str>) -> companies::BoxedQuery<'a, MultiBackend> {
    let mut query = companies::table
        .filter(companies::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(q) = q {
        let p = contains_pattern(q);
        let by_domain = company_domains::table
            .filter(company_domains::tenant_id.eq(tenant_id))
            .filter(company_domains::domain.like(p.clone()).escape('\\'))
            .select(company_domains::company_id);
        query = query.filter(
            lower(companies::name)
                .like(p.clone())
                .escape('\\')
                .or(lower(companies::identifier).like(p).escape('\\'))
                .or(companies::id.eq_any(by_domain)),
        );
    }
    query
}

/// One page of the tenant's companies by name, and the total.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    q: Option<&str>,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<CompanyRow>, i64)> {
    let total = filtered(tenant_id, q).count().get_result(conn)?;
    let rows = filtered(tenant_id, q)
        .order((companies::name.asc(), companies::id.asc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}

pub fn update(
    conn: &mut DbConn,
    id: &str,
    expected: i64,
    changes: &CompanyChanges,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        companies::table
            .filter(companies::id.eq(id))
            .filter(companies::version.eq(expected)),
    )
    .set((
        changes,
        companies::version.eq(expected + 1),
        companies::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a company (its domains go with it).
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(company_domains::table.filter(company_domains::company_id.eq(id)))
        .execute(conn)?;
    diesel::delete(companies::table.filter(companies::id.eq(id)))
        .execute(conn)
        .map(drop)
}
