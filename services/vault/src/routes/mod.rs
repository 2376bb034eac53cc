//! The vault's HTTP routes.

pub mod credentials;
pub mod keys;
pub mod types;

use fleetdesk_web::ApiError;
use fleetdesk_web::error::ErrorKind;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::crypto::CryptoError;
use crate::keys::KeyringError;

/// Every route of the vault.
pub fn configure(cfg: &mut ServiceConfig) {
    fleetdesk_web::health::configure(cfg);
    cfg.service(
        scope::scope("/api/v1")
            .configure(types::configure)
            .configure(credentials::configure)
            .configure(keys::configure),
    );
}

/// 500 `integrity_error`: a stored ciphertext did not open. Logged and counted; no detail of
/// the value or key reaches the caller.
pub fn integrity(credential_id: &str, e: CryptoError) -> ApiError {
    metrics::counter!("vault_integrity_errors_total").increment(1);
    tracing::error!(credential_id, error = %e, "a stored ciphertext failed to open");
    ApiError::new(
        ErrorKind::Internal,
        "integrity_error",
        "a stored secret failed its integrity check and was not returned; quote the trace id when reporting it",
    )
}

impl From<KeyringError> for ApiError {
    fn from(e: KeyringError) -> Self {
        ApiError::internal(e)
    }
}

pub use fleetdesk_web::extract::search_text;
