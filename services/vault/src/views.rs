//! What the API answers: JSON views of the stored rows. Secure values never appear here in
//! clear, except in the reveal answers of `routes::credentials`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::types::FieldDef;
use crate::domain::value_types::ValueType;
use crate::store::credentials::{CredentialRow, ValueRow};
use crate::store::types::TypeRow;

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The field definitions stored as JSON (written only by this service).
pub fn defs_of(row: &TypeRow) -> Vec<FieldDef> {
    serde_json::from_str(&row.fields).unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeView {
    pub id: String,
    pub name: String,
    pub icon: Option<String>,
    /// Reveals of this type's secure values also need `<permissionScope>.read`.
    pub permission_scope: Option<String>,
    pub fields: Vec<FieldDef>,
    pub credential_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TypeView {
    pub fn new(row: TypeRow, credential_count: i64) -> Self {
        Self {
            fields: defs_of(&row),
            id: row.id,
            name: row.name,
            icon: row.icon,
            permission_scope: row.permission_scope,
            credential_count,
            version: row.version,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        }
    }
}

/// A type as a credential names it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeRef {
    pub id: String,
    pub name: String,
    pub permission_scope: Option<String>,
}

/// A company as a credential names it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompanyRef {
    pub id: String,
    /// `null` when the vault has not heard of the company's name (yet).
    pub name: Option<String>,
}

/// A field of a credential: plain values shown, secure ones `null` (reveal them).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldView {
    pub id: String,
    pub name: String,
    pub secure: bool,
    pub required: bool,
    pub value_type: ValueType,
    pub value: Option<String>,
    /// Whether the field has a value (for secure fields, whose value is `null` here).
    pub has_value: bool,
    /// The version of the current value (see the field's history).
    pub version: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub id: String,
    pub name: String,
    pub notes: String,
    pub type_id: String,
    pub company_id: String,
    #[serde(rename = "type")]
    pub credential_type: TypeRef,
    pub company: CompanyRef,
    pub fields: Vec<FieldView>,
    pub version: i64,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CredentialView {
    /// `values` are the credential's current value rows.
    pub fn new(
        row: CredentialRow,
        ty: &TypeRow,
        company_name: Option<String>,
        values: &[ValueRow],
    ) -> Self {
        let defs = defs_of(ty);
        let mut fields: Vec<FieldView> = defs
            .iter()
            .map(|d| {
                let current = values.iter().find(|v| v.field_id == d.id);
                let has_value = current.is_some_and(|v| v.value.is_some());
                FieldView {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    secure: d.secure,
                    required: d.required,
                    value_type: d.value_type,
                    value: current.filter(|v| !v.secure).and_then(|v| v.value.clone()),
                    has_value,
                    version: current.map(|v| v.version),
                }
            })
            .collect();
        fields.shrink_to_fit();
        Self {
            credential_type: TypeRef {
                id: ty.id.clone(),
                name: ty.name.clone(),
                permission_scope: ty.permission_scope.clone(),
            },
            company: CompanyRef {
                id: row.company_id.clone(),
                name: company_name,
            },
            id: row.id,
            name: row.name,
            notes: row.notes,
            type_id: row.type_id,
            company_id: row.company_id,
            fields,
            version: row.version,
            created_by: row.created_by,
            updated_by: row.updated_by,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
        }
    }
}

/// A stored field value as `GET /credentials/{id}/fields` shows it: plain values as they
/// are, secure ones only as their ciphertext envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFieldView {
    pub field_id: String,
    pub secure: bool,
    pub version: i32,
    /// The plain value; `null` for secure fields and cleared ones.
    pub value: Option<String>,
    /// For secure fields: `v1:<base64(nonce ‖ AES-256-GCM ciphertext ‖ tag)>` under the
    /// credential's data key.
    pub ciphertext: Option<String>,
    /// For secure fields: the KEK version that wraps the credential's data key.
    pub kek_version: Option<i32>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

impl StoredFieldView {
    pub fn new(v: &ValueRow, kek_version: i32) -> Self {
        Self {
            field_id: v.field_id.clone(),
            secure: v.secure,
            version: v.version,
            value: if v.secure { None } else { v.value.clone() },
            ciphertext: if v.secure { v.value.clone() } else { None },
            kek_version: (v.secure && v.value.is_some()).then_some(kek_version),
            changed_by: v.changed_by.clone(),
            changed_at: utc(v.changed_at),
        }
    }
}

/// One version of a field in its history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldVersionView {
    pub version: i32,
    pub current: bool,
    pub secure: bool,
    /// Whether the version had a value (`false`: the field was cleared).
    pub has_value: bool,
    /// Plain values always; secure ones only with `includeValues=true` and reveal rights.
    pub value: Option<String>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
    /// Set when this version restored an earlier one.
    pub restored_from: Option<i32>,
}

/// Revealed secure values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealedView {
    pub credential_id: String,
    /// Field id → value, for every secure field with a value.
    pub values: std::collections::BTreeMap<String, String>,
}

/// One revealed secure value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealedFieldView {
    pub credential_id: String,
    pub field_id: String,
    pub version: i32,
    pub value: String,
}

/// A KEK version.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub version: i32,
    /// `active` (the newest, wrapping new data keys), `rotating` (older, still wrapping some
    /// data keys until they are rewrapped), or `retired` (nothing uses it; key material gone).
    pub state: &'static str,
    /// How many of the tenant's credentials' data keys it wraps now.
    pub data_keys: i64,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}
