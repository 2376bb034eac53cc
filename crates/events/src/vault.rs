//! Events published by the vault: credential types, credentials and reveals.
//!
//! No event ever carries a field value, plaintext or ciphertext: only which fields changed or
//! were revealed, by whom and why.

use serde::{Deserialize, Serialize};

use crate::envelope::subject;

macro_rules! vault_event {
    ($($t:tt)*) => { service_event!("vault"; $($t)*); };
}

/// A credential type as it is after a change (its field definitions, no values).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypeState {
    pub type_id: String,
    pub name: String,
    pub permission_scope: Option<String>,
    /// The ids of its fields.
    pub field_ids: Vec<String>,
}

/// A credential type was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypeCreated {
    #[serde(flatten)]
    pub credential_type: CredentialTypeState,
}
vault_event!(
    CredentialTypeCreated,
    "credential_type.created",
    "A credential type was created.",
    |e| format!("credential_type:{}", e.credential_type.type_id),
    subject(
        "credential_type",
        &e.credential_type.type_id,
        format!("credential type {} created", e.credential_type.name)
    )
);

/// A credential type changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypeUpdated {
    #[serde(flatten)]
    pub credential_type: CredentialTypeState,
    /// The members that changed (`name`, `fields`, …).
    pub changed: Vec<String>,
}
vault_event!(
    CredentialTypeUpdated,
    "credential_type.updated",
    "A credential type changed; carries the type as it is now.",
    |e| format!("credential_type:{}", e.credential_type.type_id),
    subject(
        "credential_type",
        &e.credential_type.type_id,
        format!(
            "credential type {} changed: {}",
            e.credential_type.name,
            e.changed.join(", ")
        )
    )
);

/// A credential type was deleted, with its credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTypeDeleted {
    pub type_id: String,
    pub name: String,
    /// How many credentials were deleted with it.
    pub credentials_deleted: i64,
}
vault_event!(
    CredentialTypeDeleted,
    "credential_type.deleted",
    "A credential type was deleted together with its credentials.",
    |e| format!("credential_type:{}", e.type_id),
    subject(
        "credential_type",
        &e.type_id,
        format!(
            "credential type {} deleted with {} credentials",
            e.name, e.credentials_deleted
        )
    )
);

/// A credential as it is after a change, without values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialState {
    pub credential_id: String,
    pub name: String,
    pub type_id: String,
    pub company_id: String,
}

/// A credential was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialCreated {
    #[serde(flatten)]
    pub credential: CredentialState,
    /// The fields given values.
    pub field_ids: Vec<String>,
}
vault_event!(
    CredentialCreated,
    "credential.created",
    "A credential was created (no values are carried).",
    |e| format!("credential:{}", e.credential.credential_id),
    subject(
        "credential",
        &e.credential.credential_id,
        format!("credential {} created", e.credential.name)
    )
);

/// A credential changed: its name or notes, or field values (named, never carried).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialUpdated {
    #[serde(flatten)]
    pub credential: CredentialState,
    /// Members that changed (`name`, `notes`, `fields`).
    pub changed: Vec<String>,
    /// Fields whose value changed (or was restored).
    pub field_ids: Vec<String>,
    /// Set when a field was restored to an earlier version.
    pub restored_version: Option<i32>,
}
vault_event!(
    CredentialUpdated,
    "credential.updated",
    "A credential changed; names the fields whose values changed, never the values.",
    |e| format!("credential:{}", e.credential.credential_id),
    subject(
        "credential",
        &e.credential.credential_id,
        format!(
            "credential {} changed: {}",
            e.credential.name,
            e.changed.join(", ")
        )
    )
);

/// A credential was deleted with every version of its values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialDeleted {
    #[serde(flatten)]
    pub credential: CredentialState,
}
vault_event!(
    CredentialDeleted,
    "credential.deleted",
    "A credential was deleted with every version of its values.",
    |e| format!("credential:{}", e.credential.credential_id),
    subject(
        "credential",
        &e.credential.credential_id,
        format!("credential {} deleted", e.credential.name)
    )
);

/// Someone revealed secure values. Carries who (the envelope's actor), which fields and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSecretRevealed {
    #[serde(flatten)]
    pub credential: CredentialState,
    /// The secure fields whose values were returned.
    pub field_ids: Vec<String>,
    /// Set when an earlier version was revealed (field history).
    pub version: Option<i32>,
    /// The reason the caller gave, if any.
    pub reason: Option<String>,
}
vault_event!(
    CredentialSecretRevealed,
    "credential.secret_revealed",
    "Secure values of a credential were revealed (audited; never carries values).",
    |e| format!("credential:{}", e.credential.credential_id),
    subject(
        "credential",
        &e.credential.credential_id,
        format!(
            "secure values of {} revealed: {}{}",
            e.credential.name,
            e.field_ids.join(", "),
            e.reason
                .as_deref()
                .map(|r| format!(" (reason: {r})"))
                .unwrap_or_default()
        )
    )
);
