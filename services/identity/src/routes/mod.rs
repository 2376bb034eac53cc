//! HTTP routes of the identity service, all under `/api/v1` except the JWKS.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod permissions;
pub mod roles;
pub mod tenants;
pub mod users;

use actix_web::HttpResponse;
use fleetdesk_web::ApiError;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route: health, the JWKS, and the `/api/v1` API.
pub fn configure(cfg: &mut ServiceConfig) {
    fleetdesk_web::health::configure(cfg);
    cfg.service(auth::jwks);
    cfg.service(
        scope::scope("/api/v1")
            .configure(auth::configure)
            .configure(users::configure)
            .configure(roles::configure)
            .configure(permissions::configure)
            .configure(api_keys::configure)
            .configure(tenants::configure)
            .configure(audit::configure),
    );
}

/// 201 with a JSON body.
pub fn created<T: serde::Serialize>(body: &T) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(body))
}

/// 404 for a user id that is absent or another tenant's.
pub fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "no such user in this tenant")
}

/// 404 for a role that is absent or another tenant's.
pub fn role_not_found() -> ApiError {
    ApiError::not_found("role_not_found", "no such role in this tenant")
}
