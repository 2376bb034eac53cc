//! Signing keys and access tokens.

use chrono::{DateTime, Duration, Utc};
use fleetdesk_auth::{Claims, SigningKey, TokenType, Verifier};
use fleetdesk_store::{DbConn, StoreError};
use jsonwebtoken::jwk::JwkSet;

use crate::store::signing_keys::{self, SigningKeyRow};

/// The key identity signs with and the public keys it publishes, loaded at start-up.
pub struct KeyRing {
    current: SigningKey,
    published: JwkSet,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the published keys, creating the first one on an empty database. The newest
    /// non-retired key signs; retired keys stay published while their tokens may live.
    pub fn load_or_create(
        conn: &mut DbConn,
        now: DateTime<Utc>,
        token_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let since = (now - token_ttl - Duration::minutes(5)).naive_utc();
        let mut rows = signing_keys::published(conn, since)?;
        if !rows.iter().any(|r| r.retired_at.is_none()) {
            let key = SigningKey::generate().map_err(|e| StoreError::Setup(e.to_string()))?;
            signing_keys::insert(
                conn,
                &SigningKeyRow {
                    kid: key.kid().to_owned(),
                    private_seed: key.seed_base64(),
                    created_at: now.naive_utc(),
                    retired_at: None,
                },
            )?;
            tracing::info!(kid = key.kid(), "generated a new token signing key");
            rows = signing_keys::published(conn, since)?;
        }
        let keys: Vec<(SigningKey, bool)> = rows
            .iter()
            .map(|r| {
                SigningKey::from_seed_base64(&r.private_seed)
                    .map(|k| (k, r.retired_at.is_none()))
                    .map_err(|e| {
                        StoreError::Setup(format!("signing key {} is unreadable: {e}", r.kid))
                    })
            })
            .collect::<Result<_, _>>()?;
        let current = keys
            .iter()
            .find(|(_, active)| *active)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| StoreError::Setup("no active signing key".into()))?;
        let published = JwkSet {
            keys: keys.iter().map(|(k, _)| k.public_jwk().clone()).collect(),
        };
        Ok(Self { current, published })
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.published
    }

    /// Teaches a verifier every published key.
    pub fn install(&self, verifier: &Verifier) {
        verifier.replace_keys(&self.published);
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        self.current.sign(claims).map_err(|e| e.to_string())
    }
}

/// What an access token is issued for.
#[derive(Debug, Clone)]
pub struct Subject {
    /// User or service client id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Role monikers.
    pub roles: Vec<String>,
    /// Effective permission nodes.
    pub perms: Vec<String>,
    /// Kind of bearer.
    pub kind: TokenType,
}

/// The claims of a new token for `subject`, valid `ttl` from `now`.
pub fn claims_for(
    subject: Subject,
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Claims {
    Claims {
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        sub: subject.id,
        tid: subject.tenant_id,
        roles: subject.roles,
        perms: subject.perms,
        exp: (now + ttl).timestamp(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        jti: uuid::Uuid::now_v7().to_string(),
        typ: subject.kind,
    }
}
