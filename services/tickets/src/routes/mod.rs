//! HTTP routes of the tickets service, all under `/api/v1`.

pub mod companies;
pub mod products;
pub mod stats;
pub mod tickets;
pub mod workflow;

use fleetdesk_auth::Grants;
use fleetdesk_store::DbConn;
use fleetdesk_web::ApiError;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::store::list_from_json;
use crate::store::users;

/// Registers every route: health and the `/api/v1` API.
pub fn configure(cfg: &mut ServiceConfig) {
    fleetdesk_web::health::configure(cfg);
    cfg.service(
        scope::scope("/api/v1")
            .configure(products::configure)
            .configure(companies::configure)
            .configure(stats::configure)
            .configure(tickets::configure)
            .configure(workflow::configure),
    );
}

/// Checks that `user_id` may work tickets: an active user of the tenant who holds
/// `ticket.read` (from the read model identity's events keep). The error names `field`.
pub fn ensure_agent(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
    field: &str,
) -> Result<(), ApiError> {
    let ok = users::find(conn, tenant_id, user_id)?.is_some_and(|u| {
        u.status == "active" && Grants::new(list_from_json(&u.permissions)).allows("ticket.read")
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "is not an active user of this tenant who can read tickets",
        ))
    }
}

pub use fleetdesk_web::extract::search_text;
