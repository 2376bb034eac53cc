//! The envelope every event travels in, and the trait every event's `data` implements.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event on the wire (DESIGN.md §6). `data` is the event type's own struct. Unknown
/// fields are ignored, so a field added later does not turn every event into a poison message
/// for consumers built before it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// UUID v7, unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// The event type, also the routing key (`user.created`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Version of `data`'s shape for this type; a breaking change makes a new version.
    pub version: u32,
    /// When the change happened (the transaction's time).
    pub occurred_at: DateTime<Utc>,
    /// The tenant the change belongs to; absent for installation-wide events.
    pub tenant_id: Option<String>,
    /// Who caused it: a user id, `service:<name>`, `system`, or `anonymous`.
    pub actor: String,
    /// The service that published it.
    pub source: String,
    /// W3C trace context of the request or event that caused it.
    pub traceparent: Option<String>,
    /// The event's own data.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl Envelope {
    /// Reads `data` as event type `E`, checking the type and version.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                found: self.event_type.clone(),
            });
        }
        if self.version != E::VERSION {
            return Err(DecodeError::UnknownVersion {
                event_type: self.event_type.clone(),
                version: self.version,
            });
        }
        serde_json::from_value(self.data.clone()).map_err(|e| DecodeError::Data(e.to_string()))
    }

    /// Parses an envelope from the bytes of a message.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))
    }

    /// The trace id carried in `traceparent`, if it is well formed.
    pub fn trace_id(&self) -> Option<&str> {
        let tp = self.traceparent.as_deref()?;
        let mut parts = tp.split('-');
        let (_version, trace) = (parts.next()?, parts.next()?);
        (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
    }
}

/// Why a message could not be read as an event.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an envelope at all.
    #[error("not an event envelope: {0}")]
    Envelope(String),
    /// `data` does not match the type's struct.
    #[error("event data does not match its type: {0}")]
    Data(String),
    /// Decoded as the wrong type.
    #[error("expected event type {expected}, found {found}")]
    WrongType {
        /// Asked for.
        expected: &'static str,
        /// In the envelope.
        found: String,
    },
    /// A version this build does not know.
    #[error("unknown version {version} of event type {event_type}")]
    UnknownVersion {
        /// Type.
        event_type: String,
        /// Version.
        version: u32,
    },
}

/// What an event is about, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Kind of entity (`user`, `role`, `tenant`, `session`).
    pub entity_type: &'static str,
    /// Its id (may be empty when there is none, e.g. a failed login for an unknown email).
    pub entity_id: String,
    /// One line for people, without secrets.
    pub summary: String,
}

/// A [`Subject`] (what the event is about, for the audit log).
pub(crate) fn subject(entity_type: &'static str, entity_id: &str, summary: String) -> Subject {
    Subject {
        entity_type,
        entity_id: entity_id.to_owned(),
        summary,
    }
}

/// An event type: its `data` struct, routing key and version.
pub trait Event: Serialize + DeserializeOwned + utoipa::ToSchema + Send + Sync + 'static {
    /// The type and routing key, `<entity>.<past-tense verb>`.
    const TYPE: &'static str;
    /// The version of this struct's shape.
    const VERSION: u32 = 1;
    /// The service that publishes it.
    const SOURCE: &'static str;
    /// One sentence for the AsyncAPI document.
    const DESCRIPTION: &'static str;
    /// Whether `data` carries a secret (a token): its outbox payload is blanked once sent.
    const SENSITIVE: bool = false;

    /// The aggregate whose events must stay in order (`user:<id>`).
    fn aggregate(&self) -> String;

    /// What the event is about, for the audit log.
    fn subject(&self) -> Subject;
}
