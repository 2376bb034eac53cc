//! The claims of a Fleetdesk access token.

use serde::{Deserialize, Serialize};

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// A person who logged in.
    User,
    /// A Fleetdesk service holding client credentials.
    Service,
    /// A person's API key, exchanged for a short-lived token.
    ApiKey,
}

impl TokenType {
    /// The value carried in the `typ` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::User => "user",
            TokenType::Service => "service",
            TokenType::ApiKey => "api_key",
        }
    }
}

/// The claims every Fleetdesk access token carries (DESIGN.md §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, checked by every verifier.
    pub iss: String,
    /// Audience, checked by every verifier.
    pub aud: String,
    /// The user id, or the service client id.
    pub sub: String,
    /// The tenant the bearer acts in.
    pub tid: String,
    /// Role monikers, for display; decisions use `perms`.
    pub roles: Vec<String>,
    /// Effective permission nodes (may contain wildcards).
    pub perms: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Unique token id.
    pub jti: String,
    /// What kind of bearer this is.
    pub typ: TokenType,
}
