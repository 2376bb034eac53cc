//! Where password-reset tokens go.
//!
//! The token must reach the person by email. Until the notify service exists, this seam has
//! one production implementation that records that a reset was requested without the token;
//! the events issue replaces it with an `auth.password_reset_requested` outbox row that notify
//! turns into an email.

use chrono::{DateTime, Utc};

/// A reset was requested for a user; `token` is the only copy of the secret.
#[derive(Clone)]
pub struct PasswordResetRequested {
    /// Tenant.
    pub tenant_id: String,
    /// User.
    pub user_id: String,
    /// Where to send it.
    pub email: String,
    /// Whom to greet.
    pub name: String,
    /// The single-use token to put in the link.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Delivers reset tokens to their owners.
pub trait PasswordResetDelivery: Send + Sync {
    /// Sends the token to the person (must not log it).
    fn deliver(&self, reset: PasswordResetRequested);
}

/// Logs that a reset was requested (never the token). No email is sent yet.
#[derive(Debug, Clone, Copy)]
pub struct LogOnlyDelivery;

impl PasswordResetDelivery for LogOnlyDelivery {
    fn deliver(&self, reset: PasswordResetRequested) {
        tracing::warn!(
            user_id = %reset.user_id,
            tenant_id = %reset.tenant_id,
            "password reset requested, but no email delivery is configured yet"
        );
    }
}
