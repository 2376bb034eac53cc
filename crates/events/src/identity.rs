//! Events published by identity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::subject;

macro_rules! identity_event {
    ($($t:tt)*) => { service_event!("identity"; $($t)*); };
}

/// A tenant was created (with its system roles).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantCreated {
    pub tenant_id: String,
    pub name: String,
}
identity_event!(
    TenantCreated,
    "tenant.created",
    "A tenant was created, with its system roles.",
    |e| format!("tenant:{}", e.tenant_id),
    subject("tenant", &e.tenant_id, format!("tenant {} created", e.name))
);

/// A tenant's name or settings changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantUpdated {
    pub tenant_id: String,
    pub name: String,
    /// The fields that changed (`name`, `settings`).
    pub changed: Vec<String>,
}
identity_event!(
    TenantUpdated,
    "tenant.updated",
    "A tenant's name or settings changed.",
    |e| format!("tenant:{}", e.tenant_id),
    subject(
        "tenant",
        &e.tenant_id,
        format!("tenant changed: {}", e.changed.join(", "))
    )
);

/// How an account came to be.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Accepted an invitation.
    Invite,
    /// Open self-registration.
    Open,
    /// The first administrator, created at start-up.
    Bootstrap,
}

/// What other services keep of a user (their read models): who they are and what they may
/// do now. Carried by every `user.*` event that can change it, and re-sent for each holder
/// when a role's permissions change, so a consumer never has to compute roles itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAccess {
    pub email: String,
    pub name: String,
    /// `active` or `deactivated`.
    pub status: String,
    /// Effective permission nodes (direct grants and every role's).
    pub permissions: Vec<String>,
}

/// An account was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub via: Registration,
    /// Role monikers given at registration.
    pub roles: Vec<String>,
    /// The user as they are after this change, for other services' read models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<UserAccess>,
}
identity_event!(
    UserRegistered,
    "user.registered",
    "An account was created (invitation accepted, open registration, or first administrator).",
    |e| format!("user:{}", e.user_id),
    subject("user", &e.user_id, format!("{} registered", e.email))
);

/// Someone was invited; `token` lets notify email the invitation link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInvited {
    pub invite_id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub invited_by: String,
    /// The single-use invitation token (blanked from the outbox once sent).
    pub token: String,
    pub expires_at: DateTime<Utc>,
}
identity_event!(
    UserInvited,
    "user.invited",
    "Someone was invited to the tenant; carries the token for the invitation email.",
    true,
    |e| format!("invite:{}", e.invite_id),
    subject("invite", &e.invite_id, format!("{} invited", e.email))
);

/// A user's profile, permissions or roles changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user_id: String,
    /// The fields that changed (`name`, `avatarUrl`, `permissions`, `roles`, `password`).
    pub changed: Vec<String>,
    /// The user as they are after this change, for other services' read models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<UserAccess>,
}
identity_event!(
    UserUpdated,
    "user.updated",
    "A user's profile, password, permissions or roles changed.",
    |e| format!("user:{}", e.user_id),
    subject(
        "user",
        &e.user_id,
        format!("user changed: {}", e.changed.join(", "))
    )
);

/// A user can no longer sign in; their sessions were revoked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDeactivated {
    pub user_id: String,
    /// The user as they are after this change, for other services' read models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<UserAccess>,
}
identity_event!(
    UserDeactivated,
    "user.deactivated",
    "A user was deactivated and their sessions revoked.",
    |e| format!("user:{}", e.user_id),
    subject("user", &e.user_id, "user deactivated".into())
);

/// A deactivated user may sign in again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserReactivated {
    pub user_id: String,
    /// The user as they are after this change, for other services' read models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<UserAccess>,
}
identity_event!(
    UserReactivated,
    "user.reactivated",
    "A deactivated user was reactivated.",
    |e| format!("user:{}", e.user_id),
    subject("user", &e.user_id, "user reactivated".into())
);

/// A user was deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: String,
    pub email: String,
}
identity_event!(
    UserDeleted,
    "user.deleted",
    "A user was deleted.",
    |e| format!("user:{}", e.user_id),
    subject("user", &e.user_id, format!("{} deleted", e.email))
);

/// A role as it is after a change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleCreated {
    pub role_id: String,
    pub moniker: String,
    pub name: String,
    pub permissions: Vec<String>,
}
identity_event!(
    RoleCreated,
    "role.created",
    "A custom role was created.",
    |e| format!("role:{}", e.role_id),
    subject("role", &e.role_id, format!("role {} created", e.moniker))
);

/// A role's name, description or permissions changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleUpdated {
    pub role_id: String,
    pub moniker: String,
    pub name: String,
    pub permissions: Vec<String>,
}
identity_event!(
    RoleUpdated,
    "role.updated",
    "A role's name, description or permissions changed.",
    |e| format!("role:{}", e.role_id),
    subject("role", &e.role_id, format!("role {} updated", e.moniker))
);

/// A role was deleted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleDeleted {
    pub role_id: String,
    pub moniker: String,
}
identity_event!(
    RoleDeleted,
    "role.deleted",
    "A custom role was deleted.",
    |e| format!("role:{}", e.role_id),
    subject("role", &e.role_id, format!("role {} deleted", e.moniker))
);

/// A password reset was requested; notify emails the link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequested {
    pub user_id: String,
    pub email: String,
    pub name: String,
    /// The single-use reset token (blanked from the outbox once sent).
    pub token: String,
    pub expires_at: DateTime<Utc>,
}
identity_event!(
    PasswordResetRequested,
    "auth.password_reset_requested",
    "A password reset was requested; carries what notify needs to email the link.",
    true,
    |e| format!("user:{}", e.user_id),
    subject("user", &e.user_id, "password reset requested".into())
);

/// A sign-in failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailed {
    /// The email tried (as typed, trimmed and lower-cased).
    pub email: String,
    /// The account, when the email belongs to one.
    pub user_id: Option<String>,
    /// `bad_credentials`, `locked`, or `inactive`.
    pub reason: String,
    pub client_ip: Option<String>,
}
identity_event!(
    LoginFailed,
    "auth.login_failed",
    "A sign-in attempt failed.",
    |e| format!("login:{}", e.email),
    subject(
        "user",
        e.user_id.as_deref().unwrap_or(""),
        format!("failed sign-in for {} ({})", e.email, e.reason)
    )
);

/// A refresh token was used twice: its whole family was revoked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReuseDetected {
    pub user_id: String,
    pub family_id: String,
    pub client_ip: Option<String>,
}
identity_event!(
    RefreshReuseDetected,
    "auth.refresh_reuse_detected",
    "A rotated refresh token was presented again; the session family was revoked.",
    |e| format!("user:{}", e.user_id),
    subject(
        "user",
        &e.user_id,
        "refresh token reused; sessions revoked".into()
    )
);
