//! The audit log: a consumer of every event (`#`) that writes one row per event, and the
//! query behind `GET /api/v1/audit`.

use chrono::Utc;
use fleetdesk_events::catalogue::describe;
use fleetdesk_events::{Envelope, HandlerError};
use fleetdesk_store::DbConn;

use crate::store::audit::{self, AuditRow};

/// The name of identity's consumer in `processed_events`.
pub const CONSUMER: &str = "identity.audit";

/// Records one event. Types this build does not know (a newer service's) are recorded too,
/// with the type as the summary: the log must not lose anything.
pub fn record(conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
    let (entity_type, entity_id, summary) = match describe(event) {
        Ok(s) => (s.entity_type.to_owned(), s.entity_id, s.summary),
        Err(e) => {
            tracing::debug!(error = %e, event_type = %event.event_type, "event not in this build's catalogue");
            let entity = event.event_type.split('.').next().unwrap_or("unknown");
            (entity.to_owned(), String::new(), event.event_type.clone())
        }
    };
    let row = AuditRow {
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
        recorded_at: Utc::now().naive_utc(),
    };
    audit::insert(conn, &row)?;
    Ok(())
}
