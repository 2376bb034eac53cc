//! What the API answers: rows turned into camelCase JSON views.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::fields::Severity;
use crate::domain::sla::Policy;
use crate::domain::triage::Triage;
use crate::store::companies::CompanyRow;
use crate::store::list_from_json;
use crate::store::products::ProductRow;
use crate::store::tickets::{CommentRow, HistoryRow, LedgerRow, SlaRow, TicketRow};

/// A stored naive UTC time as UTC.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// How a product is reached.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channels {
    /// The support address whose mail becomes tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Tickets from the web portal.
    #[serde(default)]
    pub web: bool,
    /// Tickets through the API.
    #[serde(default)]
    pub api: bool,
}

/// A product.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub channels: Channels,
    pub default_assignee_id: Option<String>,
    /// Receives escalations when an SLA is breached and the policy says so.
    pub lead_id: Option<String>,
    #[schema(value_type = Object)]
    pub sla_policy: Policy,
    /// `default` (the shipped rules) or `custom`.
    pub triage_rules: &'static str,
    /// `active` or `archived`.
    pub status: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProductRow> for ProductView {
    fn from(r: ProductRow) -> Self {
        Self {
            channels: serde_json::from_str(&r.channels).unwrap_or_default(),
            sla_policy: serde_json::from_str(&r.sla_policy)
                .unwrap_or_else(|_| Policy(Default::default())),
            triage_rules: if r.triage_rules.is_some() {
                "custom"
            } else {
                "default"
            },
            id: r.id,
            key: r.key,
            name: r.name,
            description: r.description,
            default_assignee_id: r.default_assignee_id,
            lead_id: r.lead_id,
            status: r.status,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

/// A company (customer account).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyView {
    pub id: String,
    pub name: String,
    pub identifier: String,
    pub email_domains: Vec<String>,
    /// Only with `?includeAddress=true` and `company.read.address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub address: Option<Value>,
    pub notes: String,
    /// An id in another system (a PSA, a CRM).
    pub external_ref: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CompanyView {
    /// The view, with the address only when `with_address`.
    pub fn new(r: CompanyRow, with_address: bool) -> Self {
        Self {
            email_domains: list_from_json(&r.email_domains),
            address: if with_address {
                Some(
                    r.address
                        .as_deref()
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or(Value::Null),
                )
            } else {
                None
            },
            id: r.id,
            name: r.name,
            identifier: r.identifier,
            notes: r.notes,
            external_ref: r.external_ref,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }
}

/// Who raised a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requester {
    pub name: String,
    pub email: String,
}

/// Escalation state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    /// How many times it was escalated.
    pub level: i32,
    /// The last person it was escalated to.
    pub to: Option<String>,
}

/// Where a ticket's parts are.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub comments: String,
    pub history: String,
    pub sla: String,
}

/// A ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    pub id: String,
    pub number: i64,
    /// `<product key>-<number>`.
    pub key: String,
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub requester: Requester,
    pub company_id: Option<String>,
    pub channel: String,
    #[serde(rename = "type")]
    pub ticket_type: String,
    pub tags: Vec<String>,
    pub status: String,
    pub severity: String,
    pub assignee_id: Option<String>,
    pub triage: Option<Triage>,
    /// Whether an agent overrode the triaged severity.
    pub severity_overridden: bool,
    pub escalation: Escalation,
    pub comments_count: i32,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The earliest open SLA target's due time while the clock runs.
    pub sla_due_at: Option<DateTime<Utc>>,
    /// The SLA state (single-ticket answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSummary>,
    pub links: Links,
    pub created_by: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TicketView {
    /// A list item.
    pub fn summary(r: TicketRow) -> Self {
        let base = format!("/api/v1/tickets/{}", r.id);
        Self {
            triage: serde_json::from_str(&r.triage).ok(),
            tags: list_from_json(&r.tags),
            severity: Severity::from_rank(r.severity_rank).as_str().to_owned(),
            requester: Requester {
                name: r.requester_name,
                email: r.requester_email,
            },
            escalation: Escalation {
                level: r.escalation_level,
                to: r.escalated_to,
            },
            links: Links {
                comments: format!("{base}/comments"),
                history: format!("{base}/history"),
                sla: format!("{base}/sla"),
                this: base,
            },
            id: r.id,
            number: r.number,
            key: r.key,
            product_id: r.product_id,
            title: r.title,
            description: r.description,
            company_id: r.company_id,
            channel: r.channel,
            ticket_type: r.ticket_type,
            status: r.status,
            assignee_id: r.assignee_id,
            severity_overridden: r.severity_overridden != 0,
            comments_count: r.comments_count,
            first_response_at: r.first_response_at.map(utc),
            resolved_at: r.resolved_at.map(utc),
            closed_at: r.closed_at.map(utc),
            sla_due_at: r.sla_due_at.map(utc),
            sla: None,
            created_by: r.created_by,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        }
    }

    /// The full detail.
    pub fn detail(r: TicketRow, sla: &SlaRow, now: NaiveDateTime) -> Self {
        let mut v = Self::summary(r);
        v.sla = Some(SlaSummary::new(sla, now));
        v
    }
}

/// A ticket's SLA state in its detail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaSummary {
    /// `running`, `paused` or `stopped`.
    pub clock: &'static str,
    pub first_response_due_at: Option<DateTime<Utc>>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    pub first_response_breached_at: Option<DateTime<Utc>>,
    pub resolution_breached_at: Option<DateTime<Utc>>,
    /// Seconds the clock has run.
    pub elapsed_seconds: i64,
    /// Seconds it has been paused.
    pub paused_seconds: i64,
}

impl SlaSummary {
    /// The summary of a clock at `now`.
    pub fn new(s: &SlaRow, now: NaiveDateTime) -> Self {
        let clock = crate::routes::workflow::clock_of(s);
        Self {
            clock: match clock.state() {
                crate::domain::status::Clock::Running => "running",
                crate::domain::status::Clock::Paused => "paused",
                crate::domain::status::Clock::Stopped => "stopped",
            },
            first_response_due_at: s.first_response_due_at.map(utc),
            resolution_due_at: s.resolution_due_at.map(utc),
            first_response_breached_at: s.first_response_breached_at.map(utc),
            resolution_breached_at: s.resolution_breached_at.map(utc),
            elapsed_seconds: clock.elapsed_at(now),
            paused_seconds: clock.paused_at(now),
        }
    }
}

/// One target in `GET /tickets/{id}/sla`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaTarget {
    /// Minutes of running clock allowed.
    pub target_minutes: i64,
    pub due_at: Option<DateTime<Utc>>,
    /// When it was met (first response, resolution).
    pub met_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    /// Seconds of clock left (negative once overdue); `null` once met.
    pub remaining_seconds: Option<i64>,
}

/// A ledger entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// `start`, `pause`, `resume`, `stop`, `first_response`, `retarget`, `breach`.
    pub kind: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<LedgerRow> for LedgerEntry {
    fn from(r: LedgerRow) -> Self {
        Self {
            kind: r.kind,
            target: r.target,
            detail: r.detail,
            at: utc(r.at),
        }
    }
}

/// `GET /tickets/{id}/sla`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlaView {
    pub severity: String,
    /// `running`, `paused` or `stopped`.
    pub clock: &'static str,
    /// `null` when the product's policy has no targets for this severity.
    pub first_response: Option<SlaTarget>,
    pub resolution: Option<SlaTarget>,
    pub elapsed_seconds: i64,
    pub paused_seconds: i64,
    pub ledger: Vec<LedgerEntry>,
}

/// A comment or internal note.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommentView {
    pub id: String,
    pub body: String,
    /// `public` or `internal`.
    pub visibility: String,
    /// `agent` or `requester`.
    pub author_kind: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<CommentRow> for CommentView {
    fn from(r: CommentRow) -> Self {
        Self {
            id: r.id,
            body: r.body,
            visibility: r.visibility,
            author_kind: r.author_kind,
            author_id: r.author_id,
            author_name: r.author_name,
            created_at: utc(r.created_at),
        }
    }
}

/// One change of a ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    /// The entry's id; the first entry (`created`, read off the ticket) has the ticket's.
    pub id: String,
    /// User id, `service:<name>` or `system`.
    pub actor: String,
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<HistoryRow> for HistoryView {
    fn from(r: HistoryRow) -> Self {
        Self {
            id: r.id,
            actor: r.actor,
            field: r.field,
            from: r.from_value,
            to: r.to_value,
            note: r.note,
            at: utc(r.at),
        }
    }
}
