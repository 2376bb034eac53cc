//! The permission catalogue of every Fleetdesk service.

use std::collections::BTreeMap;

use actix_web::web::Path;
use actix_web::{HttpResponse, get};
use fleetdesk_auth::permissions::{CATEGORIES, all_nodes, category, perm};
use fleetdesk_web::{ApiError, Require};
use utoipa_actix_web::service_config::ServiceConfig;

pub(super) fn configure(cfg: &mut ServiceConfig) {
    // `/permissions/nodes` before `/permissions/{category}`.
    cfg.service(list_permissions)
        .service(list_permission_nodes)
        .service(get_permission_category);
}

/// Every permission node, by category.
#[utoipa::path(
    tag = "permissions",
    responses((status = 200, description = "Categories keyed by their key", body = Object)),
    security(("bearer" = ["role.read"]))
)]
#[get("/permissions")]
async fn list_permissions(_caller: Require<perm::RoleRead>) -> HttpResponse {
    let by_key: BTreeMap<_, _> = CATEGORIES.iter().map(|c| (c.key, c)).collect();
    HttpResponse::Ok().json(by_key)
}

/// Every permission node, flat.
#[utoipa::path(tag = "permissions", responses((status = 200, description = "Nodes", body = Object)), security(("bearer" = ["role.read"])))]
#[get("/permissions/nodes")]
async fn list_permission_nodes(_caller: Require<perm::RoleRead>) -> HttpResponse {
    HttpResponse::Ok().json(all_nodes().collect::<Vec<_>>())
}

/// The nodes of one category.
#[utoipa::path(
    tag = "permissions",
    responses((status = 200, description = "The category", body = Object), (status = 404, description = "`permission_category_not_found`")),
    security(("bearer" = ["role.read"]))
)]
#[get("/permissions/{category}")]
async fn get_permission_category(
    _caller: Require<perm::RoleRead>,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let found = category(&key).ok_or_else(|| {
        ApiError::not_found(
            "permission_category_not_found",
            "no such permission category",
        )
    })?;
    Ok(HttpResponse::Ok().json(found))
}
