//! The vault's side of the event backbone: the read model of tickets' companies, fed by
//! `company.*` events, so a credential can only name a company of its tenant.

use fleetdesk_events::tickets::{CompanyCreated, CompanyDeleted, CompanyState, CompanyUpdated};
use fleetdesk_events::{Envelope, Event, HandlerError};
use fleetdesk_store::DbConn;

use crate::store::companies::{self, CompanyRow};

/// The name of the companies consumer in `processed_events`.
pub const COMPANIES_CONSUMER: &str = "vault.companies";

fn permanent(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Permanent(e.to_string())
}

fn save(conn: &mut DbConn, event: &Envelope, c: CompanyState) -> Result<(), HandlerError> {
    let Some(tenant_id) = event.tenant_id.clone() else {
        return Err(permanent("a company event without a tenant"));
    };
    companies::upsert(
        conn,
        &CompanyRow {
            id: c.company_id,
            tenant_id,
            name: c.name,
            identifier: c.identifier,
            updated_at: event.occurred_at.naive_utc(),
        },
    )?;
    Ok(())
}

/// Applies one `company.*` event to the read model.
pub fn record_company(conn: &mut DbConn, event: &Envelope) -> Result<(), HandlerError> {
    match event.event_type.as_str() {
        CompanyCreated::TYPE => {
            let e: CompanyCreated = event.decode().map_err(permanent)?;
            save(conn, event, e.company)
        }
        CompanyUpdated::TYPE => {
            let e: CompanyUpdated = event.decode().map_err(permanent)?;
            save(conn, event, e.company)
        }
        CompanyDeleted::TYPE => {
            let e: CompanyDeleted = event.decode().map_err(permanent)?;
            companies::delete(conn, &e.company_id)?;
            Ok(())
        }
        _ => Ok(()),
    }
}
