//! The consumer idempotency record: a consumer's writes and the id of the event that caused
//! them commit together, so a redelivered event is recognised and has no second effect.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::conn::DbConn;
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
    // Prepared once per connection (a statement of its own per event would be parsed and
    // planned every time).
    let row = row(consumer, event_id, now);
    let inserted = match conn {
        DbConn::Pg(c) => diesel::insert_into(processed_events::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_or_ignore_into(processed_events::table)
            .values(row)
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// [`first_time`] for several events at once: for each of `event_ids`, whether this is the
/// first time (an id repeated in the list is first only at its first place). One statement on
/// PostgreSQL.
pub fn first_times(
    conn: &mut DbConn,
    consumer: &str,
    event_ids: &[String],
    now: NaiveDateTime,
) -> QueryResult<Vec<bool>> {
    let mut firsts = Vec::with_capacity(event_ids.len());
    match conn {
        // One id: the prepared single-row statement.
        DbConn::Pg(_) if event_ids.len() < 2 => {
            for id in event_ids {
                firsts.push(first_time(conn, consumer, id, now)?);
            }
        }
        DbConn::Pg(c) => {
            // In one order, so two lots sharing ids (a redelivery) wait for each other
            // instead of deadlocking.
            let mut sorted: Vec<&String> = event_ids.iter().collect();
            sorted.sort_unstable();
            sorted.dedup();
            let rows: Vec<_> = sorted
                .into_iter()
                .map(|id| row(consumer, id, now))
                .collect();
            let mut new: std::collections::HashSet<String> =
                diesel::insert_into(processed_events::table)
                    .values(rows)
                    .on_conflict_do_nothing()
                    .returning(processed_events::event_id)
                    .get_results::<String>(c)?
                    .into_iter()
                    .collect();
            for id in event_ids {
                firsts.push(new.remove(id));
            }
        }
        DbConn::Sqlite(_) => {
            for id in event_ids {
                firsts.push(first_time(conn, consumer, id, now)?);
            }
        }
    }
    Ok(firsts)
}

#[allow(clippy::type_complexity)]
fn row<'a>(
    consumer: &'a str,
    event_id: &'a str,
    now: NaiveDateTime,
) -> (
    diesel::dsl::Eq<processed_events::consumer, &'a str>,
    diesel::dsl::Eq<processed_events::event_id, &'a str>,
    diesel::dsl::Eq<processed_events::processed_at, NaiveDateTime>,
) {
    (
        processed_events::consumer.eq(consumer),
        processed_events::event_id.eq(event_id),
        processed_events::processed_at.eq(now),
    )
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
