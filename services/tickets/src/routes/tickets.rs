//! Tickets: raising (with triage and the SLA clock), reading, listing and searching,
//! editing and deleting.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use chrono::{DateTime, NaiveDateTime, Utc};
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::tickets as ev;
use fleetdesk_events::{Origin, Outgoing, emit};
use fleetdesk_store::{Backend, DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, FieldErrors, Json, Query, Require};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::companies::{self, company_not_found};
use super::products as product_routes;
use super::search_text;
use super::workflow::Edit;
use crate::AppState;
use crate::domain::fields::{self, Channel, Severity, TicketType};
use crate::domain::sla::{self, Policy, Progress, SlaClock};
use crate::domain::status::Status;
use crate::domain::triage::Triage;
use crate::idempotency::{self, Created, IdempotencyKey};
use crate::store::companies as company_store;
use crate::store::list_to_json;
use crate::store::products::ProductRow;
use crate::store::tickets::{self, AssigneeFilter, SlaRow, SortKey, TicketFilter, TicketRow};
use crate::views::TicketView;

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tickets)
        .service(create_ticket)
        .service(get_ticket)
        .service(update_ticket)
        .service(delete_ticket);
}

/// 404 for a ticket that is absent, deleted or another tenant's.
pub fn ticket_not_found() -> ApiError {
    ApiError::not_found("ticket_not_found", "no such ticket in this tenant")
}

/// A live ticket of the tenant by id or key, locked for a change until the transaction
/// ends, or 404.
pub fn load_for_change(
    conn: &mut DbConn,
    tenant_id: &str,
    id_or_key: &str,
) -> Result<TicketRow, ApiError> {
    let found = load_ticket(conn, tenant_id, id_or_key)?;
    tickets::lock(conn, &found.id)?;
    // Read again under the lock: the first read may predate a change that just committed.
    load_ticket(conn, tenant_id, &found.id)
}

/// A live ticket of the tenant by id or key (`PAY-42`), or 404.
pub fn load_ticket(
    conn: &mut DbConn,
    tenant_id: &str,
    id_or_key: &str,
) -> Result<TicketRow, ApiError> {
    tickets::find(conn, tenant_id, id_or_key, fields::is_ticket_key(id_or_key))?
        .ok_or_else(ticket_not_found)
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequesterInput {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTicket {
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub requester: RequesterInput,
    /// Without it, the requester's email domain finds the company.
    pub company_id: Option<String>,
    /// `web`, `email`, `api`, `chat` or `phone`.
    pub channel: String,
    /// Overrides triage's type: `bug`, `incident`, `question`, `feature_request`, `task`.
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

struct CheckedTicket {
    title: String,
    description: String,
    requester_name: String,
    requester_email: String,
    channel: Channel,
    ticket_type: Option<TicketType>,
    tags: Vec<String>,
}

fn check_new(body: &NewTicket) -> Result<CheckedTicket, ApiError> {
    let mut e = FieldErrors::default();
    let title = e.check("title", fields::line(&body.title, 300));
    let description = e.check("description", fields::text(&body.description, 50_000));
    let name = e.check("requester.name", fields::line(&body.requester.name, 200));
    let email = e.check("requester.email", fields::email(&body.requester.email));
    let channel = e.check("channel", Channel::parse(&body.channel));
    let ticket_type = body
        .ticket_type
        .as_deref()
        .map(|t| e.check("type", TicketType::parse(t)));
    let tags = e.check("tags", fields::tags(&body.tags));
    e.finish()?;
    match (title, description, name, email, channel, tags) {
        (
            Some(title),
            Some(description),
            Some(requester_name),
            Some(requester_email),
            Some(channel),
            Some(tags),
        ) => Ok(CheckedTicket {
            title,
            description,
            requester_name,
            requester_email,
            channel,
            ticket_type: ticket_type.flatten(),
            tags,
        }),
        _ => Err(ApiError::internal("validated fields missing")),
    }
}

fn active(product: &ProductRow) -> Result<(), ApiError> {
    if product.status == "active" {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "product_archived",
            "the product is archived; tickets cannot be raised about it",
        ))
    }
}

/// Raise a ticket: triaged (rules or model), numbered per tenant, with its SLA clock started.
#[utoipa::path(
    tag = "tickets",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first response; another body is a 422")),
    responses(
        (status = 201, body = TicketView),
        (status = 404, description = "`product_not_found`, `company_not_found`"),
        (status = 409, description = "`product_archived`"),
        (status = 422, description = "`idempotency_key_reused`"),
    ),
    security(("bearer" = ["ticket.create"]))
)]
#[post("/tickets")]
async fn create_ticket(
    state: Data<AppState>,
    caller: Require<perm::TicketCreate>,
    key: IdempotencyKey,
    body: Json<NewTicket>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let checked = check_new(&body)?;
    // A model is asked before the transaction (it may take seconds); the rules run inside it,
    // on the product row the transaction reads anyway.
    let by_model = match state.config.llm.as_ref() {
        Some(llm) => {
            let tenant = caller.tenant_id.clone();
            let product_id = body.product_id.clone();
            let product = state
                .db
                .run(move |conn| product_routes::load(conn, &tenant, &product_id))
                .await?;
            active(&product)?;
            Some(
                crate::triage::by_model(
                    &state.http,
                    llm,
                    &product,
                    &checked.title,
                    &checked.description,
                )
                .await,
            )
        }
        None => None,
    };
    let draft = Arc::new(Draft {
        tenant: caller.tenant_id.clone(),
        actor: caller.actor(),
        origin: caller.origin(state.clock.now()),
        now: state.clock.now().naive_utc(),
        checked,
        by_model,
    });
    let company_id = body.company_id.clone();
    let product_id = body.product_id.clone();
    if key.0.is_none() && state.db.backend() == Backend::Postgres {
        // Without a key on PostgreSQL the read and the write each go with other creates'
        // (tickets::Creates), and the write commits by itself.
        let (product, domain_owner, number) = state
            .creates
            .read(&draft.tenant, &product_id, draft.domain())
            .await?
            .ok_or_else(product_routes::product_not_found)?;
        active(&product)?;
        let company = match company_id {
            Some(id) => {
                let tenant = draft.tenant.clone();
                let found = state
                    .db
                    .read(move |conn| Ok::<_, ApiError>(company_store::find(conn, &tenant, &id)?))
                    .await?;
                Some(found.ok_or_else(company_not_found)?.id)
            }
            None => domain_owner,
        };
        let (new, created) = draft.ticket(&product, company, number)?;
        state.creates.write(new).await?;
        return Ok(created.respond(false));
    }
    // With a key (its response is remembered in the create's transaction), or on SQLite.
    idempotency::once(&state, &caller, key, "POST /tickets", &body, move |conn| {
        // Read again here, next to the write: the product may have been archived meanwhile
        // (a model's answer can take seconds).
        let (product, domain_owner, number) =
            tickets::for_create(conn, &draft.tenant, &product_id, draft.domain())?
                .ok_or_else(product_routes::product_not_found)?;
        active(&product)?;
        let company = match &company_id {
            Some(id) => Some(
                company_store::find(conn, &draft.tenant, id)?
                    .ok_or_else(company_not_found)?
                    .id,
            ),
            None => domain_owner,
        };
        let (new, created) = draft.ticket(&product, company, number)?;
        tickets::insert(conn, new)?;
        Ok(created)
    })
    .await
}

/// What a create knows before it reads the database: who raises it, when, and what.
struct Draft {
    tenant: String,
    actor: String,
    origin: Origin,
    now: NaiveDateTime,
    checked: CheckedTicket,
    /// A model's triage, asked before the create's reads (it may take seconds).
    by_model: Option<Triage>,
}

impl Draft {
    /// The requester's email domain, which links the ticket to the company owning it.
    fn domain(&self) -> &str {
        self.checked
            .requester_email
            .rsplit('@')
            .next()
            .unwrap_or_default()
    }

    /// The ticket to write, numbered `number`, about `product` (read next to the write, and
    /// active), triaged, with its SLA clock started and its event; and the response announcing it.
    fn ticket(
        &self,
        product: &ProductRow,
        company: Option<String>,
        number: i64,
    ) -> Result<(tickets::NewTicket, Created), ApiError> {
        let (checked, now) = (&self.checked, self.now);
        let mut triage = match &self.by_model {
            Some(t) => t.clone(),
            None => crate::triage::by_rules(product, &checked.title, &checked.description),
        };
        if let Some(t) = checked.ticket_type {
            triage
                .reasons
                .push(format!("type set by the requester: {}", t.as_str()));
        }
        let severity = Severity::parse(&triage.severity).unwrap_or(Severity::DEFAULT);
        let ticket_type = checked
            .ticket_type
            .map(|t| t.as_str().to_owned())
            .unwrap_or_else(|| triage.ticket_type.clone());
        let triage_json = serde_json::to_string(&triage).map_err(ApiError::internal)?;
        let policy: Policy = serde_json::from_str(&product.sla_policy)
            .unwrap_or_else(|_| Policy(Default::default()));
        let clock = SlaClock::started(now);
        let dues = sla::dues(&clock, policy.targets(severity), Progress::default());
        let id = new_id();
        let row = TicketRow {
            id: id.clone(),
            tenant_id: self.tenant.clone(),
            number,
            key: format!("{}-{number}", product.key),
            product_id: product.id.clone(),
            title: checked.title.clone(),
            description: checked.description.clone(),
            requester_name: checked.requester_name.clone(),
            requester_email: checked.requester_email.clone(),
            company_id: company,
            channel: checked.channel.as_str().to_owned(),
            ticket_type,
            tags: list_to_json(&checked.tags),
            status: Status::New.as_str().to_owned(),
            severity_rank: severity.rank(),
            assignee_id: product.default_assignee_id.clone(),
            triage: triage_json,
            severity_overridden: 0,
            escalation_level: 0,
            escalated_to: None,
            comments_count: 0,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            sla_due_at: dues.next,
            created_by: self.actor.clone(),
            deleted_at: None,
            deleted_by: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let sla_row = SlaRow {
            ticket_id: id.clone(),
            tenant_id: self.tenant.clone(),
            running_since: clock.running_since,
            elapsed_seconds: 0,
            paused_since: None,
            paused_seconds: 0,
            first_response_due_at: dues.first_response,
            resolution_due_at: dues.resolution,
            first_response_breached_at: None,
            resolution_breached_at: None,
            first_response_seconds: None,
            resolution_seconds: None,
        };
        let created = Outgoing::new(
            &self.origin,
            &ev::TicketCreated {
                ticket_id: id,
                key: row.key.clone(),
                number,
                product_id: row.product_id.clone(),
                title: row.title.clone(),
                status: row.status.clone(),
                severity: severity.to_string(),
                ticket_type: row.ticket_type.clone(),
                channel: row.channel.clone(),
                requester_email: row.requester_email.clone(),
                company_id: row.company_id.clone(),
                assignee_id: row.assignee_id.clone(),
                triaged_by: triage.provenance.model.unwrap_or_else(|| "rules".into()),
            },
        )?;
        let answer = Created::new(
            StatusCode::CREATED,
            &TicketView::detail(row.clone(), &sla_row, now),
        )?;
        let new = tickets::NewTicket {
            row,
            sla: sla_row,
            tags: checked.tags.clone(),
            event: created,
        };
        Ok((new, answer))
    }
}

/// One ticket, by id or key (`PAY-42`), with triage, SLA state and links.
#[utoipa::path(tag = "tickets", responses((status = 200, body = TicketView), (status = 404, description = "`ticket_not_found`")), security(("bearer" = ["ticket.read"])))]
#[get("/tickets/{id}")]
async fn get_ticket(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .read(move |conn| {
            let row = load_ticket(conn, &tenant, &id)?;
            let sla = tickets::sla(conn, &row.id)?;
            Ok::<_, ApiError>(TicketView::detail(row, &sla, now))
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TicketListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    pub product_id: Option<String>,
    /// One status, or several separated by commas (`open,in_progress`).
    pub status: Option<String>,
    pub severity: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    /// A user id, or `none` for unassigned tickets.
    pub assignee_id: Option<String>,
    pub channel: Option<String>,
    pub company_id: Option<String>,
    pub tag: Option<String>,
    pub requester_email: Option<String>,
    /// Words that must all occur in the title, description or a comment.
    pub q: Option<String>,
    /// RFC 3339; tickets created at or after.
    pub created_from: Option<String>,
    /// RFC 3339; tickets created before.
    pub created_to: Option<String>,
    /// RFC 3339; tickets changed at or after.
    pub updated_since: Option<String>,
    /// `createdAt`, `updatedAt`, `severity` or `slaDue`, `-` first for descending
    /// (default `-createdAt`).
    pub sort: Option<String>,
}

fn time_param(e: &mut FieldErrors, name: &str, v: &Option<String>) -> Option<NaiveDateTime> {
    let v = v.as_deref()?;
    e.check(
        name,
        DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc).naive_utc())
            .map_err(|_| "must be an RFC 3339 time such as 2026-11-23T10:00:00Z"),
    )
}

fn filter_of(
    q: TicketListQuery,
    internal: bool,
) -> Result<(TicketFilter, SortKey, bool, Page), ApiError> {
    let page = Page::new(q.page, q.limit)?;
    let mut e = FieldErrors::default();
    let mut f = TicketFilter::default();
    if let Some(s) = &q.status {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(st) = e.check("status", Status::parse(part)) {
                f.statuses.push(st.as_str().to_owned());
            }
        }
    }
    if let Some(s) = &q.severity {
        f.severity_rank = e.check("severity", Severity::parse(s)).map(Severity::rank);
    }
    if let Some(t) = &q.ticket_type {
        f.ticket_type = e
            .check("type", TicketType::parse(t))
            .map(|t| t.as_str().to_owned());
    }
    if let Some(c) = &q.channel {
        f.channel = e
            .check("channel", Channel::parse(c))
            .map(|c| c.as_str().to_owned());
    }
    if let Some(t) = &q.tag {
        f.tag = e
            .check("tag", fields::tags(std::slice::from_ref(t)))
            .and_then(|mut v| v.pop());
    }
    if let Some(m) = &q.requester_email {
        f.requester_email = e.check("requesterEmail", fields::email(m));
    }
    f.assignee = q.assignee_id.map(|a| {
        if a == "none" {
            AssigneeFilter::Nobody
        } else {
            AssigneeFilter::User(a)
        }
    });
    f.product_id = q.product_id;
    f.company_id = q.company_id;
    f.created_from = time_param(&mut e, "createdFrom", &q.created_from);
    f.created_to = time_param(&mut e, "createdTo", &q.created_to);
    f.updated_since = time_param(&mut e, "updatedSince", &q.updated_since);
    match search_text(q.q) {
        Ok(Some(text)) => {
            if crate::store::search::fts5_query(&text).is_none() {
                e.push("q", "must contain a letter or digit");
            }
            f.q = Some((text, internal));
        }
        Ok(None) => {}
        Err(err) => return Err(err),
    }
    let sort = q.sort.as_deref().unwrap_or("-createdAt");
    let (descending, name) = match sort.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, sort),
    };
    let key = match name {
        "createdAt" => Some(SortKey::CreatedAt),
        "updatedAt" => Some(SortKey::UpdatedAt),
        "severity" => Some(SortKey::Severity),
        "slaDue" => Some(SortKey::SlaDue),
        _ => {
            e.push(
                "sort",
                "must be createdAt, updatedAt, severity or slaDue, optionally with a leading -",
            );
            None
        }
    };
    e.finish()?;
    Ok((f, key.unwrap_or(SortKey::CreatedAt), descending, page))
}

/// Tickets, filtered, searched and sorted.
#[utoipa::path(tag = "tickets", params(TicketListQuery), responses((status = 200, body = Paginated<TicketView>)), security(("bearer" = ["ticket.read"])))]
#[get("/tickets")]
async fn list_tickets(
    state: Data<AppState>,
    caller: Require<perm::TicketRead>,
    query: Query<TicketListQuery>,
) -> Result<HttpResponse, ApiError> {
    let internal = caller.allows("ticket.comment.read_internal");
    let (filter, sort, descending, page) = filter_of(query.into_inner(), internal)?;
    let tenant = caller.tenant_id.clone();
    let cap = if filter.q.is_some() {
        page.search_count_cap()
    } else {
        page.count_cap()
    };
    let tuning = state.config.search;
    let list = state
        .db
        .read(move |conn| {
            let listed = tickets::list(
                conn,
                &tenant,
                &filter,
                (sort, descending),
                page.offset(),
                page.limit_i64(),
                cap,
                tuning,
            )?;
            let mut out = page.wrap_capped(
                listed.rows.into_iter().map(TicketView::summary).collect(),
                listed.counted,
                cap,
            );
            if listed.at_least {
                out.pagination.total_is_lower_bound = true;
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    /// Replaces every tag.
    pub tags: Option<Vec<String>>,
    /// A company id, or `null` to unlink.
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub company_id: Option<Option<String>>,
}

/// Change a ticket's title, description, type, tags or company.
#[utoipa::path(
    tag = "tickets",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TicketView), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["ticket.update"]))
)]
#[patch("/tickets/{id}")]
async fn update_ticket(
    state: Data<AppState>,
    caller: Require<perm::TicketUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<TicketUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut e = FieldErrors::default();
    let title = body
        .title
        .as_deref()
        .map(|t| e.check("title", fields::line(t, 300)));
    let description = body
        .description
        .as_deref()
        .map(|d| e.check("description", fields::text(d, 50_000)));
    let ticket_type = body
        .ticket_type
        .as_deref()
        .map(|t| e.check("type", TicketType::parse(t)));
    let tags = body
        .tags
        .as_deref()
        .map(|t| e.check("tags", fields::tags(t)));
    e.finish()?;
    let tenant = caller.tenant_id.clone();
    let actor = caller.actor();
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let (ticket, sla) = state
        .db
        .transaction(move |conn| {
            let row = load_for_change(conn, &tenant, &id)?;
            if_match.check(row.version)?;
            let mut edit = Edit::begin(conn, row, &actor, now)?;
            let mut changed = Vec::new();
            if let Some(Some(t)) = title
                && t != edit.ticket.title
            {
                edit.record(
                    "title",
                    Some(edit.ticket.title.clone()),
                    Some(t.clone()),
                    None,
                );
                edit.ticket.title = t;
                changed.push("title".to_owned());
            }
            if let Some(Some(d)) = description
                && d != edit.ticket.description
            {
                // Descriptions are long: the history says that it changed, not how.
                edit.record("description", None, None, None);
                edit.ticket.description = d;
                changed.push("description".to_owned());
            }
            if let Some(Some(t)) = ticket_type
                && t.as_str() != edit.ticket.ticket_type
            {
                edit.record(
                    "type",
                    Some(edit.ticket.ticket_type.clone()),
                    Some(t.as_str().to_owned()),
                    None,
                );
                edit.ticket.ticket_type = t.as_str().to_owned();
                changed.push("type".to_owned());
            }
            if let Some(Some(t)) = tags {
                let json = list_to_json(&t);
                if json != edit.ticket.tags {
                    edit.record(
                        "tags",
                        Some(edit.ticket.tags.clone()),
                        Some(json.clone()),
                        None,
                    );
                    edit.ticket.tags = json;
                    tickets::set_tags(conn, &tenant, &edit.ticket.id, &t)?;
                    changed.push("tags".to_owned());
                }
            }
            if let Some(c) = body.company_id
                && c != edit.ticket.company_id
            {
                if let Some(cid) = &c {
                    companies::load(conn, &tenant, cid).map_err(|_| {
                        ApiError::invalid_field("companyId", "is not a company of this tenant")
                    })?;
                }
                edit.record("company", edit.ticket.company_id.clone(), c.clone(), None);
                edit.ticket.company_id = c;
                changed.push("companyId".to_owned());
            }
            if !changed.is_empty() {
                emit(
                    conn,
                    &origin,
                    &ev::TicketUpdated {
                        ticket_id: edit.ticket.id.clone(),
                        key: edit.ticket.key.clone(),
                        changed,
                    },
                )?;
            }
            edit.save(conn)
        })
        .await?;
    let view = TicketView::detail(ticket, &sla, now);
    Ok(with_etag(&view, view.version))
}

/// Delete a ticket: hidden from every list and lookup, kept for audit.
#[utoipa::path(tag = "tickets", responses((status = 204, description = "Deleted"), (status = 404, description = "`ticket_not_found`")), security(("bearer" = ["ticket.delete"])))]
#[delete("/tickets/{id}")]
async fn delete_ticket(
    state: Data<AppState>,
    caller: Require<perm::TicketDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let actor = caller.actor();
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    state
        .db
        .transaction(move |conn| {
            let row = load_for_change(conn, &tenant, &id)?;
            let mut edit = Edit::begin(conn, row, &actor, now)?;
            edit.ticket.deleted_at = Some(now);
            edit.ticket.deleted_by = Some(actor.clone());
            edit.ticket.sla_due_at = None;
            edit.record("deleted", None, None, None);
            emit(
                conn,
                &origin,
                &ev::TicketDeleted {
                    ticket_id: edit.ticket.id.clone(),
                    key: edit.ticket.key.clone(),
                },
            )?;
            edit.save(conn)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
