//! What the API answers with: camelCase JSON views of identity's rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::api_keys::ApiKeyRow;
use crate::store::list_from_json;
use crate::store::roles::RoleRow;
use crate::store::tenants::TenantRow;
use crate::store::users::UserRow;

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub name: String,
    /// `active` or `deactivated`.
    pub status: String,
    /// Role monikers.
    pub roles: Vec<String>,
    /// Direct grants (roles grant the rest).
    pub permissions: Vec<String>,
    pub avatar_url: Option<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; sent back in `If-Match` as the `ETag`.
    pub version: i64,
}

impl UserView {
    /// The view of a row and its role monikers.
    pub fn new(row: UserRow, roles: Vec<String>) -> Self {
        Self {
            permissions: list_from_json(&row.permissions),
            id: row.id,
            tenant_id: row.tenant_id,
            email: row.email,
            name: row.name,
            status: row.status,
            roles,
            avatar_url: row.avatar_url,
            last_login_at: row.last_login_at.map(utc),
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

/// A role.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    pub id: String,
    pub moniker: String,
    pub title: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// System roles come with every tenant and cannot be deleted.
    pub system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<RoleRow> for RoleView {
    fn from(row: RoleRow) -> Self {
        Self {
            permissions: list_from_json(&row.permissions),
            id: row.id,
            moniker: row.moniker,
            title: row.title,
            description: row.description,
            system: row.system != 0,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

/// The caller's tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: String,
    pub name: String,
    /// Free-form settings object.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<TenantRow> for TenantView {
    fn from(row: TenantRow) -> Self {
        Self {
            settings: serde_json::from_str(&row.settings).unwrap_or_else(|_| serde_json::json!({})),
            id: row.id,
            name: row.name,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The public part of the key (`fdk_<prefix>_...`), to recognise it.
    pub prefix: String,
    pub user_id: String,
    pub permissions: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            permissions: list_from_json(&row.permissions),
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            user_id: row.user_id,
            expires_at: row.expires_at.map(utc),
            last_used_at: row.last_used_at.map(utc),
            created_at: utc(row.created_at),
        }
    }
}

/// A new API key: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The whole key. Store it now: it cannot be shown again.
    pub secret: String,
}

/// A session: tokens and who they are for.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque, single use: `POST /auth/refresh` returns a new one.
    pub refresh_token: String,
    pub user: UserView,
}

/// An access token without a session (service and API-key tokens).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// A new invitation; the token is shown only here.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    /// Give it to the person; `POST /auth/register` with `inviteToken` accepts it.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// One answer of a permission check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionResult {
    pub permission: String,
    pub has_permission: bool,
}

/// Answers of a permission check, in the order asked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PermissionCheck {
    pub results: Vec<PermissionResult>,
}
