//! The audit log's rows. There is no update or delete here: the log is append-only.

use chrono::NaiveDateTime;
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, Nullable, Text, Timestamp};
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

/// Inserts `rows` as one statement of one shape on PostgreSQL (each column goes as an array,
/// so the statement is prepared once whatever the number of rows), one by one on SQLite.
pub fn insert_all(conn: &mut DbConn, rows: &[AuditRow]) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) => AuditRows::of(rows).execute(c).map(|_| ()),
        DbConn::Sqlite(_) => rows.iter().try_for_each(|r| insert(conn, r)),
    }
}

/// `INSERT INTO audit_log … SELECT * FROM unnest(<each column as an array>)`.
struct AuditRows<'a> {
    ids: Vec<&'a str>,
    tenant_ids: Vec<Option<&'a str>>,
    actors: Vec<&'a str>,
    actions: Vec<&'a str>,
    entity_types: Vec<&'a str>,
    entity_ids: Vec<&'a str>,
    summaries: Vec<&'a str>,
    sources: Vec<&'a str>,
    trace_ids: Vec<Option<&'a str>>,
    occurred: Vec<NaiveDateTime>,
    recorded: Vec<NaiveDateTime>,
}

impl<'a> AuditRows<'a> {
    fn of(rows: &'a [AuditRow]) -> Self {
        Self {
            ids: rows.iter().map(|r| r.id.as_str()).collect(),
            tenant_ids: rows.iter().map(|r| r.tenant_id.as_deref()).collect(),
            actors: rows.iter().map(|r| r.actor.as_str()).collect(),
            actions: rows.iter().map(|r| r.action.as_str()).collect(),
            entity_types: rows.iter().map(|r| r.entity_type.as_str()).collect(),
            entity_ids: rows.iter().map(|r| r.entity_id.as_str()).collect(),
            summaries: rows.iter().map(|r| r.summary.as_str()).collect(),
            sources: rows.iter().map(|r| r.source.as_str()).collect(),
            trace_ids: rows.iter().map(|r| r.trace_id.as_deref()).collect(),
            occurred: rows.iter().map(|r| r.occurred_at).collect(),
            recorded: rows.iter().map(|r| r.recorded_at).collect(),
        }
    }
}

/// The one shape of [`AuditRows`] (its prepared statement's key).
struct AuditRowsShape;

impl QueryId for AuditRows<'_> {
    type QueryId = AuditRowsShape;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for AuditRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO audit_log (id, tenant_id, actor, action, entity_type, entity_id, \
             summary, source, trace_id, occurred_at, recorded_at) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.tenant_ids)?;
        for column in [
            &self.actors,
            &self.actions,
            &self.entity_types,
            &self.entity_ids,
            &self.summaries,
            &self.sources,
        ] {
            out.push_sql(", ");
            out.push_bind_param::<Array<Text>, _>(column)?;
        }
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.trace_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.occurred)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(&self.recorded)?;
        out.push_sql(")");
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl diesel::RunQueryDsl<PgConnection> for AuditRows<'_> {}

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

/// One tenant's rows, newest first, and how many match in all, from one snapshot: rows
/// arrive from events at any moment, and a row committed between the count and the page
/// would otherwise be on the page but not in the count.
pub fn list(
    conn: &mut DbConn,
    tenant_id: &str,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> QueryResult<(Vec<AuditRow>, i64)> {
    fleetdesk_store::snapshot(conn, |conn| {
        let total = filtered(tenant_id, filter).count().get_result(conn)?;
        let rows = filtered(tenant_id, filter)
            .order((audit_log::occurred_at.desc(), audit_log::id.desc()))
            .offset(offset)
            .limit(limit)
            .load(conn)?;
        Ok((rows, total))
    })
}
