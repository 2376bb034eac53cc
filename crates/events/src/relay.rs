//! The outbox relay: claims unsent rows, publishes them through a [`Bus`], marks them sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use fleetdesk_store::outbox::{self, Claimed};
use fleetdesk_store::{Db, StoreError, processed};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::bus::{Bus, BusError, Message};

/// How a relay batches, waits and cleans up.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows claimed per round.
    pub batch: i64,
    /// How long a claim holds before another relay may take the rows over.
    pub lease: Duration,
    /// Longest wait for a broker's confirms; kept well under `lease`.
    pub publish_timeout: Duration,
    /// Poll interval when no wake-up arrives.
    pub poll: Duration,
    /// The wait after a round that found rows but not a whole batch, so that rows committed
    /// meanwhile go with the next round rather than each few alone. A round after a quiet
    /// spell goes at once; only a busy outbox waits, and it waits at most this long.
    pub linger: Duration,
    /// Longest pause after failures (the pause doubles from 100 ms).
    pub max_backoff: Duration,
    /// Sent rows (and processed-event records) older than this are deleted.
    pub retention: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 200,
            lease: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            linger: Duration::from_millis(20),
            max_backoff: Duration::from_secs(10),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Publishes one service's outbox.
#[derive(Clone)]
pub struct Relay {
    service: String,
    id: String,
    db: Db,
    bus: Arc<dyn Bus>,
    options: RelayOptions,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows the broker took and that are now marked sent.
    pub sent: usize,
    /// Rows given back for a later round.
    pub failed: usize,
}

/// Stops the relay task when dropped.
#[derive(Debug)]
pub struct RelayHandle(JoinHandle<()>);

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Deserialize)]
struct TraceOnly {
    traceparent: Option<String>,
}

impl Relay {
    /// A relay for `service`'s outbox in `db`, publishing through `bus`.
    pub fn new(service: impl Into<String>, db: Db, bus: Arc<dyn Bus>) -> Self {
        let service = service.into();
        Self {
            id: format!("{service}-{}", uuid::Uuid::now_v7()),
            service,
            db,
            bus,
            options: RelayOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: RelayOptions) -> Self {
        self.options = options;
        self
    }

    /// This relay's id (claims are stamped with it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs the relay until the handle is dropped.
    pub fn spawn(self) -> RelayHandle {
        RelayHandle(tokio::spawn(async move { self.run().await }))
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        let mut last_upkeep: Option<Instant> = None;
        loop {
            let written = self.db.written().notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if last_upkeep.is_none_or(|t| t.elapsed() > Duration::from_secs(15)) {
                if let Err(e) = self.upkeep().await {
                    tracing::warn!(service = %self.service, error = %e, "outbox upkeep failed");
                }
                last_upkeep = Some(Instant::now());
            }
            match self.round().await {
                Ok(round) if round.claimed == 0 => {
                    backoff = Duration::from_millis(100);
                    // Woken by this process's commits; rows another process wrote (a
                    // replica, a command-line tool) wait for the poll.
                    tokio::select! {
                        () = &mut written => {}
                        () = tokio::time::sleep(self.options.poll) => {}
                    }
                }
                Ok(round) if round.failed == 0 => {
                    backoff = Duration::from_millis(100);
                    // Each round costs the relay, the bus and every consumer a few
                    // statements whatever its size: under a steady stream of commits, rounds
                    // of a handful of rows cost about a sixth of the CPU of a ticket's create.
                    if i64::try_from(round.claimed).is_ok_and(|n| n < self.options.batch) {
                        tokio::time::sleep(self.options.linger).await;
                    }
                }
                Ok(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
                Err(e) => {
                    tracing::warn!(service = %self.service, error = %e, "outbox relay round failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
    }

    /// One round: claim a batch, publish it, mark what the broker took.
    pub async fn round(&self) -> Result<Round, StoreError> {
        let now = Utc::now().naive_utc();
        let expires = now
            + chrono::Duration::from_std(self.options.lease).unwrap_or(chrono::Duration::zero());
        let (id, batch) = (self.id.clone(), self.options.batch);
        let rows: Vec<Claimed> = self
            .db
            .run(move |c| outbox::claim(c, &id, now, expires, batch).map_err(StoreError::from))
            .await?;
        if rows.is_empty() {
            return Ok(Round::default());
        }
        let messages: Vec<Message> = rows
            .iter()
            .map(|r| Message {
                id: r.id.clone(),
                routing_key: r.routing_key.clone(),
                traceparent: serde_json::from_str::<TraceOnly>(&r.payload)
                    .ok()
                    .and_then(|t| t.traceparent),
                payload: r.payload.clone().into_bytes(),
            })
            .collect();
        let started = Instant::now();
        let results =
            tokio::time::timeout(self.options.publish_timeout, self.bus.publish(&messages))
                .await
                .unwrap_or_else(|_| {
                    vec![
                        Err(BusError::Unavailable(
                            "timed out waiting for confirms".into()
                        ));
                        rows.len()
                    ]
                });
        let labels = [("service", self.service.clone())];
        metrics::histogram!("events_publish_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        let done = Utc::now().naive_utc();
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut error = String::new();
        for (row, result) in
            rows.iter()
                .zip(results.iter().chain(std::iter::repeat(&Err(BusError::Other(
                    "no result from the bus".into(),
                )))))
        {
            match result {
                Ok(()) => {
                    sent.push(row.seq);
                    let delay = (done - row.created_at).to_std().unwrap_or_default();
                    metrics::histogram!("events_commit_to_publish_seconds", &labels)
                        .record(delay.as_secs_f64());
                }
                Err(e) => {
                    if error.is_empty() {
                        error = e.to_string();
                    }
                    failed.push(row.seq);
                }
            }
        }
        metrics::counter!("events_published_total", &labels).increment(sent.len() as u64);
        if !failed.is_empty() {
            metrics::counter!("events_publish_failures_total", &labels)
                .increment(failed.len() as u64);
            tracing::warn!(service = %self.service, failed = failed.len(), error = %error, "publishing failed; rows kept for retry");
        }
        let round = Round {
            claimed: rows.len(),
            sent: sent.len(),
            failed: failed.len(),
        };
        let id = self.id.clone();
        self.db
            .run(move |c| {
                outbox::mark_sent(c, &id, &sent, done)?;
                outbox::release(c, &id, &failed, &error)?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(round)
    }

    /// Publishes until the outbox is empty (or a round fails); for tests and benchmarks.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let round = self.round().await?;
            total += round.sent;
            if round.claimed == 0 || round.failed > 0 {
                return Ok(total);
            }
        }
    }

    /// Records the backlog gauges and deletes what the retention period has passed.
    async fn upkeep(&self) -> Result<(), StoreError> {
        let retention =
            chrono::Duration::from_std(self.options.retention).unwrap_or(chrono::Duration::days(7));
        let (backlog, purged) = self
            .db
            .run(move |c| {
                let before = Utc::now().naive_utc() - retention;
                let purged = outbox::purge_sent(c, before)? + processed::purge(c, before)?;
                Ok::<_, StoreError>((outbox::backlog(c)?, purged))
            })
            .await?;
        let labels = [("service", self.service.clone())];
        metrics::gauge!("outbox_backlog", &labels).set(backlog.unsent as f64);
        let age = backlog
            .oldest
            .and_then(|t| (Utc::now().naive_utc() - t).to_std().ok())
            .unwrap_or_default();
        metrics::gauge!("outbox_oldest_unsent_seconds", &labels).set(age.as_secs_f64());
        if purged > 0 {
            tracing::debug!(service = %self.service, purged, "purged old outbox and processed-event rows");
        }
        Ok(())
    }
}
