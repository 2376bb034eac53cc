//! API keys: created by a person for themselves, limited to a subset of their permissions.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, post};
use chrono::{DateTime, Utc};
use fleetdesk_auth::permissions::perm;
use fleetdesk_store::new_id;
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::{ApiError, FieldErrors, Json, Query, Require};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::created;
use crate::AppState;
use crate::accounts::{ensure_covered, parse_grants};
use crate::domain::names;
use crate::domain::secrets::{new_api_key, sha256_hex};
use crate::store::api_keys::{self, ApiKeyRow};
use crate::store::list_to_json;
use crate::views::{ApiKeyView, CreatedApiKey};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_api_keys)
        .service(create_api_key)
        .service(delete_api_key);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    /// Another user's keys, or `all` (needs `api_key.read.other`). Default: yours.
    pub user_id: Option<String>,
}

/// API keys: yours, or with `api_key.read.other` anyone's. Secrets are never shown again.
#[utoipa::path(
    tag = "api-keys",
    params(ApiKeyListQuery),
    responses((status = 200, body = Paginated<ApiKeyView>)),
    security(("bearer" = ["api_key.read"]))
)]
#[get("/api-keys")]
async fn list_api_keys(
    state: Data<AppState>,
    caller: Require<perm::ApiKeyRead>,
    query: Query<ApiKeyListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    let owner = match query.user_id.as_deref() {
        None => Some(caller.subject.clone()),
        Some(id) if id == caller.subject => Some(id.to_owned()),
        Some(other) => {
            caller.require("api_key.read.other")?;
            (other != "all").then(|| other.to_owned())
        }
    };
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .run(move |conn| {
            let (rows, total) = api_keys::list(
                conn,
                &tenant,
                owner.as_deref(),
                page.offset(),
                page.limit_i64(),
            )?;
            Ok::<_, ApiError>(page.wrap(rows.into_iter().map(ApiKeyView::from).collect(), total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// Nodes the key may use; each must be one you hold.
    pub permissions: Vec<String>,
    /// When the key stops working; none means never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Create an API key for yourself; the answer carries its secret, once.
#[utoipa::path(
    tag = "api-keys",
    responses((status = 201, body = CreatedApiKey), (status = 403, description = "`grant_exceeds_own_permissions`")),
    security(("bearer" = ["api_key.create"]))
)]
#[post("/api-keys")]
async fn create_api_key(
    state: Data<AppState>,
    caller: Require<perm::ApiKeyCreate>,
    body: Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let now = state.clock.now();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", names::key_name(&body.name));
    if body.permissions.is_empty() {
        errors.push("permissions", "must name at least one node");
    }
    if body.expires_at.is_some_and(|t| t <= now) {
        errors.push("expiresAt", "must be in the future");
    }
    let Some(name) = name else {
        return Err(errors.into_error());
    };
    errors.finish()?;
    let permissions = parse_grants("permissions", &body.permissions)?;
    ensure_covered(&caller.grants, &permissions)?;
    let (prefix, secret) = new_api_key();
    let row = ApiKeyRow {
        id: new_id(),
        tenant_id: caller.tenant_id.clone(),
        user_id: caller.subject.clone(),
        name,
        prefix,
        secret_hash: sha256_hex(&secret),
        permissions: list_to_json(&permissions),
        expires_at: body.expires_at.map(|t| t.naive_utc()),
        last_used_at: None,
        created_at: now.naive_utc(),
    };
    let stored = row.clone();
    state
        .db
        .run(move |conn| api_keys::insert(conn, &stored).map_err(ApiError::from))
        .await?;
    created(&CreatedApiKey {
        key: ApiKeyView::from(row),
        secret,
    })
}

/// Revoke an API key: yours, or with `api_key.delete.other` anyone's in the tenant.
#[utoipa::path(
    tag = "api-keys",
    responses((status = 204, description = "Revoked"), (status = 404, description = "`api_key_not_found`")),
    security(("bearer" = ["api_key.delete"]))
)]
#[delete("/api-keys/{id}")]
async fn delete_api_key(
    state: Data<AppState>,
    caller: Require<perm::ApiKeyDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller.into_inner();
    let id = id.into_inner();
    state
        .db
        .run(move |conn| {
            let not_found = || ApiError::not_found("api_key_not_found", "no such API key");
            let key = api_keys::find(conn, &caller.tenant_id, &id)?.ok_or_else(not_found)?;
            if key.user_id != caller.subject {
                // Someone else's key: without the right to see it, it does not exist.
                if !caller.allows("api_key.read.other") {
                    return Err(not_found());
                }
                caller.require("api_key.delete.other")?;
            }
            api_keys::delete(conn, &key.id)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
