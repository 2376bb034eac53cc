//! The in-process bus of the one-binary mode: durable, in a database of its own.
//!
//! Publishing writes one row per bound queue (bindings are kept in the database, so a queue
//! receives messages published before its consumer started); each subscription's worker
//! takes ready rows in order, deletes them when handled, delays failed ones by the retry
//! schedule and parks them (`dead = 1`) after the last attempt. Nothing is lost if the process
//! stops: unhandled rows are there at the next start.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use fleetdesk_store::diesel::prelude::*;
use fleetdesk_store::diesel::sql_types::Text;
use fleetdesk_store::platform::{bus_bindings, bus_messages};
use fleetdesk_store::{Backend, Db, DbConn, StoreError};
use tokio::sync::Notify;

use crate::bus::{
    BoxFuture, Bus, BusError, Deliver, Incoming, Message, Outcome, Subscription,
    SubscriptionHandle, topic_matches,
};

/// The in-process bus.
#[derive(Clone)]
pub struct LocalBus {
    db: Db,
    // One wake-up per queue: a publish wakes only the workers of the queues it wrote to (the
    // others would each run two queries to find nothing).
    signals: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

#[derive(Queryable)]
#[allow(dead_code)]
struct Row {
    seq: i64,
    queue: String,
    message_id: String,
    routing_key: String,
    payload: String,
    attempts: i32,
    available_at: NaiveDateTime,
    dead: i32,
    last_error: Option<String>,
}

impl Row {
    fn incoming(&self) -> Incoming {
        Incoming {
            id: Some(self.message_id.clone()),
            routing_key: self.routing_key.clone(),
            payload: self.payload.clone().into_bytes(),
            attempt: u32::try_from(self.attempts).unwrap_or(0) + 1,
        }
    }
}

fn sql(conn: &DbConn, pg: &'static str, sqlite: &'static str) -> &'static str {
    match conn.backend() {
        Backend::Postgres => pg,
        Backend::Sqlite => sqlite,
    }
}

fn add_binding(conn: &mut DbConn, queue: &str, pattern: &str) -> QueryResult<usize> {
    let text = sql(
        conn,
        "INSERT INTO bus_bindings (queue, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        "INSERT INTO bus_bindings (queue, pattern) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    );
    fleetdesk_store::diesel::sql_query(text)
        .bind::<Text, _>(queue)
        .bind::<Text, _>(pattern)
        .execute(conn)
}

/// Queues `messages` (routing key already matched) on `queue`: one statement on PostgreSQL,
/// where each is a round trip; one per message on SQLite, where none is.
fn enqueue(
    conn: &mut DbConn,
    queue: &str,
    messages: &[&Message],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let row = |m: &&Message| {
        (
            bus_messages::queue.eq(queue),
            bus_messages::message_id.eq(m.id.clone()),
            bus_messages::routing_key.eq(m.routing_key.clone()),
            bus_messages::payload.eq(String::from_utf8_lossy(&m.payload).into_owned()),
            bus_messages::attempts.eq(0),
            bus_messages::available_at.eq(now),
            bus_messages::dead.eq(0),
        )
    };
    match conn {
        DbConn::Pg(c) => fleetdesk_store::diesel::insert_into(bus_messages::table)
            .values(messages.iter().map(row).collect::<Vec<_>>())
            .on_conflict_do_nothing()
            .execute(c),
        DbConn::Sqlite(c) => messages.iter().try_fold(0, |n, m| {
            fleetdesk_store::diesel::insert_or_ignore_into(bus_messages::table)
                .values(row(m))
                .execute(c)
                .map(|k| n + k)
        }),
    }
}

impl LocalBus {
    /// A bus keeping its queues in `db` (connected with [`fleetdesk_store::Migrations::PLATFORM`]
    /// or any service migrations, which include the bus tables).
    pub fn new(db: Db) -> Self {
        Self {
            db,
            signals: Arc::default(),
        }
    }

    /// The wake-up of `queue`'s workers.
    fn signal(&self, queue: &str) -> Arc<Notify> {
        let mut signals = self.signals.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up first: every publish asks, and only a queue's first time needs its name
        // copied.
        if let Some(signal) = signals.get(queue) {
            return signal.clone();
        }
        let signal = Arc::new(Notify::new());
        signals.insert(queue.to_owned(), signal.clone());
        signal
    }

    /// Messages parked in `<name>.dead`, with their last error (inspection and tests).
    pub async fn dead(&self, name: &str) -> Result<Vec<(Incoming, String)>, StoreError> {
        let queue = format!("{name}.events");
        let rows: Vec<Row> = self
            .db
            .run(move |c| {
                bus_messages::table
                    .filter(bus_messages::queue.eq(queue))
                    .filter(bus_messages::dead.eq(1))
                    .order(bus_messages::seq)
                    .load::<Row>(c)
                    .map_err(StoreError::from)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let error = r.last_error.clone().unwrap_or_default();
                (r.incoming(), error)
            })
            .collect())
    }

    async fn publish_batch(&self, batch: &[Message]) -> Vec<Result<(), BusError>> {
        let batch_owned = batch.to_vec();
        let result = self
            .db
            .transaction(move |c| {
                let bindings: Vec<(String, String)> = bus_bindings::table
                    .select((bus_bindings::queue, bus_bindings::pattern))
                    .load(c)?;
                let now = Utc::now().naive_utc();
                // Each queue's messages in publishing order, a queue at most once per message.
                let mut queued: BTreeMap<&str, Vec<&Message>> = BTreeMap::new();
                for m in &batch_owned {
                    let mut queues: Vec<&str> = bindings
                        .iter()
                        .filter(|(_, p)| topic_matches(p, &m.routing_key))
                        .map(|(q, _)| q.as_str())
                        .collect();
                    queues.sort_unstable();
                    queues.dedup();
                    for q in queues {
                        queued.entry(q).or_default().push(m);
                    }
                }
                let mut written = Vec::with_capacity(queued.len());
                for (queue, messages) in queued {
                    enqueue(c, queue, &messages, now)?;
                    written.push(queue.to_owned());
                }
                Ok::<_, StoreError>(written)
            })
            .await;
        match result {
            Ok(queues) => {
                for queue in queues {
                    self.signal(&queue).notify_waiters();
                }
                vec![Ok(()); batch.len()]
            }
            Err(e) => vec![Err(BusError::Unavailable(e.to_string())); batch.len()],
        }
    }
}

async fn work(db: Db, signal: Arc<Notify>, sub: Subscription, handler: Arc<dyn Deliver>) {
    let queue = sub.queue();
    let limit = i64::from(sub.prefetch.max(1));
    loop {
        let woken = signal.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let q = queue.clone();
        let ready = db
            .run(move |c| {
                let now = Utc::now().naive_utc();
                // On the concrete connection: taken after every publish (see `concrete!`).
                let rows = fleetdesk_store::concrete!(&mut *c, |c| bus_messages::table
                    .filter(bus_messages::queue.eq(&q))
                    .filter(bus_messages::dead.eq(0))
                    .filter(bus_messages::available_at.le(now))
                    .order(bus_messages::seq)
                    .limit(limit)
                    .load::<Row>(c))?;
                let next: Option<NaiveDateTime> = if rows.is_empty() {
                    bus_messages::table
                        .filter(bus_messages::queue.eq(&q))
                        .filter(bus_messages::dead.eq(0))
                        .select(fleetdesk_store::diesel::dsl::min(
                            bus_messages::available_at,
                        ))
                        .first(c)?
                } else {
                    None
                };
                Ok::<_, StoreError>((rows, next))
            })
            .await;
        let (rows, next) = match ready {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "in-process bus unavailable");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if rows.is_empty() {
            let wait = next
                .and_then(|t| (t - Utc::now().naive_utc()).to_std().ok())
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        // The consumer handles the batch together (one transaction), and handled messages
        // are deleted together after it: one statement, not one per message. Until then a
        // crash delivers them again, which the consumer's idempotency absorbs.
        let messages: Vec<Incoming> = rows.iter().map(Row::incoming).collect();
        let outcomes = handler.deliver_all(&messages).await;
        let mut done = Vec::with_capacity(rows.len());
        for ((row, message), outcome) in rows.iter().zip(messages).zip(outcomes) {
            let seq = row.seq;
            let label = queue.clone();
            let settled = match outcome {
                Outcome::Done => {
                    metrics::counter!("events_consumed_total", "queue" => label).increment(1);
                    done.push(seq);
                    Ok(0)
                }
                Outcome::Retry(error) if message.attempt < sub.max_attempts() => {
                    let delay = sub.delay_after(message.attempt).unwrap_or_default();
                    let at = Utc::now().naive_utc()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                    let error: String = error.chars().take(1000).collect();
                    db.run(move |c| {
                        fleetdesk_store::diesel::update(
                            bus_messages::table.filter(bus_messages::seq.eq(seq)),
                        )
                        .set((
                            bus_messages::attempts.eq(bus_messages::attempts + 1),
                            bus_messages::available_at.eq(at),
                            bus_messages::last_error.eq(Some(error)),
                        ))
                        .execute(c)
                        .map_err(StoreError::from)
                    })
                    .await
                    // Counted once the retry is on record, not before: a reader of the
                    // counter finds the row as it says.
                    .inspect(|_| {
                        metrics::counter!("events_retried_total", "queue" => label).increment(1);
                    })
                }
                Outcome::Retry(error) | Outcome::Reject(error) => {
                    tracing::error!(queue = %queue, id = ?message.id, routing_key = %message.routing_key, attempt = message.attempt, error = %error, "event parked in the dead-letter queue");
                    let error: String = error.chars().take(1000).collect();
                    db.run(move |c| {
                        fleetdesk_store::diesel::update(
                            bus_messages::table.filter(bus_messages::seq.eq(seq)),
                        )
                        .set((
                            bus_messages::dead.eq(1),
                            bus_messages::last_error.eq(Some(error)),
                        ))
                        .execute(c)
                        .map_err(StoreError::from)
                    })
                    .await
                    .inspect(|_| {
                        metrics::counter!("events_dead_lettered_total", "queue" => label)
                            .increment(1);
                    })
                }
            };
            if let Err(e) = settled {
                // The row stays as it was and is delivered again; the consumer's
                // idempotency absorbs the repeat.
                tracing::warn!(queue = %queue, error = %e, "could not settle a message");
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
        }
        if !done.is_empty() {
            let deleted = db
                .run(move |c| {
                    fleetdesk_store::concrete!(c, |c| fleetdesk_store::diesel::delete(
                        bus_messages::table.filter(bus_messages::seq.eq_any(&done)),
                    )
                    .execute(c))
                    .map_err(StoreError::from)
                })
                .await;
            if let Err(e) = deleted {
                tracing::warn!(queue = %queue, error = %e, "could not settle handled messages");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Bus for LocalBus {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn publish<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Vec<Result<(), BusError>>> {
        Box::pin(self.publish_batch(batch))
    }

    fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Deliver>,
    ) -> BoxFuture<'_, Result<SubscriptionHandle, BusError>> {
        Box::pin(async move {
            let queue = subscription.queue();
            let patterns = subscription.bindings.clone();
            self.db
                .transaction(move |c| {
                    for p in &patterns {
                        add_binding(c, &queue, p)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))?;
            let signal = self.signal(&subscription.queue());
            let task = tokio::spawn(work(self.db.clone(), signal, subscription, handler));
            Ok(SubscriptionHandle { task })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            self.db
                .ping()
                .await
                .map_err(|e| BusError::Unavailable(e.to_string()))
        })
    }
}
