//! Writing events: one outbox row per event, in the caller's transaction.

use chrono::{DateTime, Utc};
use fleetdesk_store::DbConn;
use fleetdesk_store::diesel::QueryResult;
use fleetdesk_store::diesel::result::Error as DieselError;
use fleetdesk_store::outbox::{self, NewMessage};
use uuid::Uuid;

use crate::envelope::{Envelope, Event};

/// Who caused the events of one change, when, and under which trace.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The tenant; `None` for installation-wide events.
    pub tenant_id: Option<String>,
    /// User id, `service:<name>`, `system` or `anonymous`.
    pub actor: String,
    /// W3C trace context to carry to consumers.
    pub traceparent: Option<String>,
    /// The time of the change.
    pub at: DateTime<Utc>,
}

impl Origin {
    /// An origin at `at`, without trace context.
    pub fn new(tenant_id: Option<String>, actor: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id,
            actor: actor.into(),
            traceparent: None,
            at,
        }
    }

    /// The same origin under trace context `traceparent`.
    pub fn traced(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The origin of events caused by handling `envelope` (same tenant and trace).
    pub fn caused_by(envelope: &Envelope, actor: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id: envelope.tenant_id.clone(),
            actor: actor.into(),
            traceparent: envelope.traceparent.clone(),
            at,
        }
    }
}

/// Builds the envelope of `event`.
pub fn envelope<E: Event>(origin: &Origin, event: &E) -> Result<Envelope, serde_json::Error> {
    Ok(Envelope {
        id: Uuid::now_v7(),
        event_type: E::TYPE.to_owned(),
        version: E::VERSION,
        occurred_at: origin.at,
        tenant_id: origin.tenant_id.clone(),
        actor: origin.actor.clone(),
        source: E::SOURCE.to_owned(),
        traceparent: origin.traceparent.clone(),
        data: serde_json::to_value(event)?,
    })
}

/// Writes `event` to the outbox. Call it inside the transaction of the change it announces:
/// the event is published if and only if the change commits.
pub fn emit<E: Event>(conn: &mut DbConn, origin: &Origin, event: &E) -> QueryResult<Envelope> {
    let env = envelope(origin, event).map_err(|e| DieselError::SerializationError(Box::new(e)))?;
    let payload =
        serde_json::to_string(&env).map_err(|e| DieselError::SerializationError(Box::new(e)))?;
    let id = env.id.to_string();
    outbox::insert(
        conn,
        &NewMessage {
            id: &id,
            aggregate: &event.aggregate(),
            routing_key: E::TYPE,
            payload: &payload,
            sensitive: E::SENSITIVE,
            // Real time, not the domain clock: the relay measures delay and backlog age by it.
            created_at: Utc::now().naive_utc(),
        },
    )?;
    Ok(env)
}
