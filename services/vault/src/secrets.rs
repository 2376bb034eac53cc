//! Sealing and opening field values of a stored credential, inside a handler's transaction.

use chrono::NaiveDateTime;
use fleetdesk_store::DbConn;
use fleetdesk_web::ApiError;
use zeroize::Zeroizing;

use crate::crypto::{self, KeyBytes};
use crate::domain::values::Checked;
use crate::keys::Keyring;
use crate::routes::integrity;
use crate::store::credentials::{self, CredentialRow, NewValue, ValueRow};

/// The credential's data key.
pub fn data_key(
    conn: &mut DbConn,
    ring: &Keyring,
    row: &CredentialRow,
) -> Result<KeyBytes, ApiError> {
    ring.data_key(conn, &row.tenant_id, &row.id, &row.data_key)
        .map_err(|e| integrity(&row.id, e))
}

/// Opens one stored value of the credential (a sealed one under `dk`).
pub fn open(
    dk: &KeyBytes,
    row: &CredentialRow,
    v: &ValueRow,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    match (&v.value, v.secure) {
        (None, _) => Ok(None),
        (Some(plain), false) => Ok(Some(Zeroizing::new(plain.clone()))),
        (Some(sealed), true) => {
            crypto::open_value(dk, &row.tenant_id, &row.id, &v.field_id, sealed)
                .map(Some)
                .map_err(|e| integrity(&row.id, e))
        }
    }
}

/// Writes checked values as new current versions (secure ones sealed), skipping values equal
/// to the current one; returns the ids of the fields that changed.
pub fn write(
    conn: &mut DbConn,
    dk: &KeyBytes,
    row: &CredentialRow,
    current: &[ValueRow],
    checked: Vec<Checked>,
    by: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, ApiError> {
    let mut changed = Vec::new();
    if current.is_empty() {
        // A new credential: every value is version 1, written in one statement.
        let rows: Vec<ValueRow> = checked
            .into_iter()
            .filter_map(|c| {
                let value = c.value.as_ref()?;
                let stored = if c.field.secure {
                    crypto::seal_value(dk, &row.tenant_id, &row.id, &c.field.id, value)
                } else {
                    value.to_string()
                };
                Some(ValueRow {
                    credential_id: row.id.clone(),
                    field_id: c.field.id.clone(),
                    version: 1,
                    secure: c.field.secure,
                    value: Some(stored),
                    current: true,
                    changed_by: by.to_owned(),
                    changed_at: now,
                    restored_from: None,
                })
            })
            .collect();
        credentials::insert_values(conn, &rows)?;
        return Ok(rows.into_iter().map(|r| r.field_id).collect());
    }
    for c in checked {
        let field_id = c.field.id.clone();
        let before = current.iter().find(|v| v.field_id == field_id);
        if let Some(before) = before {
            let old = open(dk, row, before)?;
            let same = match (&old, &c.value) {
                (None, None) => true,
                (Some(a), Some(b)) => a.as_str() == b.as_str() && before.secure == c.field.secure,
                _ => false,
            };
            if same {
                continue;
            }
        } else if c.value.is_none() {
            continue;
        }
        let stored = c.value.as_ref().map(|v| {
            if c.field.secure {
                crypto::seal_value(dk, &row.tenant_id, &row.id, &field_id, v)
            } else {
                v.to_string()
            }
        });
        credentials::set_value(
            conn,
            NewValue {
                credential_id: &row.id,
                field_id: &field_id,
                secure: c.field.secure,
                value: stored,
                by,
                at: now,
                restored_from: None,
            },
        )?;
        changed.push(field_id);
    }
    Ok(changed)
}
