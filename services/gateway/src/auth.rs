//! Who is calling: access tokens checked against identity's JWKS, and API keys exchanged at
//! identity for short-lived tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetdesk_auth::{Claims, RemoteKeys, TokenError};
use sha2::{Digest, Sha256};
use url::Url;

/// Identity's signing keys ([`RemoteKeys`]). Its verifier remembers the tokens it verified
/// until they expire or the keys change: a signature check costs more than the rest of
/// forwarding.
pub struct Keys {
    remote: RemoteKeys,
}

impl Keys {
    /// Keys fetched from `jwks_url`, for tokens of `issuer` and `audience`.
    pub fn new(
        client: reqwest::Client,
        jwks_url: Url,
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
    ) -> Self {
        Self {
            remote: RemoteKeys::new(client, jwks_url.as_str(), issuer, audience, min_refresh),
        }
    }

    /// Fetches the key set now. `Err` leaves the known keys in place.
    pub async fn fetch(&self) -> Result<usize, String> {
        let n = self.remote.fetch().await?;
        metrics::counter!("gateway_jwks_refreshes_total").increment(1);
        Ok(n)
    }

    /// Verifies a token (or finds it verified before and unexpired) and returns its claims,
    /// shared with the verifier's memory of it (not copied per request).
    pub async fn check(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        self.remote.verify_shared(token).await
    }

    /// Verifies a token, refreshing the keys once if it names a key not known yet.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.remote.verify(token).await
    }
}

struct Cached {
    token: String,
    usable_until: Instant,
}

/// What an API-key exchange came to.
#[derive(Debug)]
pub enum Exchange {
    /// A bearer token for the key.
    Token(String),
    /// Identity refused the key (unknown, revoked, expired).
    Refused,
    /// Identity could not be asked.
    Unavailable(String),
}

/// API keys exchanged at identity, cached by the key's SHA-256 until shortly before the token
/// expires. A revoked key therefore keeps working at most as long as one exchanged token lives
/// (identity's `FLEETDESK_API_KEY_TOKEN_TTL_SECONDS`, 300 s by default) minus the margin.
pub struct ApiKeys {
    client: reqwest::Client,
    exchange_url: Url,
    margin: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

const CACHE_MAX: usize = 10_000;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

impl ApiKeys {
    /// Exchanges at `exchange_url` (identity's `/api/v1/auth/api-key/exchange`).
    pub fn new(client: reqwest::Client, exchange_url: Url, margin: Duration) -> Self {
        Self {
            client,
            exchange_url,
            margin,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The bearer token cached for `key`, or, when there is none, the key's digest to
    /// [`exchange`](Self::exchange) it under.
    pub fn cached(&self, key: &str) -> Result<String, [u8; 32]> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(&digest)
            && hit.usable_until > Instant::now()
        {
            metrics::counter!("gateway_api_key_cache_total", "result" => "hit").increment(1);
            return Ok(hit.token.clone());
        }
        metrics::counter!("gateway_api_key_cache_total", "result" => "miss").increment(1);
        Err(digest)
    }

    /// Exchanges `key` (of `digest`) at identity for a bearer token, cached for the next
    /// requests; counted by outcome (`gateway_api_key_exchanges_total`).
    pub async fn exchange(&self, key: &str, digest: [u8; 32], request_id: &str) -> Exchange {
        let exchanged = self.ask(key, digest, request_id).await;
        let result = match &exchanged {
            Exchange::Token(_) => "token",
            Exchange::Refused => "refused",
            Exchange::Unavailable(_) => "unavailable",
        };
        metrics::counter!("gateway_api_key_exchanges_total", "result" => result).increment(1);
        exchanged
    }

    async fn ask(&self, key: &str, digest: [u8; 32], request_id: &str) -> Exchange {
        let response = self
            .client
            .post(self.exchange_url.clone())
            .header("x-api-key", key)
            .header("x-request-id", request_id)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Exchange::Unavailable(e.to_string()),
        };
        if response.status().as_u16() == 401 {
            return Exchange::Refused;
        }
        if !response.status().is_success() {
            return Exchange::Unavailable(format!("identity answered {}", response.status()));
        }
        let body: TokenResponse = match response.json().await {
            Ok(b) => b,
            Err(e) => return Exchange::Unavailable(e.to_string()),
        };
        let lifetime = Duration::from_secs(u64::try_from(body.expires_in).unwrap_or(0));
        if let Some(keep) = lifetime.checked_sub(self.margin)
            && !keep.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            let now = Instant::now();
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, c| c.usable_until > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(
                digest,
                Cached {
                    token: body.access_token.clone(),
                    usable_until: now + keep,
                },
            );
        }
        Exchange::Token(body.access_token)
    }
}
