//! Identity's side of the event backbone: where its events come from (the origin of each
//! change), the bus it uses, and the consumers it runs (the audit log).

use chrono::{DateTime, Utc};
use fleetdesk_events::Origin;
use fleetdesk_web::Caller;

/// The actor of a caller: the user id, or `service:<client>` for service tokens.
pub fn actor(caller: &Caller) -> String {
    caller.actor()
}

/// The trace context of the request being served, if any.
fn traceparent() -> Option<String> {
    fleetdesk_web::context::current().map(|c| c.traceparent())
}

/// The origin of a change a caller makes. Build it before entering a transaction: the
/// request's trace context is not visible on the blocking thread.
pub fn by(caller: &Caller, now: DateTime<Utc>) -> Origin {
    caller.origin(now)
}

/// The origin of a change with no authenticated caller (login, registration, reset).
pub fn anonymous(tenant_id: Option<&str>, actor: &str, now: DateTime<Utc>) -> Origin {
    Origin::new(tenant_id.map(str::to_owned), actor, now).traced(traceparent())
}
