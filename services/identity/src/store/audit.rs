//! The audit log's rows. There is no update or delete here: the log is append-only.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use fleetdesk_store::MultiBackend;

use super::DbConn;
use super::schema::audit_log;

// `NULL` for `None` rather than `DEFAULT`, so diesel keeps the insert (one per event) prepared.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct AuditRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub summary: String,
    pub source: String,
    pub trace_id: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
}

/// Filters of `GET /audit`.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// Inserts one row: on the concrete connection, as it is written for every event.
pub fn insert(conn: &mut DbConn, row: &AuditRow) -> QueryResult<()> {
    fleetdesk_store::concrete!(conn, |c| diesel::insert_into(audit_log::table)
        .values(row)
        .execute(c))
    .map(|_| ())
}

fn filtered<'a>(tenant_id: &'a str, f: &'a AuditFilter) -> audit_log::BoxedQuery<'a, MultiBackend> {
    let mut q = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .into_boxed();
    if let Some(v) = &f.entity_type {
        q = q.filter(audit_log::entity_type.eq(v));
    }
    if let Some(v) = &f.entity_id {
        q = q.filter(audit_log::entity_id.eq(v));
    }
    if let Some(v) = &f.actor {
        q = q.filter(audit_log::actor.eq(v));
    }
    if let Some(v) = &f.action {
        q = q.filter(audit_log::action.eq(v));
    }
    if let Some(v) = f.from {
        q = q.filter(audit_log::occurred_at.ge(v));
    }
    if let Some(v) = f.to {
        q = q.filter(audit_log::occurred_at.lt(v));
    }
    q
}

/// One tenant's rows, newest first, and how many match in all.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AuditRow>, i64)> {
    let total = filtered(tenant_id, filter).count().get_result(conn)?;
    let rows = filtered(tenant_id, filter)
        .order((audit_log::occurred_at.desc(), audit_log::id.desc()))
        .offset(offset)
        .limit(limit)
        .load(conn)?;
    Ok((rows, total))
}
