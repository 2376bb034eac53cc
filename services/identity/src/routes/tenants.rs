//! The caller's tenant.

use actix_web::web::Data;
use actix_web::{HttpResponse, get, patch};
use fleetdesk_auth::permissions::perm;
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, Json, Require};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::domain::names;
use crate::store::tenants;
use crate::views::TenantView;

/// Largest settings object, serialized.
const MAX_SETTINGS_BYTES: usize = 16 * 1024;

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_tenant).service(update_tenant);
}

fn tenant_not_found() -> ApiError {
    ApiError::not_found("tenant_not_found", "the tenant no longer exists")
}

/// Your tenant.
#[utoipa::path(tag = "tenants", responses((status = 200, body = TenantView)), security(("bearer" = ["tenant.read"])))]
#[get("/tenants/current")]
async fn get_tenant(
    state: Data<AppState>,
    caller: Require<perm::TenantRead>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.tenant_id.clone();
    let view = state
        .db
        .run(move |conn| {
            tenants::find(conn, &tenant)?
                .map(TenantView::from)
                .ok_or_else(tenant_not_found)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    pub name: Option<String>,
    /// Replaces the settings object.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// Change your tenant's name or settings.
#[utoipa::path(
    tag = "tenants",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TenantView), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["tenant.update"]))
)]
#[patch("/tenants/current")]
async fn update_tenant(
    state: Data<AppState>,
    caller: Require<perm::TenantUpdate>,
    if_match: IfMatch,
    body: Json<TenantUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body
        .name
        .as_deref()
        .map(names::tenant_name)
        .transpose()
        .map_err(|m| ApiError::invalid_field("name", m))?;
    let settings = match body.settings {
        None => None,
        Some(v @ serde_json::Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > MAX_SETTINGS_BYTES {
                return Err(ApiError::invalid_field(
                    "settings",
                    "must be at most 16 KiB",
                ));
            }
            Some(text)
        }
        Some(_) => return Err(ApiError::invalid_field("settings", "must be an object")),
    };
    let tenant = caller.tenant_id.clone();
    let origin = crate::events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let mut changed = Vec::new();
    if name.is_some() {
        changed.push("name".to_owned());
    }
    if settings.is_some() {
        changed.push("settings".to_owned());
    }
    let view = state
        .db
        .transaction(move |conn| {
            let row = tenants::find(conn, &tenant)?.ok_or_else(tenant_not_found)?;
            if_match.check(row.version)?;
            let name = name.unwrap_or(row.name);
            let settings = settings.unwrap_or(row.settings);
            if !tenants::update(conn, &tenant, row.version, &name, &settings, now)? {
                return Err(ApiError::stale_version(
                    "the tenant changed meanwhile; reload and retry",
                ));
            }
            fleetdesk_events::emit(
                conn,
                &origin,
                &fleetdesk_events::identity::TenantUpdated {
                    tenant_id: tenant.clone(),
                    name: name.clone(),
                    changed,
                },
            )?;
            tenants::find(conn, &tenant)?
                .map(TenantView::from)
                .ok_or_else(tenant_not_found)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}
