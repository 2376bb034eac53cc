//! Account rules that touch storage: tenants with their system roles, effective
//! permissions, sessions, resets, and the checks that keep grants from escalating.

use chrono::{DateTime, Duration, Utc};
use fleetdesk_auth::permissions::{effective, is_grantable};
use fleetdesk_auth::{Grants, TokenType};
use fleetdesk_events::identity as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::{ApiError, FieldError};

use crate::AppState;
use crate::domain::secrets::{random_token, sha256_hex};
use crate::domain::system_roles;
use crate::store::password_resets::{self, PasswordResetRow};
use crate::store::refresh_tokens::{self, RefreshTokenRow};
use crate::store::roles::{self, RoleRow};
use crate::store::tenants::{self, TenantRow};
use crate::store::users::{self, UserRow};
use crate::store::{list_from_json, list_to_json};
use crate::tokens::{Subject, claims_for};
use crate::views::{LoginResponse, UserView};

/// Lifetime of a password-reset token.
pub const RESET_TTL: Duration = Duration::hours(1);
/// Lifetime of an invitation.
pub const INVITE_TTL: Duration = Duration::days(7);

/// The user's effective permission nodes: every role's plus the direct grants.
pub fn effective_permissions(conn: &mut DbConn, user: &UserRow) -> Result<Vec<String>, ApiError> {
    let mut all = list_from_json(&user.permissions);
    for list in users::role_permission_lists(conn, &user.id)? {
        all.extend(list_from_json(&list));
    }
    Ok(effective(all))
}

/// The user as other services' read models keep them, read after a change in the same
/// transaction; `None` if the user is gone.
pub fn user_access(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<fleetdesk_events::identity::UserAccess>, ApiError> {
    let Some(user) = users::find(conn, tenant_id, user_id)? else {
        return Ok(None);
    };
    let permissions = effective_permissions(conn, &user)?;
    Ok(Some(fleetdesk_events::identity::UserAccess {
        email: user.email,
        name: user.name,
        status: user.status,
        permissions,
    }))
}

/// The API view of one user.
pub fn user_view(conn: &mut DbConn, row: UserRow) -> Result<UserView, ApiError> {
    let mut roles = users::role_monikers(conn, std::slice::from_ref(&row.id))?;
    let monikers = roles.remove(&row.id).unwrap_or_default();
    Ok(UserView::new(row, monikers))
}

/// The API views of several users, with their roles in one query.
pub fn user_views(conn: &mut DbConn, rows: Vec<UserRow>) -> Result<Vec<UserView>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut roles = users::role_monikers(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let monikers = roles.remove(&r.id).unwrap_or_default();
            UserView::new(r, monikers)
        })
        .collect())
}

/// A new tenant with its system roles.
pub fn create_tenant(
    conn: &mut DbConn,
    name: &str,
    now: DateTime<Utc>,
    origin: &Origin,
) -> Result<(TenantRow, Vec<RoleRow>), ApiError> {
    let now = now.naive_utc();
    let tenant = TenantRow {
        id: new_id(),
        name: name.to_owned(),
        settings: "{}".into(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tenants::insert(conn, &tenant)?;
    let mut created = Vec::new();
    for role in system_roles::all() {
        let row = RoleRow {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            moniker: role.moniker.into(),
            title: role.title.into(),
            description: role.description.into(),
            permissions: list_to_json(
                &role
                    .permissions
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect::<Vec<_>>(),
            ),
            system: 1,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        roles::insert(conn, &row)?;
        created.push(row);
    }
    let origin = Origin {
        tenant_id: Some(tenant.id.clone()),
        ..origin.clone()
    };
    emit(
        conn,
        &origin,
        &ev::TenantCreated {
            tenant_id: tenant.id.clone(),
            name: tenant.name.clone(),
        },
    )?;
    Ok((tenant, created))
}

/// A new active user row.
pub fn new_user(
    tenant_id: &str,
    email: &str,
    name: &str,
    password_hash: String,
    now: DateTime<Utc>,
) -> UserRow {
    let now = now.naive_utc();
    UserRow {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        email: email.to_owned(),
        name: name.to_owned(),
        password_hash: Some(password_hash),
        status: "active".into(),
        permissions: "[]".into(),
        avatar_url: None,
        version: 1,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// Issues an access token for a user with their current roles and permissions.
pub fn access_token(
    state: &AppState,
    conn: &mut DbConn,
    user: &UserRow,
) -> Result<(String, i64), ApiError> {
    let perms = effective_permissions(conn, user)?;
    let roles = users::role_monikers(conn, std::slice::from_ref(&user.id))?
        .remove(&user.id)
        .unwrap_or_default();
    let subject = Subject {
        id: user.id.clone(),
        tenant_id: user.tenant_id.clone(),
        roles,
        perms,
        kind: TokenType::User,
    };
    sign(state, subject, state.config.access_ttl)
}

/// Signs a token for `subject` valid for `ttl`; returns it with its lifetime in seconds.
pub fn sign(
    state: &AppState,
    subject: Subject,
    ttl: std::time::Duration,
) -> Result<(String, i64), ApiError> {
    let ttl = Duration::from_std(ttl).map_err(ApiError::internal)?;
    // Real time, not the injectable clock: every verifier checks `exp` and `nbf` against it.
    let claims = claims_for(
        subject,
        &state.config.issuer,
        &state.config.audience,
        Utc::now(),
        ttl,
    );
    let token = state.keys.sign(&claims).map_err(ApiError::internal)?;
    Ok((token, ttl.num_seconds()))
}

/// Stores a new refresh token in `family` (a new family when `None`) and returns it.
pub fn new_refresh_token(
    state: &AppState,
    conn: &mut DbConn,
    user: &UserRow,
    family: Option<&str>,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    let token = random_token(32);
    let ttl = Duration::from_std(state.config.refresh_ttl).map_err(ApiError::internal)?;
    refresh_tokens::insert(
        conn,
        &RefreshTokenRow {
            id: new_id(),
            tenant_id: user.tenant_id.clone(),
            user_id: user.id.clone(),
            family_id: family.map(str::to_owned).unwrap_or_else(new_id),
            token_hash: sha256_hex(&token),
            expires_at: (now + ttl).naive_utc(),
            created_at: now.naive_utc(),
            used_at: None,
            revoked_at: None,
        },
    )?;
    Ok(token)
}

/// A full login answer: a new session family, an access token and the user.
pub fn login_response(
    state: &AppState,
    conn: &mut DbConn,
    user: UserRow,
    family: Option<&str>,
) -> Result<LoginResponse, ApiError> {
    let refresh_token = new_refresh_token(state, conn, &user, family)?;
    let (access_token, expires_in) = access_token(state, conn, &user)?;
    let user = user_view(conn, user)?;
    Ok(LoginResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token,
        user,
    })
}

/// Creates a single-use reset token for an active user, superseding earlier ones.
/// Issues a reset token for `user` and writes `auth.password_reset_requested` (which notify
/// turns into an email) in the same transaction.
pub fn start_password_reset(
    conn: &mut DbConn,
    user: &UserRow,
    now: DateTime<Utc>,
    origin: &Origin,
) -> Result<(), ApiError> {
    password_resets::expire_for_user(conn, &user.id, now.naive_utc())?;
    let token = random_token(32);
    let expires_at = now + RESET_TTL;
    password_resets::insert(
        conn,
        &PasswordResetRow {
            id: new_id(),
            tenant_id: user.tenant_id.clone(),
            user_id: user.id.clone(),
            token_hash: sha256_hex(&token),
            expires_at: expires_at.naive_utc(),
            used_at: None,
            created_at: now.naive_utc(),
        },
    )?;
    emit(
        conn,
        origin,
        &ev::PasswordResetRequested {
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            token,
            expires_at,
        },
    )?;
    Ok(())
}

/// Checks that each node exists in the catalogue (or is a real wildcard), naming the bad
/// ones as `<field>[i]`; returns them trimmed and without duplicates.
pub fn parse_grants(field: &str, nodes: &[String]) -> Result<Vec<String>, ApiError> {
    let errors: Vec<FieldError> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !is_grantable(n.trim()))
        .map(|(i, n)| {
            FieldError::new(
                format!("{field}[{i}]"),
                format!("`{n}` is not a permission node"),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut out: Vec<String> = nodes.iter().map(|n| n.trim().to_owned()).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// 403 unless the granter holds every node they are handing out (no privilege escalation).
pub fn ensure_covered(granter: &Grants, wanted: &[String]) -> Result<(), ApiError> {
    match granter.missing(wanted).first() {
        None => Ok(()),
        Some(node) => Err(ApiError::forbidden(
            "grant_exceeds_own_permissions",
            format!("you cannot grant `{node}`: you do not hold it yourself"),
        )),
    }
}

/// The tenant's roles named by id or moniker, naming unknown ones as `<field>[i]`.
pub fn resolve_roles(
    conn: &mut DbConn,
    tenant_id: &str,
    field: &str,
    names: &[String],
) -> Result<Vec<RoleRow>, ApiError> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match roles::find(conn, tenant_id, name.trim())? {
            Some(role) => {
                if !found.iter().any(|r: &RoleRow| r.id == role.id) {
                    found.push(role);
                }
            }
            None => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("no role `{name}` in this tenant"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(ApiError::invalid(errors))
    }
}

/// Every node the roles grant.
pub fn role_grants(roles: &[RoleRow]) -> Vec<String> {
    roles
        .iter()
        .flat_map(|r| list_from_json(&r.permissions))
        .collect()
}

/// 409 `last_admin` when `user_id` is the tenant's last active admin and the change would
/// take that away.
pub fn ensure_not_last_admin(
    conn: &mut DbConn,
    tenant_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    let Some(admin) = roles::find(conn, tenant_id, system_roles::ADMIN)? else {
        return Ok(());
    };
    let holds = roles::of_user(conn, user_id)?
        .iter()
        .any(|r| r.id == admin.id);
    if holds && users::count_active_holders(conn, &admin.id, Some(user_id))? == 0 {
        return Err(ApiError::conflict(
            "last_admin",
            "this is the tenant's last active administrator; make someone else admin first",
        ));
    }
    Ok(())
}
