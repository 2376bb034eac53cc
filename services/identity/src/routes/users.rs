//! Users: the caller's own profile, and the tenant's people.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use chrono::NaiveDateTime;
use fleetdesk_auth::Grants;
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

use super::{created, user_not_found};
use crate::AppState;
use crate::accounts::{
    INVITE_TTL, effective_permissions, ensure_covered, ensure_not_last_admin, parse_grants,
    resolve_roles, role_grants, start_password_reset, user_view, user_views,
};
use crate::domain::email::Email;
use crate::domain::secrets::{random_token, sha256_hex};
use crate::domain::{names, password};
use crate::events;
use crate::store::invites::{self, InviteRow};
use crate::store::users::{self, UserChanges, UserFilter, UserRow};
use crate::store::{list_to_json, refresh_tokens, roles};
use crate::views::{InviteView, PermissionCheck, PermissionResult, RoleView, UserView};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    // `/users/me...` and `/users/invite` before `/users/{id}` so they are not taken for ids.
    cfg.service(get_me)
        .service(update_me)
        .service(change_password)
        .service(check_my_permissions)
        .service(invite_user)
        .service(list_users)
        .service(get_user)
        .service(update_user)
        .service(delete_user)
        .service(deactivate_user)
        .service(reactivate_user)
        .service(reset_user_password)
        .service(get_user_roles)
        .service(check_user_permissions);
}

fn load(conn: &mut DbConn, tenant_id: &str, id: &str) -> Result<UserRow, ApiError> {
    users::find(conn, tenant_id, id)?.ok_or_else(user_not_found)
}

/// Profile fields a user may change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileChanges {
    pub name: Option<String>,
    /// An http(s) URL, or `null` to remove it.
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

fn profile_changes(body: &ProfileChanges) -> Result<UserChanges, ApiError> {
    let mut errors = FieldErrors::default();
    let mut changes = UserChanges::default();
    if let Some(name) = &body.name {
        match names::person_name(name) {
            Ok(n) => changes.name = Some(n),
            Err(m) => errors.push("name", m),
        }
    }
    match &body.avatar_url {
        Some(Some(url)) => match names::avatar_url(url) {
            Ok(u) => changes.avatar_url = Some(Some(u)),
            Err(m) => errors.push("avatarUrl", m),
        },
        Some(None) => changes.avatar_url = Some(None),
        None => {}
    }
    errors.finish()?;
    Ok(changes)
}

/// Writes changes to a user under `If-Match`, answering the new view with its `ETag`.
fn write_user(
    conn: &mut DbConn,
    user: &UserRow,
    if_match: &IfMatch,
    changes: &UserChanges,
    roles: Option<&[String]>,
    now: NaiveDateTime,
    origin: &Origin,
) -> Result<UserView, ApiError> {
    if_match.check(user.version)?;
    if !users::update(conn, &user.tenant_id, &user.id, user.version, changes, now)? {
        // Someone wrote between our read and our write.
        return Err(ApiError::stale_version(
            "the user changed meanwhile; reload and retry",
        ));
    }
    if let Some(role_ids) = roles {
        users::set_roles(conn, &user.tenant_id, &user.id, role_ids)?;
    }
    let user_id = user.id.clone();
    let access = crate::accounts::user_access(conn, &user.tenant_id, &user.id)?;
    match changes.status.as_deref() {
        Some("deactivated") => {
            emit(
                conn,
                origin,
                &ev::UserDeactivated {
                    user_id: user_id.clone(),
                    access: access.clone(),
                },
            )?;
        }
        Some(_) => {
            emit(
                conn,
                origin,
                &ev::UserReactivated {
                    user_id: user_id.clone(),
                    access: access.clone(),
                },
            )?;
        }
        None => {}
    }
    let changed: Vec<String> = [
        (changes.name.is_some(), "name"),
        (changes.avatar_url.is_some(), "avatarUrl"),
        (changes.permissions.is_some(), "permissions"),
        (changes.password_hash.is_some(), "password"),
        (roles.is_some(), "roles"),
    ]
    .into_iter()
    .filter(|(yes, _)| *yes)
    .map(|(_, f)| f.to_owned())
    .collect();
    if !changed.is_empty() {
        emit(
            conn,
            origin,
            &ev::UserUpdated {
                user_id,
                changed,
                access,
            },
        )?;
    }
    let fresh = load(conn, &user.tenant_id, &user.id)?;
    user_view(conn, fresh)
}

/// Your own profile.
#[utoipa::path(
    tag = "users",
    responses((status = 200, description = "Your profile; `ETag` carries its version", body = UserView)),
    security(("bearer" = ["user.read"]))
)]
#[get("/users/me")]
async fn get_me(
    state: Data<AppState>,
    caller: Require<perm::UserRead>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), caller.subject.clone());
    let view = state
        .db
        .run(move |conn| {
            let row = load(conn, &tenant, &id)?;
            user_view(conn, row)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Change your name or avatar.
#[utoipa::path(
    tag = "users",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = UserView), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["user.write"]))
)]
#[patch("/users/me")]
async fn update_me(
    state: Data<AppState>,
    caller: Require<perm::UserWrite>,
    if_match: IfMatch,
    body: Json<ProfileChanges>,
) -> Result<HttpResponse, ApiError> {
    let changes = profile_changes(&body.0)?;
    let (tenant, id) = (caller.tenant_id.clone(), caller.subject.clone());
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            write_user(conn, &row, &if_match, &changes, None, now, &origin)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Change your password; every session of yours ends.
#[utoipa::path(
    tag = "users",
    responses((status = 204, description = "Changed; log in again")),
    security(("bearer" = ["user.write"]))
)]
#[post("/users/me/change-password")]
async fn change_password(
    state: Data<AppState>,
    caller: Require<perm::UserWrite>,
    body: Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (tenant, id) = (caller.tenant_id.clone(), caller.subject.clone());
    let user = state.db.run(move |conn| load(conn, &tenant, &id)).await?;
    password::check_policy(&body.new_password, &user.email)
        .map_err(|m| ApiError::invalid_field("newPassword", m))?;
    let stored = user.password_hash.clone().unwrap_or_default();
    let (current, new) = (body.current_password, body.new_password);
    let new_hash = state
        .hashing(move |h| h.verify(&current, &stored).then(|| h.hash(&new)))
        .await?
        .ok_or_else(|| ApiError::invalid_field("currentPassword", "is wrong"))?
        .map_err(ApiError::internal)?;
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    state
        .db
        .transaction(move |conn| {
            let changes = UserChanges {
                password_hash: Some(Some(new_hash)),
                ..Default::default()
            };
            if !users::update(conn, &user.tenant_id, &user.id, user.version, &changes, now)? {
                return Err(ApiError::conflict(
                    "concurrent_change",
                    "your account changed meanwhile; retry",
                ));
            }
            refresh_tokens::revoke_user(conn, &user.id, now)?;
            let access = crate::accounts::user_access(conn, &user.tenant_id, &user.id)?;
            emit(
                conn,
                &origin,
                &ev::UserUpdated {
                    user_id: user.id.clone(),
                    changed: vec!["password".into()],
                    access,
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckPermissions {
    /// Nodes to check, at most 100.
    pub permissions: Vec<String>,
}

/// Answers which of the asked nodes the user holds now, from their current roles and grants.
async fn check_user(
    state: &AppState,
    tenant: String,
    id: String,
    body: CheckPermissions,
) -> Result<HttpResponse, ApiError> {
    let grants = state
        .db
        .run(move |conn| {
            let row = load(conn, &tenant, &id)?;
            effective_permissions(conn, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(check(&Grants::new(grants), body)?))
}

fn check(grants: &Grants, body: CheckPermissions) -> Result<PermissionCheck, ApiError> {
    if body.permissions.len() > 100 {
        return Err(ApiError::invalid_field(
            "permissions",
            "at most 100 nodes at once",
        ));
    }
    let results = body
        .permissions
        .into_iter()
        .map(|p| PermissionResult {
            has_permission: grants.allows(&p),
            permission: p,
        })
        .collect();
    Ok(PermissionCheck { results })
}

/// Which of these permission nodes you hold now (from your current roles and grants).
#[utoipa::path(tag = "users", responses((status = 200, body = PermissionCheck)), security(("bearer" = ["user.read"])))]
#[post("/users/me/check-permission")]
async fn check_my_permissions(
    state: Data<AppState>,
    caller: Require<perm::UserRead>,
    body: Json<CheckPermissions>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), caller.subject.clone());
    check_user(&state, tenant, id, body.into_inner()).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// Only holders of this role moniker.
    pub role: Option<String>,
    /// `active` or `deactivated`.
    pub status: Option<String>,
    /// Text in the name or email.
    pub q: Option<String>,
}

/// The tenant's users, oldest first.
#[utoipa::path(
    tag = "users",
    params(UserListQuery),
    responses((status = 200, body = Paginated<UserView>)),
    security(("bearer" = ["user.read.other", "user.list.other"]))
)]
#[get("/users")]
async fn list_users(
    state: Data<AppState>,
    caller: Require<(perm::UserReadOther, perm::UserListOther)>,
    query: Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    if let Some(s) = &query.status
        && !matches!(s.as_str(), "active" | "deactivated")
    {
        return Err(ApiError::invalid_field(
            "status",
            "must be active or deactivated",
        ));
    }
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::invalid_field(
            "q",
            "must be at most 200 characters",
        ));
    }
    let filter = UserFilter {
        role: query.role,
        status: query.status,
        q: query
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
    };
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .run(move |conn| {
            let (rows, total) =
                users::list(conn, &tenant, &filter, page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(page.wrap(user_views(conn, rows)?, total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Reading another user needs `user.read.other`; reading yourself only `user.read`.
fn require_read(caller: &Caller, id: &str) -> Result<(), ApiError> {
    if caller.subject == id {
        caller.require("user.read")
    } else {
        caller.require("user.read.other")
    }
}

/// One user of the tenant.
#[utoipa::path(
    tag = "users",
    responses((status = 200, body = UserView), (status = 404, description = "`user_not_found`")),
    security(("bearer" = ["user.read.other"]))
)]
#[get("/users/{id}")]
async fn get_user(
    state: Data<AppState>,
    caller: Caller,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_read(&caller, &id)?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .run(move |conn| {
            let row = load(conn, &tenant, &id)?;
            user_view(conn, row)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// An administrator's changes to a user.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpdate {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    /// Role ids or monikers; replaces all roles (needs `user.roles.other`).
    pub roles: Option<Vec<String>>,
    /// Direct permission nodes; replaces them all (needs `user.permissions.other`).
    pub permissions: Option<Vec<String>>,
}

/// Change a user's profile, roles or direct permissions.
///
/// Changing roles also needs `user.roles.other`, and direct permissions
/// `user.permissions.other`. Nobody can grant a node they do not hold, and the tenant's last
/// active admin cannot lose the admin role.
#[utoipa::path(
    tag = "users",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses(
        (status = 200, body = UserView),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`last_admin`"),
        (status = 412, description = "`version_mismatch`"),
    ),
    security(("bearer" = ["user.write.other"]))
)]
#[patch("/users/{id}")]
async fn update_user(
    state: Data<AppState>,
    caller: Require<perm::UserWriteOther>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<UserUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.roles.is_some() {
        caller.require("user.roles.other")?;
    }
    if body.permissions.is_some() {
        caller.require("user.permissions.other")?;
    }
    let mut changes = profile_changes(&ProfileChanges {
        name: body.name.clone(),
        avatar_url: body.avatar_url.clone(),
    })?;
    let permissions = body
        .permissions
        .as_deref()
        .map(|p| parse_grants("permissions", p))
        .transpose()?;
    if let Some(p) = &permissions {
        ensure_covered(&caller.grants, p)?;
        changes.permissions = Some(list_to_json(p));
    }
    let caller = caller.into_inner();
    let id = id.into_inner();
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let user = load(conn, &caller.tenant_id, &id)?;
            let role_ids = match &body.roles {
                None => None,
                Some(names) => {
                    let wanted = resolve_roles(conn, &caller.tenant_id, "roles", names)?;
                    ensure_covered(&caller.grants, &role_grants(&wanted))?;
                    let keeps_admin = wanted
                        .iter()
                        .any(|r| r.moniker == crate::domain::system_roles::ADMIN);
                    if !keeps_admin {
                        ensure_not_last_admin(conn, &caller.tenant_id, &user.id)?;
                    }
                    Some(wanted.into_iter().map(|r| r.id).collect::<Vec<_>>())
                }
            };
            write_user(
                conn,
                &user,
                &if_match,
                &changes,
                role_ids.as_deref(),
                now,
                &origin,
            )
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Delete a user; their sessions and API keys go with them.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`cannot_delete_self` or `last_admin`"),
    ),
    security(("bearer" = ["user.delete.other"]))
)]
#[delete("/users/{id}")]
async fn delete_user(
    state: Data<AppState>,
    caller: Require<perm::UserDeleteOther>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, me, id) = (
        caller.tenant_id.clone(),
        caller.subject.clone(),
        id.into_inner(),
    );
    let origin = events::by(&caller, state.clock.now());
    state
        .db
        .transaction(move |conn| {
            let user = load(conn, &tenant, &id)?;
            if user.id == me {
                return Err(ApiError::conflict(
                    "cannot_delete_self",
                    "you cannot delete your own account",
                ));
            }
            ensure_not_last_admin(conn, &tenant, &user.id)?;
            users::delete(conn, &tenant, &user.id)?;
            emit(
                conn,
                &origin,
                &ev::UserDeleted {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_status(
    state: Data<AppState>,
    caller: Caller,
    id: String,
    status: &'static str,
) -> Result<HttpResponse, ApiError> {
    let (tenant, me) = (caller.tenant_id.clone(), caller.subject.clone());
    let origin = events::by(&caller, state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let user = load(conn, &tenant, &id)?;
            if status == "deactivated" {
                if user.id == me {
                    return Err(ApiError::conflict(
                        "cannot_deactivate_self",
                        "you cannot deactivate your own account",
                    ));
                }
                ensure_not_last_admin(conn, &tenant, &user.id)?;
                refresh_tokens::revoke_user(conn, &user.id, now)?;
            }
            if user.status == status {
                return user_view(conn, user);
            }
            let changes = UserChanges {
                status: Some(status.into()),
                ..Default::default()
            };
            write_user(
                conn,
                &user,
                &IfMatch::default(),
                &changes,
                None,
                now,
                &origin,
            )
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Deactivate a user: their sessions end and they cannot log in.
#[utoipa::path(
    tag = "users",
    responses((status = 200, body = UserView), (status = 404, description = "`user_not_found`"), (status = 409, description = "`last_admin`")),
    security(("bearer" = ["user.deactivate"]))
)]
#[post("/users/{id}/deactivate")]
async fn deactivate_user(
    state: Data<AppState>,
    caller: Require<perm::UserDeactivate>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_status(state, caller.into_inner(), id.into_inner(), "deactivated").await
}

/// Reactivate a deactivated user.
#[utoipa::path(
    tag = "users",
    responses((status = 200, body = UserView), (status = 404, description = "`user_not_found`")),
    security(("bearer" = ["user.deactivate"]))
)]
#[post("/users/{id}/reactivate")]
async fn reactivate_user(
    state: Data<AppState>,
    caller: Require<perm::UserDeactivate>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_status(state, caller.into_inner(), id.into_inner(), "active").await
}

/// Start a password reset for a user: the token goes to the user, not to the caller.
#[utoipa::path(
    tag = "users",
    responses((status = 202, description = "Reset started"), (status = 404, description = "`user_not_found`"), (status = 409, description = "`user_deactivated`")),
    security(("bearer" = ["user.reset_password.other"]))
)]
#[post("/users/{id}/reset-password")]
async fn reset_user_password(
    state: Data<AppState>,
    caller: Require<perm::UserResetPasswordOther>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let now = state.clock.now();
    let origin = events::by(&caller, now);
    state
        .db
        .transaction(move |conn| {
            let user = load(conn, &tenant, &id)?;
            if user.status != "active" {
                return Err(ApiError::conflict(
                    "user_deactivated",
                    "reactivate the user first",
                ));
            }
            start_password_reset(conn, &user, now, &origin)
        })
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// A user's roles.
#[utoipa::path(
    tag = "users",
    responses((status = 200, body = Vec<RoleView>), (status = 404, description = "`user_not_found`")),
    security(("bearer" = ["user.read.other", "role.read"]))
)]
#[get("/users/{id}/roles")]
async fn get_user_roles(
    state: Data<AppState>,
    caller: Require<(perm::UserReadOther, perm::RoleRead)>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let list: Vec<RoleView> = state
        .db
        .run(move |conn| {
            let user = load(conn, &tenant, &id)?;
            Ok::<_, ApiError>(
                roles::of_user(conn, &user.id)?
                    .into_iter()
                    .map(RoleView::from)
                    .collect(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Which of these permission nodes a user holds.
#[utoipa::path(
    tag = "users",
    responses((status = 200, body = PermissionCheck), (status = 404, description = "`user_not_found`")),
    security(("bearer" = ["user.read.other"]))
)]
#[post("/users/{id}/check-permission")]
async fn check_user_permissions(
    state: Data<AppState>,
    caller: Require<perm::UserReadOther>,
    id: Path<String>,
    body: Json<CheckPermissions>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    check_user(&state, tenant, id, body.into_inner()).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    pub name: String,
    /// Role ids or monikers the person gets on registering.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Invite someone; the answer carries the invitation token, once.
#[utoipa::path(
    tag = "users",
    responses((status = 201, body = InviteView), (status = 409, description = "`email_taken`")),
    security(("bearer" = ["user.invite"]))
)]
#[post("/users/invite")]
async fn invite_user(
    state: Data<AppState>,
    caller: Require<perm::UserInvite>,
    body: Json<InviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let name = errors.check("name", names::person_name(&body.name));
    if body.roles.len() > 20 {
        errors.push("roles", "at most 20 roles");
    }
    let (Some(email), Some(name)) = (email, name) else {
        return Err(errors.into_error());
    };
    errors.finish()?;
    let caller = caller.into_inner();
    let now = state.clock.now();
    let origin = events::by(&caller, now);
    let view = state
        .db
        .transaction(move |conn| {
            if users::find_by_email(conn, email.as_str())?.is_some() {
                return Err(ApiError::conflict(
                    "email_taken",
                    "an account with this email already exists",
                ));
            }
            let roles = resolve_roles(conn, &caller.tenant_id, "roles", &body.roles)?;
            ensure_covered(&caller.grants, &role_grants(&roles))?;
            let monikers: Vec<String> = roles.into_iter().map(|r| r.moniker).collect();
            let token = random_token(32);
            let row = InviteRow {
                id: new_id(),
                tenant_id: caller.tenant_id.clone(),
                email: email.as_str().to_owned(),
                name: name.clone(),
                roles: list_to_json(&monikers),
                token_hash: sha256_hex(&token),
                invited_by: caller.subject.clone(),
                expires_at: (now + INVITE_TTL).naive_utc(),
                accepted_at: None,
                created_at: now.naive_utc(),
            };
            invites::insert(conn, &row)?;
            emit(
                conn,
                &origin,
                &ev::UserInvited {
                    invite_id: row.id.clone(),
                    email: row.email.clone(),
                    name: row.name.clone(),
                    roles: monikers.clone(),
                    invited_by: caller.subject.clone(),
                    token: token.clone(),
                    expires_at: now + INVITE_TTL,
                },
            )?;
            Ok::<_, ApiError>(InviteView {
                id: row.id,
                email: row.email,
                name: row.name,
                roles: monikers,
                token,
                expires_at: now + INVITE_TTL,
            })
        })
        .await?;
    created(&view)
}
