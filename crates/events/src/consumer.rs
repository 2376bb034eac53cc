//! Idempotent consumers: a handler's writes and the event id commit in one transaction.

use std::sync::Arc;

use chrono::Utc;
use fleetdesk_store::{Db, DbConn, StoreError, processed};

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

    /// Handles several new events of a lot, in order, with one write for all where one
    /// statement per event would do the same (an append-only log, say). `None`, the default:
    /// they are handled one by one with [`Handler::handle`]. On an error nothing of the lot
    /// is kept and its events are handled again one by one, so the one at fault is found.
    fn handle_together(
        &self,
        _conn: &mut DbConn,
        _events: &[&Envelope],
    ) -> Option<Result<(), HandlerError>> {
        None
    }
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

    fn span(&self, envelope: &Envelope, attempt: u32) -> tracing::Span {
        tracing::info_span!(
            "event",
            consumer = %self.name,
            event.id = %envelope.id,
            event_type = %envelope.event_type,
            attempt,
            trace_id = envelope.trace_id().unwrap_or(""),
        )
    }

    fn duplicate(&self) {
        tracing::debug!("already handled; acknowledged without effect");
        metrics::counter!("events_duplicates_total", "consumer" => self.name.clone()).increment(1);
    }

    /// Handles one event in a transaction of its own.
    async fn one(&self, message: &Incoming) -> Outcome {
        match self.lot(std::slice::from_ref(message)).await {
            Lot::Committed(first_times) => {
                if first_times.contains(&false) {
                    self.duplicate();
                }
                Outcome::Done
            }
            Lot::Failed(_, outcome) => outcome,
            // One event is never handled together (see `lot`); were it, it is tried again.
            Lot::Apart(_) => Outcome::Retry("handled together and failed".into()),
        }
    }

    /// Handles `messages` in order, as many as it can in one transaction: one commit for the
    /// lot instead of one each. An event that fails is settled as it would be on its own (its
    /// attempt counts once); the lot is rolled back, the events before it are handled again
    /// one by one, and the events after it form the next lot.
    async fn run_all(&self, messages: &[Incoming]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(messages.len());
        let mut rest = messages;
        while !rest.is_empty() {
            match self.lot(rest).await {
                Lot::Committed(first_times) => {
                    for first in &first_times {
                        if !first {
                            self.duplicate();
                        }
                        outcomes.push(Outcome::Done);
                    }
                    rest = &rest[first_times.len()..];
                }
                Lot::Failed(at, outcome) => {
                    for message in &rest[..at] {
                        outcomes.push(self.one(message).await);
                    }
                    outcomes.push(outcome);
                    rest = &rest[at + 1..];
                }
                Lot::Apart(n) => {
                    for message in &rest[..n] {
                        outcomes.push(self.one(message).await);
                    }
                    rest = &rest[n..];
                }
            }
        }
        outcomes
    }

    /// Handles the events at the head of `messages` (up to the first that is not one) in one
    /// transaction.
    async fn lot(&self, messages: &[Incoming]) -> Lot {
        let mut lot = Vec::with_capacity(messages.len());
        for message in messages {
            match decode(message) {
                Ok(envelope) => {
                    let span = self.span(&envelope, message.attempt);
                    lot.push((envelope, span));
                }
                Err(e) if lot.is_empty() => return Lot::Failed(0, Outcome::Reject(e)),
                Err(_) => break,
            }
        }
        let handler = self.handler.clone();
        let name = self.name.clone();
        let result = self
            .db
            .transaction(move |conn| {
                // The lot's ids in one statement, then each new event's effects.
                let ids: Vec<String> = lot.iter().map(|(e, _)| e.id.to_string()).collect();
                let first_times =
                    processed::first_times(conn, &name, &ids, Utc::now().naive_utc())?;
                let new: Vec<&Envelope> = lot
                    .iter()
                    .zip(&first_times)
                    .filter(|(_, first)| **first)
                    .map(|((envelope, _), _)| envelope)
                    .collect();
                if new.len() > 1
                    && let Some(together) = handler.handle_together(conn, &new)
                {
                    return match together {
                        Ok(()) => Ok(first_times),
                        Err(e) => Err(LotError::apart(lot.len(), e)),
                    };
                }
                for (at, ((envelope, span), first)) in lot.iter().zip(&first_times).enumerate() {
                    if *first {
                        let _entered = span.enter();
                        handler
                            .handle(conn, envelope)
                            .map_err(|e| LotError::at(at, e))?;
                    }
                }
                Ok::<_, LotError>(first_times)
            })
            .await;
        match result {
            Ok(first_times) => Lot::Committed(first_times),
            Err(LotError(lot)) => lot,
        }
    }
}

/// What became of a lot of events.
enum Lot {
    /// All of its events committed; `false` for those already handled before.
    Committed(Vec<bool>),
    /// The event at this index failed (with this outcome), and nothing was kept.
    Failed(usize, Outcome),
    /// Handling this many events together failed, and nothing was kept: each is handled
    /// again on its own.
    Apart(usize),
}

/// A lot's failure, as the transaction's error: [`Lot::Failed`] (at the event whose handler
/// failed, or at the first when the commit did, with its outcome logged in that event's span)
/// or [`Lot::Apart`].
struct LotError(Lot);

impl LotError {
    fn at(at: usize, error: HandlerError) -> Self {
        Self(Lot::Failed(at, failed(error)))
    }

    fn apart(n: usize, error: HandlerError) -> Self {
        tracing::debug!(error = %error, events = n, "handling a lot together failed; one by one");
        Self(Lot::Apart(n))
    }
}

impl From<StoreError> for LotError {
    fn from(e: StoreError) -> Self {
        Self(Lot::Failed(0, failed(e.into())))
    }
}

impl From<fleetdesk_store::diesel::result::Error> for LotError {
    fn from(e: fleetdesk_store::diesel::result::Error) -> Self {
        Self(Lot::Failed(0, failed(e.into())))
    }
}

/// The outcome of a failed event (logged in its span).
fn failed(error: HandlerError) -> Outcome {
    match error {
        HandlerError::Permanent(e) => {
            tracing::warn!(error = %e, "event rejected");
            Outcome::Reject(e)
        }
        e => {
            tracing::warn!(error = %e, "event handling failed; will retry");
            Outcome::Retry(e.to_string())
        }
    }
}

/// The envelope `message` carries, or why it carries none.
fn decode(message: &Incoming) -> Result<Envelope, String> {
    let envelope = Envelope::from_slice(&message.payload).map_err(|e| e.to_string())?;
    if envelope.event_type != message.routing_key {
        return Err(format!(
            "routing key {} does not match event type {}",
            message.routing_key, envelope.event_type
        ));
    }
    Ok(envelope)
}

impl Deliver for Consumer {
    fn deliver<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome> {
        Box::pin(self.one(message))
    }

    fn deliver_all<'a>(&'a self, messages: &'a [Incoming]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(self.run_all(messages))
    }
}
