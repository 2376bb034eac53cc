//! The verified caller of a request, and `Require<permission>`.
//!
//! Every service verifies tokens itself (the gateway is not the only check): the app holds a
//! `web::Data<Verifier>`; [`Caller`] reads `Authorization: Bearer`, verifies it and exposes the
//! tenant, subject and grants; [`Require`] also checks permission nodes named in its type.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use fleetdesk_auth::{Grants, RemoteKeys, Requirement, TokenError, TokenType, Verifier};

use crate::error::ApiError;

/// The header in which a service token names the tenant it acts for.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// Who is calling: taken from a verified access token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id (or service client id).
    pub subject: String,
    /// The tenant the caller acts in.
    pub tenant_id: String,
    /// Role monikers, for display.
    pub roles: Vec<String>,
    /// Effective permission nodes.
    pub grants: Grants,
    /// User, service or API key.
    pub kind: TokenType,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's expiry, seconds since the epoch.
    pub expires_at: i64,
}

impl Caller {
    /// Whether the caller holds `node`.
    pub fn allows(&self, node: &str) -> bool {
        self.grants.allows(node)
    }

    /// The actor recorded for the caller's changes: the user id, or `service:<client>` for
    /// service tokens.
    pub fn actor(&self) -> String {
        match self.kind {
            TokenType::Service => format!("service:{}", self.subject),
            _ => self.subject.clone(),
        }
    }

    /// The origin of the events of a change the caller makes at `now`, under the request's
    /// trace. Build it before entering a transaction: the request's trace context is not
    /// visible on the blocking thread.
    pub fn origin(&self, now: chrono::DateTime<chrono::Utc>) -> fleetdesk_events::Origin {
        fleetdesk_events::Origin::new(Some(self.tenant_id.clone()), self.actor(), now)
            .traced(crate::context::current().map(|c| c.traceparent()))
    }

    /// 403 `permission_denied` unless the caller holds `node`.
    pub fn require(&self, node: &str) -> Result<(), ApiError> {
        if self.allows(node) {
            Ok(())
        } else {
            Err(ApiError::missing_permission(node))
        }
    }

    /// The caller of `req`: its bearer token verified with the app's `Data<RemoteKeys>`
    /// (services besides identity: identity's JWKS, refreshed on an unknown `kid`) or, failing
    /// that, its `Data<Verifier>` (identity itself).
    async fn from_request_async(req: HttpRequest) -> Result<Self, ApiError> {
        let token = bearer_token(&req)?;
        let claims = if let Some(keys) = req.app_data::<Data<RemoteKeys>>() {
            keys.verify(token).await
        } else {
            let verifier = req
                .app_data::<Data<Verifier>>()
                .ok_or_else(|| ApiError::internal("no token verifier configured for this app"))?;
            verifier.verify(token)
        };
        let claims = claims.map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized("token_expired", e.to_string()),
            other => ApiError::unauthorized("invalid_token", other.to_string()),
        })?;
        Self::from_claims(&req, claims)
    }

    fn from_claims(req: &HttpRequest, claims: fleetdesk_auth::Claims) -> Result<Self, ApiError> {
        // A service acts for one tenant per call and names it; people and API keys are bound
        // to the tenant of their token, whatever they send.
        let tenant_id = match (claims.typ, req.headers().get(TENANT_HEADER)) {
            (TokenType::Service, Some(value)) => {
                let value = value.to_str().unwrap_or_default().trim();
                let sane = (1..=64).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !sane {
                    return Err(ApiError::bad_request(
                        "invalid_tenant_header",
                        "X-Tenant-Id must be a tenant id",
                    ));
                }
                value.to_owned()
            }
            _ => claims.tid,
        };
        Ok(Caller {
            subject: claims.sub,
            tenant_id,
            roles: claims.roles,
            grants: Grants::new(claims.perms),
            kind: claims.typ,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing_token", "this needs an Authorization: Bearer token")
        })?
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized("invalid_token", "the Authorization header is not text")
        })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Caller::from_request_async(req.clone()))
    }
}

/// A caller who holds every node of `R` (one marker of `fleetdesk_auth::perm`, or a tuple).
pub struct Require<R>(pub Caller, PhantomData<R>);

impl<R> std::fmt::Debug for Require<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Require").field(&self.0).finish()
    }
}

impl<R> Require<R> {
    /// The caller.
    pub fn into_inner(self) -> Caller {
        self.0
    }
}

impl<R> Deref for Require<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: Requirement + 'static> FromRequest for Require<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = Caller::from_request_async(req).await?;
            for node in R::nodes() {
                caller.require(node)?;
            }
            Ok(Require(caller, PhantomData))
        })
    }
}
