//! The vault's keys (KEK versions, rotation) and per-tenant settings.

use actix_web::web::Data;
use actix_web::{HttpResponse, get, post, put};
use fleetdesk_auth::permissions::perm;
use fleetdesk_web::{ApiError, Json, Require};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::keys::Keyring;
use crate::store::settings;
use crate::views::{KeyView, utc};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_keys)
        .service(rotate)
        .service(get_settings)
        .service(put_settings);
}

/// The key-encryption key versions and how many of the caller's tenant's data keys each wraps.
/// The versions belong to the installation (a rotation rewraps every tenant's data keys); the
/// counts are the tenant's own.
#[utoipa::path(tag = "vault", responses((status = 200, body = Vec<KeyView>)), security(("bearer" = ["vault.keys.read"])))]
#[get("/vault/keys")]
async fn list_keys(
    state: Data<AppState>,
    caller: Require<perm::VaultKeysRead>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .run(move |conn| {
            let versions = Keyring::versions(conn, &tenant)?;
            let newest = versions
                .iter()
                .filter(|v| v.retired_at.is_none())
                .map(|v| v.version)
                .max();
            Ok::<_, ApiError>(
                versions
                    .into_iter()
                    .map(|v| KeyView {
                        state: if v.retired_at.is_some() {
                            "retired"
                        } else if Some(v.version) == newest {
                            "active"
                        } else {
                            "rotating"
                        },
                        version: v.version,
                        data_keys: v.data_keys,
                        created_at: utc(v.created_at),
                        retired_at: v.retired_at.map(utc),
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// The new version a rotation made.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    /// Wraps every new data key from now on; older data keys are rewrapped in the background.
    pub version: i32,
}

/// Add a KEK version. Data keys are rewrapped under it in the background, with no downtime;
/// older versions retire once nothing uses them (watch `GET /vault/keys`).
#[utoipa::path(tag = "vault", responses((status = 202, body = Rotated)), security(("bearer" = ["vault.keys.rotate"])))]
#[post("/vault/keys/rotate")]
async fn rotate(
    state: Data<AppState>,
    caller: Require<perm::VaultKeysRotate>,
) -> Result<HttpResponse, ApiError> {
    let ring = state.ring.clone();
    let now = state.clock.now().naive_utc();
    let version = state.db.run(move |conn| ring.rotate(conn, now)).await?;
    tracing::info!(version, actor = %caller.actor(), "vault KEK rotated");
    Ok(HttpResponse::Accepted().json(Rotated { version }))
}

/// The tenant's vault settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultSettings {
    /// Whether every reveal must give a reason.
    pub require_reveal_reason: bool,
}

/// The tenant's vault settings.
#[utoipa::path(tag = "vault", responses((status = 200, body = VaultSettings)), security(("bearer" = ["credential.read"])))]
#[get("/vault/settings")]
async fn get_settings(
    state: Data<AppState>,
    caller: Require<perm::CredentialRead>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let required = state
        .db
        .run(move |conn| settings::require_reason(conn, &tenant).map_err(ApiError::from))
        .await?;
    Ok(HttpResponse::Ok().json(VaultSettings {
        require_reveal_reason: required,
    }))
}

/// Change the tenant's vault settings.
#[utoipa::path(tag = "vault", request_body = VaultSettings, responses((status = 200, body = VaultSettings)), security(("bearer" = ["vault.settings.update"])))]
#[put("/vault/settings")]
async fn put_settings(
    state: Data<AppState>,
    caller: Require<perm::VaultSettingsUpdate>,
    body: Json<VaultSettings>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let tenant = caller.tenant_id.clone();
    let now = state.clock.now().naive_utc();
    let required = body.require_reveal_reason;
    state
        .db
        .run(move |conn| {
            settings::set_require_reason(conn, &tenant, required, now).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
