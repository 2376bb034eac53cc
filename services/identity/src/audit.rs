//! The audit log: a consumer of every event (`#`) that writes one row per event, and the
//! query behind `GET /api/v1/audit`.

use chrono::{NaiveDateTime, Utc};
use fleetdesk_events::catalogue::describe;
use fleetdesk_events::{Envelope, Handler, HandlerError};
use fleetdesk_store::DbConn;

use crate::store::audit::{self, AuditRow};

/// The name of identity's consumer in `processed_events`.
pub const CONSUMER: &str = "identity.audit";

/// The audit log's consumer: one row per event, a lot's rows in one statement.
pub struct AuditLog;

impl Handler for AuditLog {
    fn handle(&self, conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
        record(conn, event)
    }

    fn handle_together(
        &self,
        conn: &mut DbConn,
        events: &[&Envelope],
    ) -> Option<Result<(), HandlerError>> {
        let now = Utc::now().naive_utc();
        let rows: Vec<AuditRow> = events.iter().map(|e| row(e, now)).collect();
        Some(audit::insert_all(conn, &rows).map_err(HandlerError::from))
    }
}

/// Records one event.
pub fn record(conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
    audit::insert(conn, &row(event, Utc::now().naive_utc()))?;
    Ok(())
}

/// An event's row. Types this build does not know (a newer service's) are recorded too, with
/// the type as the summary: the log must not lose anything.
fn row(event: &Envelope, recorded_at: NaiveDateTime) -> AuditRow {
    let (entity_type, entity_id, summary) = match describe(event) {
        Ok(s) => (s.entity_type.to_owned(), s.entity_id, s.summary),
        Err(e) => {
            tracing::debug!(error = %e, event_type = %event.event_type, "event not in this build's catalogue");
            let entity = event.event_type.split('.').next().unwrap_or("unknown");
            (entity.to_owned(), String::new(), event.event_type.clone())
        }
    };
    AuditRow {
        id: event.id.to_string(),
        tenant_id: event.tenant_id.clone(),
        actor: event.actor.clone(),
        action: event.event_type.clone(),
        entity_type,
        entity_id,
        summary: summary.chars().take(500).collect(),
        source: event.source.clone(),
        trace_id: event.trace_id().map(str::to_owned),
        occurred_at: event.occurred_at.naive_utc(),
        recorded_at,
    }
}
