//! Idempotent consumers: a handler's writes and the event id commit in one transaction.

use std::sync::Arc;

use chrono::Utc;
use fleetdesk_store::{Db, DbConn, StoreError, processed};
use tracing::Instrument;

use crate::bus::{BoxFuture, Deliver, Incoming, Outcome};
use crate::envelope::Envelope;

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (database busy, a dependency down, a bug fixed by a deploy).
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time: park the event now.
    #[error("{0}")]
    Permanent(String),
    /// The database failed: transient.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<fleetdesk_store::diesel::result::Error> for HandlerError {
    fn from(e: fleetdesk_store::diesel::result::Error) -> Self {
        HandlerError::Store(e.into())
    }
}

/// What a consuming service does with an event, inside the transaction that also records the
/// event id. Return an error to roll every write back.
pub trait Handler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError>;
}

impl<F> Handler for F
where
    F: Fn(&mut DbConn, &Envelope) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    fn handle(&self, conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
        self(conn, event)
    }
}

/// Delivers events to a [`Handler`] exactly once in effect.
pub struct Consumer {
    name: String,
    db: Db,
    handler: Arc<dyn Handler>,
}

impl Consumer {
    /// A consumer named `name` (the key in `processed_events`) writing to `db`.
    pub fn new(name: impl Into<String>, db: Db, handler: impl Handler) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            db,
            handler: Arc::new(handler),
        })
    }

    async fn run(&self, message: &Incoming) -> Outcome {
        let envelope = match Envelope::from_slice(&message.payload) {
            Ok(e) => e,
            Err(e) => return Outcome::Reject(e.to_string()),
        };
        if envelope.event_type != message.routing_key {
            return Outcome::Reject(format!(
                "routing key {} does not match event type {}",
                message.routing_key, envelope.event_type
            ));
        }
        let span = tracing::info_span!(
            "event",
            consumer = %self.name,
            event.id = %envelope.id,
            event_type = %envelope.event_type,
            attempt = message.attempt,
            trace_id = envelope.trace_id().unwrap_or(""),
        );
        let handler = self.handler.clone();
        let name = self.name.clone();
        let result = self
            .db
            .transaction(move |conn| {
                let id = envelope.id.to_string();
                if !processed::first_time(conn, &name, &id, Utc::now().naive_utc())? {
                    return Ok(false);
                }
                handler.handle(conn, &envelope)?;
                Ok::<_, HandlerError>(true)
            })
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match result {
            Ok(true) => Outcome::Done,
            Ok(false) => {
                tracing::debug!("already handled; acknowledged without effect");
                metrics::counter!("events_duplicates_total", "consumer" => self.name.clone())
                    .increment(1);
                Outcome::Done
            }
            Err(HandlerError::Permanent(e)) => {
                tracing::warn!(error = %e, "event rejected");
                Outcome::Reject(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "event handling failed; will retry");
                Outcome::Retry(e.to_string())
            }
        }
    }
}

impl Deliver for Consumer {
    fn deliver<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(message))
    }
}
