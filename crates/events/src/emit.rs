//! Writing events: one outbox row per event, in the caller's transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
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

/// An event ready for the outbox: its envelope and its serialised row. Most callers use
/// [`emit`]; one that sends its writes as a single statement adds [`Outgoing::message`] to it
/// through [`fleetdesk_store::outbox::insertion`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The envelope.
    pub envelope: Envelope,
    id: String,
    aggregate: String,
    routing_key: &'static str,
    payload: String,
    sensitive: bool,
    created_at: NaiveDateTime,
}

impl Outgoing {
    /// The event `event` from `origin`.
    pub fn new<E: Event>(origin: &Origin, event: &E) -> QueryResult<Self> {
        let ser = |e: serde_json::Error| DieselError::SerializationError(Box::new(e));
        let envelope = envelope(origin, event).map_err(ser)?;
        let payload = serde_json::to_string(&envelope).map_err(ser)?;
        Ok(Self {
            id: envelope.id.to_string(),
            envelope,
            aggregate: event.aggregate(),
            routing_key: E::TYPE,
            payload,
            sensitive: E::SENSITIVE,
            // Real time, not the domain clock: the relay measures delay and backlog age by it.
            created_at: Utc::now().naive_utc(),
        })
    }

    /// The outbox row to write.
    pub fn message(&self) -> NewMessage<'_> {
        NewMessage {
            id: &self.id,
            aggregate: &self.aggregate,
            routing_key: self.routing_key,
            payload: &self.payload,
            sensitive: self.sensitive,
            created_at: self.created_at,
        }
    }
}

/// Writes `event` to the outbox. Call it inside the transaction of the change it announces:
/// the event is published if and only if the change commits.
pub fn emit<E: Event>(conn: &mut DbConn, origin: &Origin, event: &E) -> QueryResult<Envelope> {
    let out = Outgoing::new(origin, event)?;
    outbox::insert(conn, &out.message())?;
    Ok(out.envelope)
}
