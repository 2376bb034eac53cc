//! The consumer idempotency record: a consumer's writes and the id of the event that caused
//! them commit together, so a redelivered event is recognised and has no second effect.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};

use crate::conn::{Backend, DbConn};
use crate::platform::processed_events;

/// Records that `consumer` handled `event_id`. `true` the first time; `false` if it was
/// already recorded (the caller then skips its effects). Call it inside the handler's
/// transaction: on PostgreSQL a concurrent duplicate waits here for the first to finish.
pub fn first_time(
    conn: &mut DbConn,
    consumer: &str,
    event_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let sql = match conn.backend() {
        Backend::Postgres => {
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING"
        }
        Backend::Sqlite => {
            "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING"
        }
    };
    let inserted = diesel::sql_query(sql)
        .bind::<Text, _>(consumer)
        .bind::<Text, _>(event_id)
        .bind::<Timestamp, _>(now)
        .execute(conn)?;
    Ok(inserted == 1)
}

/// Whether `consumer` has handled `event_id`.
pub fn seen(conn: &mut DbConn, consumer: &str, event_id: &str) -> QueryResult<bool> {
    let n: i64 = processed_events::table
        .filter(processed_events::consumer.eq(consumer))
        .filter(processed_events::event_id.eq(event_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Forgets records older than `before` (well past any redelivery window); returns how many.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(processed_events::table.filter(processed_events::processed_at.lt(before)))
        .execute(conn)
}
