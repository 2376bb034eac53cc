//! Per-tenant vault settings.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConn;
use super::schema::vault_settings;

/// Whether reveals in this tenant must give a reason (default: no).
pub fn require_reason(conn: &mut DbConn, tenant_id: &str) -> QueryResult<bool> {
    Ok(vault_settings::table
        .filter(vault_settings::tenant_id.eq(tenant_id))
        .select(vault_settings::require_reveal_reason)
        .first(conn)
        .optional()?
        .unwrap_or(false))
}

pub fn set_require_reason(
    conn: &mut DbConn,
    tenant_id: &str,
    required: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let n = diesel::update(vault_settings::table.filter(vault_settings::tenant_id.eq(tenant_id)))
        .set((
            vault_settings::require_reveal_reason.eq(required),
            vault_settings::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(vault_settings::table)
            .values((
                vault_settings::tenant_id.eq(tenant_id),
                vault_settings::require_reveal_reason.eq(required),
                vault_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
