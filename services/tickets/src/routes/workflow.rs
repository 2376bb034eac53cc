//! The ticket workflow: status, assignment, severity, escalation, comments, history and the
//! SLA state — and [`Edit`], the one way any of them changes a ticket (history, SLA ledger,
//! due times and version check included).

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get, patch, post};
use chrono::NaiveDateTime;
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::tickets as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, Caller, FieldErrors, Json, Query, Require};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::ensure_agent;
use super::tickets::{load_for_change, load_ticket};
use crate::AppState;
use crate::domain::fields::{self, Severity, Visibility};
use crate::domain::sla::{self, Policy, Progress, SlaClock};
use crate::domain::status::{self, Status, TransitionError};
use crate::store::products::{self, ProductRow};
use crate::store::tickets::{
    self, CommentRow, HistoryRow, LedgerRow, SlaRow, TicketChanges, TicketRow,
};
use crate::views::{CommentView, HistoryView, SlaTarget, SlaView, TicketView, utc};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(change_status)
        .service(assign)
        .service(change_severity)
        .service(escalate)
        .service(add_comment)
        .service(list_comments)
        .service(list_history)
        .service(get_sla);
}

/// The clock stored in an SLA row.
pub fn clock_of(s: &SlaRow) -> SlaClock {
    SlaClock {
        running_since: s.running_since,
        elapsed_seconds: s.elapsed_seconds,
        paused_since: s.paused_since,
        paused_seconds: s.paused_seconds,
    }
}

/// A change to one ticket in progress: the ticket and its SLA state as they will be, with
/// the history and ledger entries that explain the change. [`Edit::save`] writes it all
/// under the version the ticket was read at.
pub struct Edit {
    pub ticket: TicketRow,
    pub sla: SlaRow,
    pub clock: SlaClock,
    pub product: ProductRow,
    pub actor: String,
    pub now: NaiveDateTime,
    read_version: i64,
    history: Vec<HistoryRow>,
    ledger: Vec<LedgerRow>,
}

impl Edit {
    /// Starts a change of `ticket` by `actor` at `now`.
    pub fn begin(
        conn: &mut DbConn,
        ticket: TicketRow,
        actor: &str,
        now: NaiveDateTime,
    ) -> Result<Self, ApiError> {
        let sla = tickets::sla(conn, &ticket.id)?;
        let product = products::find(conn, &ticket.tenant_id, &ticket.product_id)?
            .ok_or_else(|| ApiError::internal("a ticket's product is missing"))?;
        Ok(Self {
            clock: clock_of(&sla),
            read_version: ticket.version,
            ticket,
            sla,
            product,
            actor: actor.to_owned(),
            now,
            history: Vec::new(),
            ledger: Vec::new(),
        })
    }

    /// Records a change of `field`.
    pub fn record(
        &mut self,
        field: &str,
        from: Option<String>,
        to: Option<String>,
        note: Option<String>,
    ) {
        self.history.push(HistoryRow {
            id: new_id(),
            tenant_id: self.ticket.tenant_id.clone(),
            ticket_id: self.ticket.id.clone(),
            actor: self.actor.clone(),
            field: field.to_owned(),
            from_value: from,
            to_value: to,
            note,
            at: self.now,
        });
    }

    /// Adds an SLA ledger entry.
    pub fn mark(&mut self, kind: &str, target: Option<&str>, detail: Option<String>) {
        self.ledger.push(LedgerRow {
            id: new_id(),
            tenant_id: self.ticket.tenant_id.clone(),
            ticket_id: self.ticket.id.clone(),
            kind: kind.to_owned(),
            target: target.map(str::to_owned),
            detail,
            at: self.now,
        });
    }

    /// The product's SLA policy.
    pub fn policy(&self) -> Policy {
        serde_json::from_str(&self.product.sla_policy)
            .unwrap_or_else(|_| Policy(Default::default()))
    }

    fn progress(&self) -> Progress {
        Progress {
            responded: self.ticket.first_response_at.is_some(),
            first_response_breached: self.sla.first_response_breached_at.is_some(),
            resolution_breached: self.sla.resolution_breached_at.is_some(),
        }
    }

    /// Recomputes the due times from the clock, the severity's targets and what is done.
    pub fn retarget(&mut self) {
        let targets = self
            .policy()
            .targets(Severity::from_rank(self.ticket.severity_rank));
        let dues = sla::dues(&self.clock, targets, self.progress());
        if self.ticket.first_response_at.is_none() {
            self.sla.first_response_due_at = dues.first_response;
        }
        self.sla.resolution_due_at = dues.resolution;
        self.ticket.sla_due_at = dues.next;
    }

    /// Moves the ticket to `to`, with the clock, timestamps, history and event that go with
    /// it. The caller has checked the transition.
    pub fn move_to(
        &mut self,
        conn: &mut DbConn,
        origin: &Origin,
        to: Status,
        note: Option<String>,
    ) -> Result<(), ApiError> {
        let from = self.ticket.status.clone();
        if let Some(mark) = self.clock.apply(to.clock(), self.now) {
            self.mark(mark.as_str(), None, Some(format!("{from} → {to}")));
        }
        match to {
            Status::Resolved => self.ticket.resolved_at = Some(self.now),
            Status::Closed => {
                self.ticket.closed_at = Some(self.now);
                self.ticket.resolved_at.get_or_insert(self.now);
            }
            _ => {
                self.ticket.resolved_at = None;
                self.ticket.closed_at = None;
            }
        }
        self.ticket.status = to.as_str().to_owned();
        self.record(
            "status",
            Some(from.clone()),
            Some(to.as_str().to_owned()),
            note.clone(),
        );
        self.retarget();
        emit(
            conn,
            origin,
            &ev::TicketStatusChanged {
                ticket_id: self.ticket.id.clone(),
                key: self.ticket.key.clone(),
                from,
                to: to.as_str().to_owned(),
                note,
            },
        )?;
        Ok(())
    }

    /// Assigns the ticket (or unassigns with `None`), recording and announcing it.
    pub fn assign(
        &mut self,
        conn: &mut DbConn,
        origin: &Origin,
        to: Option<String>,
    ) -> Result<(), ApiError> {
        let from = self.ticket.assignee_id.clone();
        if from == to {
            return Ok(());
        }
        self.ticket.assignee_id = to.clone();
        self.record("assignee", from.clone(), to.clone(), None);
        emit(
            conn,
            origin,
            &ev::TicketAssigned {
                ticket_id: self.ticket.id.clone(),
                key: self.ticket.key.clone(),
                from,
                to,
            },
        )?;
        Ok(())
    }

    /// Escalates to `target`: one level up, assigned to them.
    pub fn escalate(
        &mut self,
        conn: &mut DbConn,
        origin: &Origin,
        target: &str,
        reason: &str,
        note: Option<String>,
    ) -> Result<(), ApiError> {
        self.ticket.escalation_level += 1;
        self.ticket.escalated_to = Some(target.to_owned());
        self.record(
            "escalation",
            Some(self.ticket.escalation_level.saturating_sub(1).to_string()),
            Some(self.ticket.escalation_level.to_string()),
            Some(match &note {
                Some(n) => format!("{reason}: {n}"),
                None => reason.to_owned(),
            }),
        );
        emit(
            conn,
            origin,
            &ev::TicketEscalated {
                ticket_id: self.ticket.id.clone(),
                key: self.ticket.key.clone(),
                target_user_id: target.to_owned(),
                level: self.ticket.escalation_level,
                reason: reason.to_owned(),
                note,
            },
        )?;
        self.assign(conn, origin, Some(target.to_owned()))
    }

    /// Marks every target whose due time has passed and that is not met or breached yet,
    /// announcing each breach and escalating to the product's lead when the policy says so.
    /// Whether anything was breached.
    pub fn breach_overdue(&mut self, conn: &mut DbConn, origin: &Origin) -> Result<bool, ApiError> {
        let severity = Severity::from_rank(self.ticket.severity_rank);
        let Some(targets) = self.policy().targets(severity) else {
            return Ok(false);
        };
        let mut breached = Vec::new();
        if self.ticket.first_response_at.is_none()
            && self.sla.first_response_breached_at.is_none()
            && let Some(due) = self.sla.first_response_due_at.filter(|d| *d <= self.now)
            && self.clock.running_since.is_some()
        {
            self.sla.first_response_breached_at = Some(due);
            breached.push(("first_response", due));
        }
        if self.sla.resolution_breached_at.is_none()
            && let Some(due) = self.sla.resolution_due_at.filter(|d| *d <= self.now)
            && self.clock.running_since.is_some()
        {
            self.sla.resolution_breached_at = Some(due);
            breached.push(("resolution", due));
        }
        for (target, due) in &breached {
            self.mark(
                "breach",
                Some(target),
                Some(format!("due at {}", utc(*due).to_rfc3339())),
            );
            emit(
                conn,
                origin,
                &ev::TicketSlaBreached {
                    ticket_id: self.ticket.id.clone(),
                    key: self.ticket.key.clone(),
                    target: (*target).to_owned(),
                    severity: severity.as_str().to_owned(),
                    due_at: utc(*due),
                },
            )?;
            metrics::counter!("tickets_sla_breaches_total", "target" => *target).increment(1);
        }
        if !breached.is_empty() {
            if targets.escalate_on_breach
                && let Some(lead) = self.product.lead_id.clone()
                && self.ticket.escalated_to.as_deref() != Some(lead.as_str())
            {
                let what = breached
                    .iter()
                    .map(|(t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(" and ");
                self.escalate(
                    conn,
                    origin,
                    &lead,
                    "sla_breach",
                    Some(format!("{what} target missed")),
                )?;
            }
            self.retarget();
        }
        Ok(!breached.is_empty())
    }

    /// Writes the ticket, its SLA row, history and ledger, if nobody changed the ticket
    /// since it was read; 412 otherwise. Returns the ticket as saved.
    pub fn save(mut self, conn: &mut DbConn) -> Result<(TicketRow, SlaRow), ApiError> {
        self.sla.running_since = self.clock.running_since;
        self.sla.elapsed_seconds = self.clock.elapsed_seconds;
        self.sla.paused_since = self.clock.paused_since;
        self.sla.paused_seconds = self.clock.paused_seconds;
        let t = &self.ticket;
        self.sla.first_response_seconds = tickets::seconds_since(t.created_at, t.first_response_at);
        self.sla.resolution_seconds = tickets::seconds_since(t.created_at, t.resolved_at);
        let changes = TicketChanges {
            title: Some(t.title.clone()),
            description: Some(t.description.clone()),
            ticket_type: Some(t.ticket_type.clone()),
            tags: Some(t.tags.clone()),
            company_id: Some(t.company_id.clone()),
            status: Some(t.status.clone()),
            severity_rank: Some(t.severity_rank),
            assignee_id: Some(t.assignee_id.clone()),
            severity_overridden: Some(t.severity_overridden),
            escalation_level: Some(t.escalation_level),
            escalated_to: Some(t.escalated_to.clone()),
            comments_count: Some(t.comments_count),
            first_response_at: Some(t.first_response_at),
            resolved_at: Some(t.resolved_at),
            closed_at: Some(t.closed_at),
            sla_due_at: Some(t.sla_due_at),
            deleted_at: Some(t.deleted_at),
            deleted_by: Some(t.deleted_by.clone()),
        };
        if !tickets::update(conn, &t.id, self.read_version, &changes, self.now)? {
            return Err(ApiError::stale_version(
                "the ticket changed meanwhile; reload and retry",
            ));
        }
        tickets::save_sla(conn, &self.sla)?;
        tickets::insert_history(conn, &self.history)?;
        for row in &self.ledger {
            tickets::insert_ledger(conn, row)?;
        }
        self.ticket.version = self.read_version + 1;
        self.ticket.updated_at = self.now;
        Ok((self.ticket, self.sla))
    }
}

/// Loads a live ticket for a change under `If-Match`, catching up on breaches first so a
/// late change cannot hide one.
fn start(
    conn: &mut DbConn,
    caller_tenant: &str,
    id: &str,
    if_match: &IfMatch,
    actor: &str,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<Edit, ApiError> {
    let ticket = load_for_change(conn, caller_tenant, id)?;
    if_match.check(ticket.version)?;
    let mut edit = Edit::begin(conn, ticket, actor, now)?;
    edit.breach_overdue(conn, origin)?;
    Ok(edit)
}

fn answer(ticket: TicketRow, sla: SlaRow, now: NaiveDateTime) -> HttpResponse {
    let view = TicketView::detail(ticket, &sla, now);
    with_etag(&view, view.version)
}

/// Prepared per request: who, when, under which trace.
struct Context {
    tenant: String,
    actor: String,
    origin: Origin,
    now: NaiveDateTime,
}

impl Context {
    fn of(state: &AppState, caller: &Caller) -> Self {
        let at = state.clock.now();
        Self {
            tenant: caller.tenant_id.clone(),
            actor: caller.actor(),
            origin: caller.origin(at),
            now: at.naive_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusChange {
    /// `new`, `open`, `in_progress`, `pending`, `on_hold`, `resolved` or `closed`.
    pub status: String,
    /// Why, kept in the history.
    pub note: Option<String>,
}

fn optional_note(note: Option<&str>, field: &str) -> Result<Option<String>, ApiError> {
    note.map(|n| fields::text(n, 2_000).map_err(|m| ApiError::invalid_field(field, m)))
        .transpose()
}

/// Move a ticket through the workflow.
///
/// A move the workflow does not allow is a 409 naming the allowed next statuses; `closed`
/// reopens to `open` only with `ticket.reopen`.
#[utoipa::path(
    tag = "tickets",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TicketView), (status = 409, description = "`transition_not_allowed`"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["ticket.status.update"]))
)]
#[patch("/tickets/{id}/status")]
async fn change_status(
    state: Data<AppState>,
    caller: Require<perm::TicketStatusUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<StatusChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let to = Status::parse(&body.status).map_err(|m| ApiError::invalid_field("status", m))?;
    let note = optional_note(body.note.as_deref(), "note")?;
    let may_reopen = caller.allows("ticket.reopen");
    let cx = Context::of(&state, &caller);
    let (ticket, sla) = state
        .db
        .transaction(move |conn| {
            let mut edit = start(
                conn, &cx.tenant, &id, &if_match, &cx.actor, cx.now, &cx.origin,
            )?;
            let from = Status::parse(&edit.ticket.status).map_err(ApiError::internal)?;
            match status::check(from, to, may_reopen) {
                Ok(()) => {}
                Err(TransitionError::NeedsReopen) => {
                    return Err(ApiError::missing_permission("ticket.reopen"));
                }
                Err(TransitionError::Same) => {
                    return Err(ApiError::conflict(
                        "transition_not_allowed",
                        format!("the ticket is already {to}"),
                    ));
                }
                Err(TransitionError::NotAllowed(next)) => {
                    let allowed: Vec<&str> = next.iter().map(|s| s.as_str()).collect();
                    return Err(ApiError::conflict(
                        "transition_not_allowed",
                        if allowed.is_empty() {
                            format!("{from} is final; reopen it to open")
                        } else {
                            format!("{from} can move to {} only", allowed.join(", "))
                        },
                    ));
                }
            }
            edit.move_to(conn, &cx.origin, to, note)?;
            edit.save(conn)
        })
        .await?;
    Ok(answer(ticket, sla, state.clock.now().naive_utc()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assignment {
    /// An active user of the tenant who can read tickets, or `null` to unassign.
    #[schema(value_type = Option<String>)]
    pub user_id: Option<String>,
}

/// Assign a ticket (or unassign it with `null`).
#[utoipa::path(
    tag = "tickets",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TicketView), (status = 400, description = "`userId` cannot be assigned")),
    security(("bearer" = ["ticket.assign"]))
)]
#[patch("/tickets/{id}/assign")]
async fn assign(
    state: Data<AppState>,
    caller: Require<perm::TicketAssign>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<Assignment>,
) -> Result<HttpResponse, ApiError> {
    let to = body.into_inner().user_id;
    let cx = Context::of(&state, &caller);
    let (ticket, sla) = state
        .db
        .transaction(move |conn| {
            if let Some(u) = &to {
                ensure_agent(conn, &cx.tenant, u, "userId")?;
            }
            let mut edit = start(
                conn, &cx.tenant, &id, &if_match, &cx.actor, cx.now, &cx.origin,
            )?;
            edit.assign(conn, &cx.origin, to)?;
            edit.save(conn)
        })
        .await?;
    Ok(answer(ticket, sla, state.clock.now().naive_utc()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeverityOverride {
    /// `P0`..`P4`.
    pub severity: String,
    /// Why triage was wrong; kept with the change.
    pub reason: String,
}

/// Override a ticket's severity; SLA due times move to the new severity's targets.
#[utoipa::path(
    tag = "tickets",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TicketView)),
    security(("bearer" = ["ticket.severity.override"]))
)]
#[patch("/tickets/{id}/severity")]
async fn change_severity(
    state: Data<AppState>,
    caller: Require<perm::TicketSeverityOverride>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<SeverityOverride>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let severity = errors.check("severity", Severity::parse(&body.severity));
    let reason = errors.check("reason", fields::text(&body.reason, 2_000));
    errors.finish()?;
    let (Some(severity), Some(reason)) = (severity, reason) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let cx = Context::of(&state, &caller);
    let (ticket, sla) = state
        .db
        .transaction(move |conn| {
            let mut edit = start(
                conn, &cx.tenant, &id, &if_match, &cx.actor, cx.now, &cx.origin,
            )?;
            let from = Severity::from_rank(edit.ticket.severity_rank);
            if from == severity {
                return Err(ApiError::conflict(
                    "severity_unchanged",
                    format!("the ticket is already {severity}"),
                ));
            }
            edit.ticket.severity_rank = severity.rank();
            edit.ticket.severity_overridden = 1;
            edit.record(
                "severity",
                Some(from.to_string()),
                Some(severity.to_string()),
                Some(reason.clone()),
            );
            edit.mark(
                "retarget",
                None,
                Some(format!("severity {from} → {severity}")),
            );
            edit.retarget();
            emit(
                conn,
                &cx.origin,
                &ev::TicketSeverityChanged {
                    ticket_id: edit.ticket.id.clone(),
                    key: edit.ticket.key.clone(),
                    from: from.to_string(),
                    to: severity.to_string(),
                    reason,
                },
            )?;
            // A shorter target may already be overdue.
            edit.breach_overdue(conn, &cx.origin)?;
            edit.save(conn)
        })
        .await?;
    Ok(answer(ticket, sla, state.clock.now().naive_utc()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EscalationRequest {
    /// Who takes it over (a lead): an active user of the tenant who can read tickets.
    pub target_user_id: String,
    pub note: Option<String>,
}

/// Escalate a ticket to someone: one level up, assigned to them.
#[utoipa::path(
    tag = "tickets",
    responses((status = 200, body = TicketView), (status = 409, description = "`ticket_not_open`: resolved or closed")),
    security(("bearer" = ["ticket.escalate"]))
)]
#[post("/tickets/{id}/escalate")]
async fn escalate(
    state: Data<AppState>,
    caller: Require<perm::TicketEscalate>,
    id: Path<String>,
    body: Json<EscalationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let note = optional_note(body.note.as_deref(), "note")?;
    let cx = Context::of(&state, &caller);
    let (ticket, sla) = state
        .db
        .transaction(move |conn| {
            ensure_agent(conn, &cx.tenant, &body.target_user_id, "targetUserId")?;
            let mut edit = start(
                conn,
                &cx.tenant,
                &id,
                &IfMatch::default(),
                &cx.actor,
                cx.now,
                &cx.origin,
            )?;
            if matches!(edit.ticket.status.as_str(), "resolved" | "closed") {
                return Err(ApiError::conflict(
                    "ticket_not_open",
                    "a resolved or closed ticket cannot be escalated; reopen it first",
                ));
            }
            edit.escalate(conn, &cx.origin, &body.target_user_id, "manual", note)?;
            edit.save(conn)
        })
        .await?;
    Ok(answer(ticket, sla, state.clock.now().naive_utc()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewComment {
    pub body: String,
    /// `public` (the requester sees it) or `internal` (a note for agents).
    pub visibility: String,
    /// `agent` (default), or `requester` for a reply the customer sent (e.g. by email),
    /// recorded on their behalf; requester comments are public.
    pub author: Option<String>,
}

/// Add a public comment or an internal note.
///
/// The first public agent comment is the first response (SLA). A public requester comment
/// reopens a `resolved` ticket and brings a `pending` one back to `open`.
#[utoipa::path(
    tag = "tickets",
    responses((status = 201, body = CommentView), (status = 403, description = "`permission_denied`: public comments need `ticket.comment.public`, internal notes `ticket.comment.internal`")),
    security(("bearer" = ["ticket.read"]))
)]
#[post("/tickets/{id}/comments")]
async fn add_comment(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    id: Path<String>,
    body: Json<NewComment>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let text = errors.check("body", fields::text(&body.body, 50_000));
    let visibility = errors.check("visibility", Visibility::parse(&body.visibility));
    let author = match body.author.as_deref() {
        None | Some("agent") => "agent",
        Some("requester") => "requester",
        Some(_) => {
            errors.push("author", "must be agent or requester");
            "agent"
        }
    };
    errors.finish()?;
    let (Some(text), Some(visibility)) = (text, visibility) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    if author == "requester" && visibility != Visibility::Public {
        return Err(ApiError::invalid_field(
            "visibility",
            "a requester's comment is public",
        ));
    }
    caller.require(match visibility {
        Visibility::Public => "ticket.comment.public",
        Visibility::Internal => "ticket.comment.internal",
    })?;
    let cx = Context::of(&state, &caller);
    let comment = state
        .db
        .transaction(move |conn| {
            let mut edit = start(
                conn,
                &cx.tenant,
                &id,
                &IfMatch::default(),
                &cx.actor,
                cx.now,
                &cx.origin,
            )?;
            let (author_id, author_name) = if author == "requester" {
                (None, Some(edit.ticket.requester_name.clone()))
            } else {
                (Some(cx.actor.clone()), None)
            };
            let row = CommentRow {
                id: new_id(),
                tenant_id: cx.tenant.clone(),
                ticket_id: edit.ticket.id.clone(),
                author_kind: author.to_owned(),
                author_id: author_id.clone(),
                author_name,
                body: text.clone(),
                visibility: visibility.as_str().to_owned(),
                created_at: cx.now,
            };
            tickets::insert_comment(conn, &row)?;
            edit.ticket.comments_count += 1;
            let public = visibility == Visibility::Public;
            if public && author == "agent" && edit.ticket.first_response_at.is_none() {
                edit.ticket.first_response_at = Some(cx.now);
                edit.mark("first_response", Some("first_response"), None);
                edit.retarget();
            }
            if public && author == "requester" {
                let current = edit.ticket.status.clone();
                if current == "resolved" || current == "pending" {
                    edit.move_to(
                        conn,
                        &cx.origin,
                        Status::Open,
                        Some("the requester replied".into()),
                    )?;
                }
            }
            emit(
                conn,
                &cx.origin,
                &ev::TicketCommentAdded {
                    ticket_id: edit.ticket.id.clone(),
                    key: edit.ticket.key.clone(),
                    comment_id: row.id.clone(),
                    visibility: row.visibility.clone(),
                    author_kind: row.author_kind.clone(),
                    author_id,
                    body: text,
                },
            )?;
            edit.save(conn)?;
            Ok::<_, ApiError>(row)
        })
        .await?;
    Ok(HttpResponse::Created().json(CommentView::from(comment)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
}

/// A ticket's comments, oldest first; internal notes only with
/// `ticket.comment.read_internal`.
#[utoipa::path(tag = "tickets", params(PageQuery), responses((status = 200, body = Paginated<CommentView>)), security(("bearer" = ["ticket.read"])))]
#[get("/tickets/{id}/comments")]
async fn list_comments(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    let internal = caller.allows("ticket.comment.read_internal");
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .read(move |conn| {
            let ticket = load_ticket(conn, &tenant, &id)?;
            let (rows, total) =
                tickets::comments(conn, &ticket.id, internal, page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(page.wrap(rows.into_iter().map(CommentView::from).collect(), total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Every change of a ticket: who, when, from → to.
#[utoipa::path(tag = "tickets", params(PageQuery), responses((status = 200, body = Paginated<HistoryView>)), security(("bearer" = ["ticket.read"])))]
#[get("/tickets/{id}/history")]
async fn list_history(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .read(move |conn| {
            let ticket = load_ticket(conn, &tenant, &id)?;
            let (rows, total) = tickets::history(conn, &ticket, page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(page.wrap(rows.into_iter().map(HistoryView::from).collect(), total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A ticket's SLA: targets, due times, elapsed and paused time, and the ledger.
#[utoipa::path(tag = "tickets", responses((status = 200, body = SlaView)), security(("bearer" = ["ticket.read"])))]
#[get("/tickets/{id}/sla")]
async fn get_sla(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .read(move |conn| {
            let ticket = load_ticket(conn, &tenant, &id)?;
            let edit = Edit::begin(conn, ticket, "system", now)?;
            let ledger = tickets::ledger(conn, &edit.ticket)?;
            Ok::<_, ApiError>(sla_view(&edit, ledger, now))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

fn sla_view(edit: &Edit, ledger: Vec<LedgerRow>, now: NaiveDateTime) -> SlaView {
    let severity = Severity::from_rank(edit.ticket.severity_rank);
    let targets = edit.policy().targets(severity);
    let elapsed = edit.clock.elapsed_at(now);
    let summary = crate::views::SlaSummary::new(&edit.sla, now);
    let target = |minutes: i64,
                  due: Option<NaiveDateTime>,
                  met: Option<NaiveDateTime>,
                  breached: Option<NaiveDateTime>| SlaTarget {
        target_minutes: minutes,
        due_at: due.map(utc),
        met_at: met.map(utc),
        breached_at: breached.map(utc),
        remaining_seconds: met.is_none().then_some(minutes * 60 - elapsed),
    };
    SlaView {
        severity: severity.as_str().to_owned(),
        clock: summary.clock,
        first_response: targets.map(|t| {
            target(
                t.first_response_minutes,
                edit.sla.first_response_due_at,
                edit.ticket.first_response_at,
                edit.sla.first_response_breached_at,
            )
        }),
        resolution: targets.map(|t| {
            target(
                t.resolution_minutes,
                edit.sla.resolution_due_at,
                edit.ticket.resolved_at,
                edit.sla.resolution_breached_at,
            )
        }),
        elapsed_seconds: elapsed,
        paused_seconds: edit.clock.paused_at(now),
        ledger: ledger.into_iter().map(Into::into).collect(),
    }
}
