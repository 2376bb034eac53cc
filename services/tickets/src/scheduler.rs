//! The SLA breach scheduler: every few seconds, marks the targets whose due time has passed,
//! announces each breach and escalates when the policy says so.
//!
//! Safe with several replicas: each ticket is changed in its own transaction, holding its
//! row lock, and re-checked under it — when two replicas pick the same ticket, the second
//! finds the breach already marked (and the due time moved on) and does nothing, so a breach
//! is marked and announced once.

use chrono::NaiveDateTime;
use fleetdesk_events::Origin;
use fleetdesk_store::DbConn;
use fleetdesk_web::ApiError;

use crate::AppState;
use crate::routes::workflow::Edit;
use crate::store::tickets;

/// How many due tickets one pass takes at most.
const BATCH: i64 = 200;

/// Marks the breaches of one ticket if it is still due; whether it marked any.
fn breach_one(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<bool, ApiError> {
    tickets::lock(conn, id)?;
    let Some(ticket) = tickets::find_any(conn, id)? else {
        return Ok(false);
    };
    if ticket.sla_due_at.is_none_or(|d| d > now) {
        return Ok(false);
    }
    let origin = Origin::new(
        Some(ticket.tenant_id.clone()),
        "system",
        chrono::DateTime::from_naive_utc_and_offset(now, chrono::Utc),
    );
    let mut edit = Edit::begin(conn, ticket, "system", now)?;
    let marked = edit.breach_overdue(conn, &origin)?;
    if !marked {
        // Due time passed without an open target (e.g. a stale due after a change): fix it.
        edit.retarget();
    }
    edit.save(conn)?;
    Ok(marked)
}

/// One pass: every ticket due by now. Returns how many breached.
pub async fn run_once(state: &AppState) -> Result<usize, ApiError> {
    let now = state.clock.now().naive_utc();
    let due = state
        .db
        .run(move |conn| tickets::due(conn, now, BATCH).map_err(ApiError::from))
        .await?;
    let mut breached = 0;
    for id in due {
        let result = state
            .db
            .transaction(move |conn| breach_one(conn, &id, now))
            .await;
        match result {
            Ok(true) => breached += 1,
            Ok(false) => {}
            // Another replica (or a request) changed it first; the next pass looks again.
            Err(e) if e.code() == "version_mismatch" => {}
            Err(e) => tracing::warn!(error = %e, "SLA breach check failed"),
        }
    }
    Ok(breached)
}

/// Runs a pass every `sla_scan` until aborted.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.sla_scan);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_once(&state).await {
                tracing::warn!(error = %e, "SLA scheduler pass failed");
            }
        }
    })
}
