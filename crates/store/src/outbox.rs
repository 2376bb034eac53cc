//! The transactional outbox: rows written in the same transaction as the domain change, and
//! the queries the relay (in `fleetdesk-events`) uses to claim, publish and mark them.
//!
//! Claims are leases: a relay stamps the rows it takes with its id and an expiry, publishes
//! them outside any transaction, then marks them sent. Claiming is serialised (an advisory
//! transaction lock on PostgreSQL, `BEGIN IMMEDIATE` on SQLite) and skips every aggregate
//! whose earlier row another relay still holds, so several replicas publish disjoint rows and
//! each aggregate's events in order. A relay that dies mid-batch loses its lease and another
//! takes the rows over: they are then published again, which consumers absorb by event id.

use std::cell::Cell;

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::conn::{Backend, DbConn};
use crate::platform::outbox;

// Advisory lock serialising claims (any number unique to the outbox will do).
const CLAIM_LOCK: i64 = 7_100_001;

thread_local! {
    // Set by `insert` inside a transaction; read when that transaction ends.
    static PENDING: Cell<bool> = const { Cell::new(false) };
    // Set when a transaction that wrote outbox rows commits; taken by `Db::run`, which wakes
    // the relays of that database only.
    static COMMITTED: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn begin_transaction() {
    PENDING.with(|p| p.set(false));
}

pub(crate) fn end_transaction(committed: bool) {
    if PENDING.with(|p| p.replace(false)) && committed {
        COMMITTED.with(|c| c.set(true));
    }
}

/// Whether outbox rows were committed on this thread since the last call.
pub(crate) fn take_committed() -> bool {
    COMMITTED.with(|c| c.replace(false))
}

/// An outbox row to write.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// The event id (UUID v7); also the AMQP message id.
    pub id: &'a str,
    /// What the event is about (`user:<id>`): rows of one aggregate are published in order.
    pub aggregate: &'a str,
    /// The routing key (the event type).
    pub routing_key: &'a str,
    /// The serialised envelope.
    pub payload: &'a str,
    /// Whether the payload is blanked once it has been sent (it carries a secret).
    pub sensitive: bool,
    /// When the row was written.
    pub created_at: NaiveDateTime,
}

/// Writes an outbox row. Call it inside the transaction of the change it announces.
pub fn insert(conn: &mut DbConn, message: &NewMessage<'_>) -> QueryResult<()> {
    // This process's relay is woken by `Db::run` when the transaction commits. No NOTIFY:
    // PostgreSQL would serialise every notifying commit (migration `outbox_no_notify`).
    PENDING.with(|p| p.set(true));
    diesel::insert_into(outbox::table)
        .values(values(message))
        .execute(conn)?;
    Ok(())
}

/// The insert of an outbox row, for a caller that sends it as part of a larger PostgreSQL
/// statement ([`crate::Together`]) with the change it announces, in that change's
/// transaction or as its one statement ([`crate::one_statement`]). As with [`insert`], this
/// process's relay is woken when that commits (needlessly, and harmlessly, if the statement
/// is never run).
pub fn insertion<'a>(message: &NewMessage<'a>) -> impl QueryFragment<Pg> + QueryId + 'a {
    PENDING.with(|p| p.set(true));
    diesel::insert_into(outbox::table).values(values(message))
}

/// The inserts of several outbox rows as one statement of one shape however many
/// ([`crate::Unnest`]), for a caller that sends them with the changes they announce, as
/// [`insertion`] does one.
pub fn insertions<'a>(messages: &'a [NewMessage<'a>]) -> crate::Unnest<'a> {
    PENDING.with(|p| p.set(true));
    crate::Unnest::into("outbox")
        .text("id", messages, |m| m.id)
        .text("aggregate", messages, |m| m.aggregate)
        .text("routing_key", messages, |m| m.routing_key)
        .text("payload", messages, |m| m.payload)
        .int("sensitive", messages, |m| i32::from(m.sensitive))
        .ts("created_at", messages, |m| m.created_at)
}

#[allow(clippy::type_complexity)]
fn values<'a>(
    message: &NewMessage<'a>,
) -> (
    diesel::dsl::Eq<outbox::id, &'a str>,
    diesel::dsl::Eq<outbox::aggregate, &'a str>,
    diesel::dsl::Eq<outbox::routing_key, &'a str>,
    diesel::dsl::Eq<outbox::payload, &'a str>,
    diesel::dsl::Eq<outbox::sensitive, i32>,
    diesel::dsl::Eq<outbox::created_at, NaiveDateTime>,
    diesel::dsl::Eq<outbox::attempts, i32>,
) {
    (
        outbox::id.eq(message.id),
        outbox::aggregate.eq(message.aggregate),
        outbox::routing_key.eq(message.routing_key),
        outbox::payload.eq(message.payload),
        outbox::sensitive.eq(i32::from(message.sensitive)),
        outbox::created_at.eq(message.created_at),
        outbox::attempts.eq(0),
    )
}

/// A row a relay has claimed.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    /// Position in the outbox.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// Event id.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// Aggregate key.
    #[diesel(sql_type = Text)]
    pub aggregate: String,
    /// Routing key.
    #[diesel(sql_type = Text)]
    pub routing_key: String,
    /// Serialised envelope.
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// When it was written.
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
}

// Both backends: the candidates are the oldest unsent rows (the window, `{window}` of them),
// and an aggregate with a row under a live claim has no candidate. Its claimed rows are
// always older than its unclaimed ones (claims take rows oldest first), so when a window
// holds a candidate, it holds every claimed row that could stop it too.
const CLAIM_PG: &str = "\
WITH head AS (
  SELECT seq, aggregate, claim_expires FROM outbox
  WHERE sent_at IS NULL ORDER BY seq LIMIT {window})
UPDATE outbox SET claimed_by = $1, claim_expires = $2, attempts = attempts + 1
WHERE seq IN (
  SELECT o.seq FROM outbox o
  WHERE o.sent_at IS NULL
    AND o.seq <= (SELECT max(h.seq) FROM head h)
    AND (o.claim_expires IS NULL OR o.claim_expires < $3)
    AND o.aggregate <> ALL (ARRAY(SELECT h.aggregate FROM head h WHERE h.claim_expires >= $3))
  ORDER BY o.seq LIMIT {limit}
  FOR UPDATE SKIP LOCKED)
RETURNING seq, id, aggregate, routing_key, payload, created_at";

const CLAIM_SQLITE: &str = "\
WITH head AS (
  SELECT seq, aggregate, claim_expires FROM outbox
  WHERE sent_at IS NULL ORDER BY seq LIMIT {window})
UPDATE outbox SET claimed_by = ?1, claim_expires = ?2, attempts = attempts + 1
WHERE seq IN (
  SELECT o.seq FROM outbox o
  WHERE o.sent_at IS NULL
    AND o.seq <= (SELECT max(h.seq) FROM head h)
    AND (o.claim_expires IS NULL OR o.claim_expires < ?3)
    AND o.aggregate NOT IN (SELECT h.aggregate FROM head h WHERE h.claim_expires >= ?3)
  ORDER BY o.seq LIMIT {limit})
RETURNING seq, id, aggregate, routing_key, payload, created_at";

/// How many of the oldest unsent rows a claim of `limit` looks among: room for three other
/// relays' whole claims in front of its own.
const WINDOW: i64 = 4;

/// Claims up to `limit` unsent rows for `relay` until `expires`, oldest first, skipping
/// aggregates another relay is publishing. Returns them in outbox order.
///
/// A claim reads only the oldest `4 × limit` unsent rows, however long the backlog: it
/// finds the claimed rows among them, not among every unsent row. Reading them all made a
/// claim's cost grow with the backlog (about 1.4 µs a row: 70 ms a claim of 200 with 50,000
/// unsent), so a relay that fell behind a burst of writes fell further behind; with the
/// window a claim took 0.8 ms there. The price: while other relays' claims and the rows
/// queued behind them fill the whole window, a claim takes nothing until they are sent.
/// (A `NOT EXISTS` per row was worse still: planned as a nested loop over every unsent row
/// for each candidate when the statistics took the table for empty.)
pub fn claim(
    conn: &mut DbConn,
    relay: &str,
    now: NaiveDateTime,
    expires: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    crate::conn::transaction(conn, |conn| {
        let sql = match conn.backend() {
            Backend::Postgres => {
                // No bitmap scan: it never marks the index entries of sent rows dead, so
                // every claim would visit each row sent since the last vacuum (measured:
                // 3,000 pages and 8 ms a claim after 10,000 creates). A plain index scan
                // marks them as it passes, and the next claim skips them.
                //
                // And planned on every run with the table's size now (the text is still
                // parsed once): a generic plan is made once, for the table as it was then,
                // and kept until the table is next analysed. Made while the outbox was
                // nearly empty, it joined the candidates to a scan of the whole table;
                // with 60,000 rows written before autovacuum came by (or with autovacuum
                // off), one claim ran for minutes and the relay stood still.
                conn.batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock({CLAIM_LOCK}); SET LOCAL enable_bitmapscan = off; \
                     SET LOCAL plan_cache_mode = force_custom_plan"
                ))?;
                CLAIM_PG
            }
            Backend::Sqlite => CLAIM_SQLITE,
        };
        // Prepared once per connection, so parsed once (planned per run on PostgreSQL, see
        // above). The limit and the window are written into the text: a relay always claims
        // the same number, and SQLite's planner sees them too.
        let limit = limit.max(0);
        let sql = sql
            .replace("{limit}", &limit.to_string())
            .replace("{window}", &limit.saturating_mul(WINDOW).to_string());
        let mut rows = crate::Prepared(
            diesel::sql_query(sql)
                .bind::<Text, _>(relay)
                .bind::<Timestamp, _>(expires)
                .bind::<Timestamp, _>(now),
        )
        .load::<Claimed>(conn)?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    })
}

/// Marks rows sent (those still claimed by `relay`), blanking the payload of sensitive ones.
/// Returns how many rows were marked.
pub fn mark_sent(
    conn: &mut DbConn,
    relay: &str,
    seqs: &[i64],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if seqs.is_empty() {
        return Ok(0);
    }
    // One statement: the blanking and the marking cannot part.
    let payload = diesel::dsl::sql::<Text>("CASE WHEN sensitive = 1 THEN '' ELSE payload END");
    let update = diesel::update(
        outbox::table
            .filter(outbox::seq.eq_any(seqs))
            .filter(outbox::claimed_by.eq(relay))
            .filter(outbox::sent_at.is_null()),
    )
    .set((
        outbox::payload.eq(payload),
        outbox::sent_at.eq(Some(now)),
        outbox::claimed_by.eq(None::<String>),
        outbox::claim_expires.eq(None::<NaiveDateTime>),
        outbox::last_error.eq(None::<String>),
    ));
    // Not kept prepared: planned on every run, for the reason the claim is (a generic plan
    // made while the outbox was nearly empty scans the whole table for the batch's rows).
    update.execute(conn)
}

/// Gives rows back after a failed publish, recording why, so the next claim retries them.
pub fn release(conn: &mut DbConn, relay: &str, seqs: &[i64], error: &str) -> QueryResult<usize> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let error: String = error.chars().take(500).collect();
    diesel::update(
        outbox::table
            .filter(outbox::seq.eq_any(seqs))
            .filter(outbox::claimed_by.eq(relay)),
    )
    .set((
        outbox::claimed_by.eq(None::<String>),
        outbox::claim_expires.eq(None::<NaiveDateTime>),
        outbox::last_error.eq(Some(error)),
    ))
    .execute(conn)
}

/// Deletes rows sent before `before`; returns how many.
pub fn purge_sent(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::sent_at.is_not_null())
            .filter(outbox::sent_at.lt(before)),
    )
    .execute(conn)
}

/// Unsent rows and when the oldest of them was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Rows not yet sent.
    pub unsent: i64,
    /// `created_at` of the oldest unsent row.
    pub oldest: Option<NaiveDateTime>,
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    unsent: i64,
    #[diesel(sql_type = Nullable<Timestamp>)]
    oldest: Option<NaiveDateTime>,
}

/// The outbox backlog, for metrics and tests.
pub fn backlog(conn: &mut DbConn) -> QueryResult<Backlog> {
    let row = diesel::sql_query(
        "SELECT COUNT(*) AS unsent, MIN(created_at) AS oldest FROM outbox WHERE sent_at IS NULL",
    )
    .get_result::<BacklogRow>(conn)?;
    Ok(Backlog {
        unsent: row.unsent,
        oldest: row.oldest,
    })
}

/// How many times a row has been claimed, and its payload: for tests and inspection.
pub fn attempts(conn: &mut DbConn, id: &str) -> QueryResult<(i32, String)> {
    outbox::table
        .filter(outbox::id.eq(id))
        .select((outbox::attempts, outbox::payload))
        .first(conn)
}

/// How many rows (sent or not) carry events of `routing_key`: for tests and inspection.
pub fn count_of(conn: &mut DbConn, routing_key: &str) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::routing_key.eq(routing_key))
        .count()
        .get_result(conn)
}
