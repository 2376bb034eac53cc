//! `GET /api/v1/audit`: the tenant's audit log, newest first. Read-only by design.

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{DateTime, Utc};
use fleetdesk_auth::permissions::perm;
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::{ApiError, FieldErrors, Query, Require};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::store::audit::{self, AuditFilter, AuditRow};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit);
}

/// One audited event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// The event id.
    pub id: String,
    /// Who: a user id, `service:<name>`, `system` or `anonymous`.
    pub actor_id: String,
    /// The event type (`user.updated`).
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub summary: String,
    /// The service that published the event.
    pub source: String,
    /// The trace of the request that caused it.
    pub trace_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            actor_id: r.actor,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            summary: r.summary,
            source: r.source,
            trace_id: r.trace_id,
            occurred_at: r.occurred_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AuditQuery {
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `user`, `role`, `tenant`, `invite`, …
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Who acted.
    pub actor_id: Option<String>,
    /// The event type, e.g. `user.deactivated`.
    pub action: Option<String>,
    /// From this instant on (RFC 3339, inclusive).
    pub from: Option<String>,
    /// Before this instant (RFC 3339, exclusive).
    pub to: Option<String>,
}

fn text(errors: &mut FieldErrors, field: &str, v: Option<String>) -> Option<String> {
    let v = v?;
    if v.is_empty() || v.chars().count() > 200 {
        errors.push(field, "must be 1 to 200 characters");
        return None;
    }
    Some(v)
}

fn instant(errors: &mut FieldErrors, field: &str, v: Option<String>) -> Option<DateTime<Utc>> {
    let v = v?;
    match DateTime::parse_from_rfc3339(&v) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(
                field,
                "must be an RFC 3339 date-time, e.g. 2026-11-23T10:00:00Z",
            );
            None
        }
    }
}

/// The tenant's audit log, newest first.
///
/// One entry per event any service published about the tenant (sign-ins that failed, user
/// and role changes, and later tickets, changes, vault access…). Entries cannot be changed
/// or deleted.
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = Paginated<AuditEntry>)),
    security(("bearer" = ["audit.read"]))
)]
#[get("/audit")]
async fn list_audit(
    state: Data<AppState>,
    caller: Require<perm::AuditRead>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = Page::new(q.page, q.limit)?;
    let mut errors = FieldErrors::default();
    let filter = AuditFilter {
        entity_type: text(&mut errors, "entityType", q.entity_type),
        entity_id: text(&mut errors, "entityId", q.entity_id),
        actor: text(&mut errors, "actorId", q.actor_id),
        action: text(&mut errors, "action", q.action),
        from: instant(&mut errors, "from", q.from).map(|t| t.naive_utc()),
        to: instant(&mut errors, "to", q.to).map(|t| t.naive_utc()),
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        errors.push("to", "must be after `from`");
    }
    errors.finish()?;
    let tenant = caller.tenant_id.clone();
    let (offset, limit) = (page.offset(), i64::from(page.limit));
    let (rows, total) = state
        .db
        .run(move |conn| audit::list(conn, &tenant, &filter, offset, limit).map_err(ApiError::from))
        .await?;
    let body: Paginated<AuditEntry> =
        page.wrap(rows.into_iter().map(AuditEntry::from).collect(), total);
    Ok(HttpResponse::Ok().json(body))
}
