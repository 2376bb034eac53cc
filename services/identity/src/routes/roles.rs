//! Roles and the permission nodes they grant.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use chrono::NaiveDateTime;
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::identity as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, Caller, FieldErrors, Json, Query, Require};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{created, role_not_found};
use crate::AppState;
use crate::accounts::{ensure_covered, parse_grants, user_views};
use crate::domain::names;
use crate::domain::system_roles::ADMIN;
use crate::events;
use crate::store::roles::{self, RoleChanges, RoleRow};
use crate::store::{list_from_json, list_to_json};
use crate::views::{RoleView, UserView};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_roles)
        .service(create_role)
        .service(get_role)
        .service(update_role)
        .service(delete_role)
        .service(add_role_permissions)
        .service(remove_role_permissions)
        .service(list_role_users);
}

fn load(conn: &mut DbConn, tenant_id: &str, id: &str) -> Result<RoleRow, ApiError> {
    roles::find(conn, tenant_id, id)?.ok_or_else(role_not_found)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
}

/// The tenant's roles, system roles first.
#[utoipa::path(
    tag = "roles",
    params(PageQuery),
    responses((status = 200, body = Paginated<RoleView>)),
    security(("bearer" = ["role.read", "role.list"]))
)]
#[get("/roles")]
async fn list_roles(
    state: Data<AppState>,
    caller: Require<(perm::RoleRead, perm::RoleList)>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(query.0.page, query.0.limit)?;
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .run(move |conn| {
            let (rows, total) = roles::list(conn, &tenant, page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(page.wrap(rows.into_iter().map(RoleView::from).collect(), total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Lower-case identifier, unique in the tenant, e.g. `night_shift`.
    pub moniker: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Create a role. Nobody can grant a node they do not hold.
#[utoipa::path(
    tag = "roles",
    responses((status = 201, body = RoleView), (status = 409, description = "`role_exists`")),
    security(("bearer" = ["role.create"]))
)]
#[post("/roles")]
async fn create_role(
    state: Data<AppState>,
    caller: Require<perm::RoleCreate>,
    body: Json<NewRole>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let moniker = errors.check("moniker", names::role_moniker(&body.moniker));
    let title = errors.check("title", names::role_title(&body.title));
    let description = errors.check("description", names::description(&body.description));
    let (Some(moniker), Some(title), Some(description)) = (moniker, title, description) else {
        return Err(errors.into_error());
    };
    let permissions = parse_grants("permissions", &body.permissions)?;
    ensure_covered(&caller.grants, &permissions)?;
    let tenant = caller.tenant_id.clone();
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            if roles::find(conn, &tenant, &moniker)?.is_some() {
                return Err(ApiError::conflict(
                    "role_exists",
                    format!("a role `{moniker}` already exists"),
                ));
            }
            let row = RoleRow {
                id: new_id(),
                tenant_id: tenant.clone(),
                moniker,
                title,
                description,
                permissions: list_to_json(&permissions),
                system: 0,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            roles::insert(conn, &row)?;
            let view = RoleView::from(row);
            emit(
                conn,
                &origin,
                &ev::RoleCreated {
                    role_id: view.id.clone(),
                    moniker: view.moniker.clone(),
                    name: view.title.clone(),
                    permissions: view.permissions.clone(),
                },
            )?;
            Ok::<_, ApiError>(view)
        })
        .await?;
    created(&view)
}

/// One role, by id or moniker.
#[utoipa::path(
    tag = "roles",
    responses((status = 200, body = RoleView), (status = 404, description = "`role_not_found`")),
    security(("bearer" = ["role.read"]))
)]
#[get("/roles/{idOrMoniker}")]
async fn get_role(
    state: Data<AppState>,
    caller: Require<perm::RoleRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .run(move |conn| load(conn, &tenant, &id).map(RoleView::from))
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    pub moniker: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Replaces every node of the role.
    pub permissions: Option<Vec<String>>,
}

/// Writes a role under `If-Match`, refusing changes to what system roles fix.
fn write_role(
    conn: &mut DbConn,
    caller: &Caller,
    role: &RoleRow,
    if_match: &IfMatch,
    changes: RoleChanges,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<RoleView, ApiError> {
    if_match.check(role.version)?;
    if role.system != 0
        && (changes.moniker.is_some() || (role.moniker == ADMIN && changes.permissions.is_some()))
    {
        return Err(ApiError::conflict(
            "system_role",
            "system roles keep their moniker, and the admin role keeps its permissions",
        ));
    }
    if let Some(moniker) = &changes.moniker
        && moniker != &role.moniker
        && roles::find(conn, &role.tenant_id, moniker)?.is_some()
    {
        return Err(ApiError::conflict(
            "role_exists",
            format!("a role `{moniker}` already exists"),
        ));
    }
    // Changing a role changes what its holders may do: the editor must hold every node the
    // role will grant, and every node it grants now (or they could strip an admin-made role).
    if let Some(json) = &changes.permissions {
        ensure_covered(&caller.grants, &list_from_json(json))?;
        ensure_covered(&caller.grants, &list_from_json(&role.permissions))?;
    }
    if !roles::update(conn, &role.id, role.version, &changes, now)? {
        return Err(ApiError::stale_version(
            "the role changed meanwhile; reload and retry",
        ));
    }
    let view = load(conn, &role.tenant_id, &role.id).map(RoleView::from)?;
    if changes.permissions.is_some() {
        let holders = roles::holder_ids(conn, &role.id)?;
        announce_access(conn, origin, &role.tenant_id, &holders)?;
    }
    emit(
        conn,
        origin,
        &ev::RoleUpdated {
            role_id: view.id.clone(),
            moniker: view.moniker.clone(),
            name: view.title.clone(),
            permissions: view.permissions.clone(),
        },
    )?;
    Ok(view)
}

/// Change a role's moniker, title, description or permissions.
#[utoipa::path(
    tag = "roles",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses(
        (status = 200, body = RoleView),
        (status = 404, description = "`role_not_found`"),
        (status = 409, description = "`system_role` or `role_exists`"),
        (status = 412, description = "`version_mismatch`"),
    ),
    security(("bearer" = ["role.modify"]))
)]
#[patch("/roles/{idOrMoniker}")]
async fn update_role(
    state: Data<AppState>,
    caller: Require<perm::RoleModify>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<RoleUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let mut changes = RoleChanges::default();
    if let Some(m) = &body.moniker {
        changes.moniker = errors.check("moniker", names::role_moniker(m));
    }
    if let Some(t) = &body.title {
        changes.title = errors.check("title", names::role_title(t));
    }
    if let Some(d) = &body.description {
        changes.description = errors.check("description", names::description(d));
    }
    errors.finish()?;
    if let Some(p) = &body.permissions {
        changes.permissions = Some(list_to_json(&parse_grants("permissions", p)?));
    }
    let caller = caller.into_inner();
    let id = id.into_inner();
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let role = load(conn, &caller.tenant_id, &id)?;
            write_role(conn, &caller, &role, &if_match, changes, now, &origin)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Delete a role; its holders lose it. System roles cannot be deleted.
#[utoipa::path(
    tag = "roles",
    responses((status = 204, description = "Deleted"), (status = 404, description = "`role_not_found`"), (status = 409, description = "`system_role`")),
    security(("bearer" = ["role.delete"]))
)]
#[delete("/roles/{idOrMoniker}")]
async fn delete_role(
    state: Data<AppState>,
    caller: Require<perm::RoleDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = events::by(&caller, state.clock.now());
    state
        .db
        .transaction(move |conn| {
            let role = load(conn, &tenant, &id)?;
            if role.system != 0 {
                return Err(ApiError::conflict(
                    "system_role",
                    "system roles cannot be deleted",
                ));
            }
            let holders = roles::holder_ids(conn, &role.id)?;
            roles::delete(conn, &role.id)?;
            announce_access(conn, &origin, &role.tenant_id, &holders)?;
            emit(
                conn,
                &origin,
                &ev::RoleDeleted {
                    role_id: role.id.clone(),
                    moniker: role.moniker.clone(),
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionList {
    pub permissions: Vec<String>,
}

async fn change_permissions(
    state: Data<AppState>,
    caller: Caller,
    id: String,
    body: PermissionList,
    add: bool,
) -> Result<HttpResponse, ApiError> {
    let nodes = parse_grants("permissions", &body.permissions)?;
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let role = load(conn, &caller.tenant_id, &id)?;
            let mut current = list_from_json(&role.permissions);
            if add {
                current.extend(nodes);
            } else {
                current.retain(|p| !nodes.contains(p));
            }
            current.sort();
            current.dedup();
            let changes = RoleChanges {
                permissions: Some(list_to_json(&current)),
                ..Default::default()
            };
            write_role(
                conn,
                &caller,
                &role,
                &IfMatch::default(),
                changes,
                now,
                &origin,
            )
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Add permission nodes to a role (merged with its current ones).
#[utoipa::path(
    tag = "roles",
    responses((status = 200, body = RoleView), (status = 404, description = "`role_not_found`"), (status = 409, description = "`system_role`")),
    security(("bearer" = ["role.modify"]))
)]
#[post("/roles/{idOrMoniker}/permissions")]
async fn add_role_permissions(
    state: Data<AppState>,
    caller: Require<perm::RoleModify>,
    id: Path<String>,
    body: Json<PermissionList>,
) -> Result<HttpResponse, ApiError> {
    change_permissions(
        state,
        caller.into_inner(),
        id.into_inner(),
        body.into_inner(),
        true,
    )
    .await
}

/// Remove permission nodes from a role.
#[utoipa::path(
    tag = "roles",
    responses((status = 200, body = RoleView), (status = 404, description = "`role_not_found`"), (status = 409, description = "`system_role`")),
    security(("bearer" = ["role.modify"]))
)]
#[delete("/roles/{idOrMoniker}/permissions")]
async fn remove_role_permissions(
    state: Data<AppState>,
    caller: Require<perm::RoleModify>,
    id: Path<String>,
    body: Json<PermissionList>,
) -> Result<HttpResponse, ApiError> {
    change_permissions(
        state,
        caller.into_inner(),
        id.into_inner(),
        body.into_inner(),
        false,
    )
    .await
}

/// The users holding a role.
#[utoipa::path(
    tag = "roles",
    params(PageQuery),
    responses((status = 200, body = Paginated<UserView>), (status = 404, description = "`role_not_found`")),
    security(("bearer" = ["role.read", "user.read.other"]))
)]
#[get("/roles/{idOrMoniker}/users")]
async fn list_role_users(
    state: Data<AppState>,
    caller: Require<(perm::RoleRead, perm::UserReadOther)>,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = Page::new(query.0.page, query.0.limit)?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let list = state
        .db
        .run(move |conn| {
            let role = load(conn, &tenant, &id)?;
            let (rows, total) = roles::users_with(conn, &role.id, page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(page.wrap(user_views(conn, rows)?, total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// A role's permissions changed (or it went): every holder's access changed with it, so each
/// gets a `user.updated` carrying what they may do now, for other services' read models.
fn announce_access(
    conn: &mut DbConn,
    origin: &Origin,
    tenant_id: &str,
    holders: &[String],
) -> Result<(), ApiError> {
    for user_id in holders {
        let access = crate::accounts::user_access(conn, tenant_id, user_id)?;
        emit(
            conn,
            origin,
            &ev::UserUpdated {
                user_id: user_id.clone(),
                changed: vec!["permissions".into()],
                access,
            },
        )?;
    }
    Ok(())
}
