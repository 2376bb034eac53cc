//! Tickets' side of the event backbone: the read model of identity's users it keeps from
//! `user.*` events (who may be assigned tickets).

use chrono::Utc;
use fleetdesk_events::identity::{
    UserAccess, UserDeactivated, UserDeleted, UserReactivated, UserRegistered, UserUpdated,
};
use fleetdesk_events::{Envelope, Event, HandlerError};
use fleetdesk_store::DbConn;

use crate::store::list_to_json;
use crate::store::users::{self, UserRow};

/// The name of the users consumer in `processed_events`.
pub const USERS_CONSUMER: &str = "tickets.users";

fn permanent(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Permanent(e.to_string())
}

fn save(
    conn: &mut DbConn,
    event: &Envelope,
    user_id: &str,
    access: Option<UserAccess>,
) -> Result<(), HandlerError> {
    let Some(tenant_id) = event.tenant_id.clone() else {
        return Err(permanent("a user event without a tenant"));
    };
    match access {
        Some(a) => users::upsert(
            conn,
            &UserRow {
                id: user_id.to_owned(),
                tenant_id,
                email: a.email,
                name: a.name,
                status: a.status,
                permissions: list_to_json(&a.permissions),
                updated_at: event.occurred_at.naive_utc(),
            },
        )?,
        // An event from an identity older than the snapshot: nothing to keep.
        None => tracing::debug!(event_type = %event.event_type, "user event without access"),
    }
    Ok(())
}

/// Applies one `user.*` event to the read model. Events arrive in order per user.
pub fn record_user(conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
    let now = Utc::now().naive_utc();
    match event.event_type.as_str() {
        UserRegistered::TYPE => {
            let e: UserRegistered = event.decode().map_err(permanent)?;
            save(conn, event, &e.user_id, e.access)
        }
        UserUpdated::TYPE => {
            let e: UserUpdated = event.decode().map_err(permanent)?;
            save(conn, event, &e.user_id, e.access)
        }
        UserDeactivated::TYPE => {
            let e: UserDeactivated = event.decode().map_err(permanent)?;
            users::set_status(conn, &e.user_id, "deactivated", now)?;
            save(conn, event, &e.user_id, e.access)
        }
        UserReactivated::TYPE => {
            let e: UserReactivated = event.decode().map_err(permanent)?;
            users::set_status(conn, &e.user_id, "active", now)?;
            save(conn, event, &e.user_id, e.access)
        }
        UserDeleted::TYPE => {
            let e: UserDeleted = event.decode().map_err(permanent)?;
            users::delete(conn, &e.user_id)?;
            Ok(())
        }
        // user.invited and anything newer: nothing tickets keeps.
        _ => Ok(()),
    }
}
