//! A token issuer for services that verify against identity's JWKS: a test signing key and a
//! real HTTP server publishing its key set.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use fleetdesk_auth::{Claims, SigningKey, TokenType};
use serde_json::json;

/// Signs tokens and serves their JWKS over HTTP.
pub struct Issuer {
    pub key: Arc<SigningKey>,
    pub jwks_url: String,
}

impl Issuer {
    /// Starts the JWKS server on a free port.
    pub async fn start() -> Self {
        let key = Arc::new(SigningKey::generate().expect("signing key"));
        let jwk = key.public_jwk().clone();
        let server = HttpServer::new(move || {
            let set = json!({ "keys": [jwk] });
            App::new().route(
                "/.well-known/jwks.json",
                web::get().to(move || {
                    let set = set.clone();
                    async move { HttpResponse::Ok().json(set) }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind the JWKS server");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            key,
            jwks_url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
        }
    }

    /// An access token of `sub` in `tenant` with these permissions.
    pub fn token(&self, tenant: &str, sub: &str, perms: &[&str]) -> String {
        self.key
            .sign(&self.claims(tenant, sub, perms))
            .expect("sign a token")
    }

    /// The claims [`Issuer::token`] signs.
    pub fn claims(&self, tenant: &str, sub: &str, perms: &[&str]) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "fleetdesk".into(),
            aud: "fleetdesk-api".into(),
            sub: sub.into(),
            tid: tenant.into(),
            roles: vec![],
            perms: perms.iter().map(|p| (*p).to_owned()).collect(),
            exp: now + 900,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: TokenType::User,
        }
    }
}
