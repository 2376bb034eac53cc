//! Events published by tickets: products, companies and tickets.
//!
//! `product.*` and `company.*` carry every field other services keep in their read models
//! (knowledge, changes and vault), so a consumer never has to call back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::subject;

macro_rules! tickets_event {
    ($($t:tt)*) => { service_event!("tickets"; $($t)*); };
}

/// A product as it is after a change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductState {
    pub product_id: String,
    /// Short upper-case key used in ticket keys (`PAY`).
    pub key: String,
    pub name: String,
    pub description: String,
    /// `active` or `archived`.
    pub status: String,
    pub lead_id: Option<String>,
    pub default_assignee_id: Option<String>,
}

/// A product was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductCreated {
    #[serde(flatten)]
    pub product: ProductState,
}
tickets_event!(
    ProductCreated,
    "product.created",
    "A product was created.",
    |e| format!("product:{}", e.product.product_id),
    subject(
        "product",
        &e.product.product_id,
        format!("product {} created", e.product.key)
    )
);

/// A product changed (name, description, channels, assignees, SLA policy or triage rules).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductUpdated {
    #[serde(flatten)]
    pub product: ProductState,
    /// The fields that changed.
    pub changed: Vec<String>,
}
tickets_event!(
    ProductUpdated,
    "product.updated",
    "A product changed; carries the product as it is now.",
    |e| format!("product:{}", e.product.product_id),
    subject(
        "product",
        &e.product.product_id,
        format!(
            "product {} changed: {}",
            e.product.key,
            e.changed.join(", ")
        )
    )
);

/// A product was archived: no new tickets can be raised about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductArchived {
    pub product_id: String,
    pub key: String,
}
tickets_event!(
    ProductArchived,
    "product.archived",
    "A product was archived; its tickets stay, new ones cannot be raised.",
    |e| format!("product:{}", e.product_id),
    subject(
        "product",
        &e.product_id,
        format!("product {} archived", e.key)
    )
);

/// A company (customer account) as it is after a change. The address is not carried: it is
/// readable only with `company.read.address`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyState {
    pub company_id: String,
    pub name: String,
    /// Unique per tenant (e.g. a customer number).
    pub identifier: String,
    pub email_domains: Vec<String>,
    pub external_ref: Option<String>,
}

/// A company was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyCreated {
    #[serde(flatten)]
    pub company: CompanyState,
}
tickets_event!(
    CompanyCreated,
    "company.created",
    "A customer company was created.",
    |e| format!("company:{}", e.company.company_id),
    subject(
        "company",
        &e.company.company_id,
        format!("company {} created", e.company.identifier)
    )
);

/// A company changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyUpdated {
    #[serde(flatten)]
    pub company: CompanyState,
    pub changed: Vec<String>,
}
tickets_event!(
    CompanyUpdated,
    "company.updated",
    "A customer company changed; carries the company as it is now.",
    |e| format!("company:{}", e.company.company_id),
    subject(
        "company",
        &e.company.company_id,
        format!(
            "company {} changed: {}",
            e.company.identifier,
            e.changed.join(", ")
        )
    )
);

/// A company was deleted (its tickets keep their history).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyDeleted {
    pub company_id: String,
    pub identifier: String,
}
tickets_event!(
    CompanyDeleted,
    "company.deleted",
    "A customer company was deleted.",
    |e| format!("company:{}", e.company_id),
    subject(
        "company",
        &e.company_id,
        format!("company {} deleted", e.identifier)
    )
);

/// A ticket was raised (already triaged).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketCreated {
    pub ticket_id: String,
    /// `<product key>-<number>`.
    pub key: String,
    pub number: i64,
    pub product_id: String,
    pub title: String,
    pub status: String,
    /// `P0` (most severe) to `P4`.
    pub severity: String,
    #[serde(rename = "type")]
    pub ticket_type: String,
    pub channel: String,
    pub requester_email: String,
    pub company_id: Option<String>,
    pub assignee_id: Option<String>,
    /// `rules` or the model's name.
    pub triaged_by: String,
}
tickets_event!(
    TicketCreated,
    "ticket.created",
    "A ticket was raised and triaged.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{} created ({}, {})", e.key, e.severity, e.ticket_type)
    )
);

/// A ticket's title, description, type, tags or company changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketUpdated {
    pub ticket_id: String,
    pub key: String,
    pub changed: Vec<String>,
}
tickets_event!(
    TicketUpdated,
    "ticket.updated",
    "A ticket's title, description, type, tags or company changed.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{} changed: {}", e.key, e.changed.join(", "))
    )
);

/// A ticket moved through the workflow.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketStatusChanged {
    pub ticket_id: String,
    pub key: String,
    pub from: String,
    pub to: String,
    pub note: Option<String>,
}
tickets_event!(
    TicketStatusChanged,
    "ticket.status_changed",
    "A ticket moved from one status to another.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{}: {} → {}", e.key, e.from, e.to)
    )
);

/// A ticket was assigned, reassigned or unassigned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketAssigned {
    pub ticket_id: String,
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
}
tickets_event!(
    TicketAssigned,
    "ticket.assigned",
    "A ticket's assignee changed (`to` is null when unassigned).",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!(
            "{} assigned to {}",
            e.key,
            e.to.as_deref().unwrap_or("nobody")
        )
    )
);

/// An agent overrode a ticket's severity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketSeverityChanged {
    pub ticket_id: String,
    pub key: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}
tickets_event!(
    TicketSeverityChanged,
    "ticket.severity_changed",
    "A ticket's severity was overridden; SLA due times moved with it.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{} severity {} → {}", e.key, e.from, e.to)
    )
);

/// A ticket was escalated to someone (by an agent, or by an SLA breach).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketEscalated {
    pub ticket_id: String,
    pub key: String,
    pub target_user_id: String,
    /// How many times it has been escalated, this one included.
    pub level: i32,
    /// `manual` or `sla_breach`.
    pub reason: String,
    pub note: Option<String>,
}
tickets_event!(
    TicketEscalated,
    "ticket.escalated",
    "A ticket was escalated to a user (manually or on an SLA breach).",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{} escalated to {} ({})", e.key, e.target_user_id, e.reason)
    )
);

/// A comment or internal note was added to a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketCommentAdded {
    pub ticket_id: String,
    pub key: String,
    pub comment_id: String,
    /// `public` (the requester sees it) or `internal`.
    pub visibility: String,
    /// `agent` or `requester`.
    pub author_kind: String,
    pub author_id: Option<String>,
    pub body: String,
}
tickets_event!(
    TicketCommentAdded,
    "ticket.comment_added",
    "A public comment or an internal note was added to a ticket.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{}: {} comment by {}", e.key, e.visibility, e.author_kind)
    )
);

/// A ticket missed an SLA target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketSlaBreached {
    pub ticket_id: String,
    pub key: String,
    /// `first_response` or `resolution`.
    pub target: String,
    pub severity: String,
    pub due_at: DateTime<Utc>,
}
tickets_event!(
    TicketSlaBreached,
    "ticket.sla_breached",
    "A ticket missed its first-response or resolution target.",
    |e| format!("ticket:{}", e.ticket_id),
    subject(
        "ticket",
        &e.ticket_id,
        format!("{} breached its {} target", e.key, e.target)
    )
);

/// A ticket was deleted (kept for audit, hidden from every list).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketDeleted {
    pub ticket_id: String,
    pub key: String,
}
tickets_event!(
    TicketDeleted,
    "ticket.deleted",
    "A ticket was deleted; it is kept for audit.",
    |e| format!("ticket:{}", e.ticket_id),
    subject("ticket", &e.ticket_id, format!("{} deleted", e.key))
);
