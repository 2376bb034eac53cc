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
#[derive(Debug, Clone, PartialEq, Eq)]
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
///
/// Requests that need the same key exchanged at the same time (a busy integration when its
/// token is due, or at start) share one exchange rather than each asking identity.
pub struct ApiKeys {
    client: reqwest::Client,
    exchange_url: Url,
    margin: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    in_flight: InFlight,
}

/// The exchanges under way, by key digest: the first request for a key asks identity, the
/// others wait for its answer. If the one asking goes away (its client hung up), a waiting one
/// asks in its place.
type InFlight = Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<Exchange>>>>;

/// A request's share in an exchange under way; the last share to go removes the exchange
/// from [`InFlight`], finished or not, so nothing is left behind by clients that hung up.
struct Share<'a> {
    in_flight: &'a InFlight,
    digest: [u8; 32],
    cell: Arc<tokio::sync::OnceCell<Exchange>>,
}

impl<'a> Share<'a> {
    fn join(in_flight: &'a InFlight, digest: [u8; 32]) -> Self {
        let cell = in_flight
            .lock()
            .map(|mut m| m.entry(digest).or_default().clone())
            // A poisoned map: this request asks on its own.
            .unwrap_or_default();
        Share {
            in_flight,
            digest,
            cell,
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let cell = std::mem::take(&mut self.cell);
        let Ok(mut map) = self.in_flight.lock() else {
            return;
        };
        // Shares join and leave under the lock (this one's reference is dropped before the
        // lock is), so the count is exact here: the map's reference and this one mean this is
        // the last share.
        if Arc::strong_count(&cell) == 2
            && map.get(&self.digest).is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            map.remove(&self.digest);
        }
        drop(cell);
        drop(map);
    }
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
            in_flight: InFlight::default(),
        }
    }

    /// The bearer token cached for `key`, or, when there is none, the key's digest to
    /// [`exchange`](Self::exchange) it under.
    pub fn cached(&self, key: &str) -> Result<String, [u8; 32]> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if let Some(token) = self.lookup(&digest) {
            metrics::counter!("gateway_api_key_cache_total", "result" => "hit").increment(1);
            return Ok(token);
        }
        metrics::counter!("gateway_api_key_cache_total", "result" => "miss").increment(1);
        Err(digest)
    }

    fn lookup(&self, digest: &[u8; 32]) -> Option<String> {
        let cache = self.cache.lock().ok()?;
        let hit = cache.get(digest)?;
        (hit.usable_until > Instant::now()).then(|| hit.token.clone())
    }

    /// Exchanges `key` (of `digest`) at identity for a bearer token, cached for the next
    /// requests. Concurrent exchanges of one key share a single call to identity; each call is
    /// counted by outcome (`gateway_api_key_exchanges_total`).
    pub async fn exchange(&self, key: &str, digest: [u8; 32], request_id: &str) -> Exchange {
        let share = Share::join(&self.in_flight, digest);
        share
            .cell
            .get_or_init(|| self.exchange_alone(key, digest, request_id))
            .await
            .clone()
    }

    async fn exchange_alone(&self, key: &str, digest: [u8; 32], request_id: &str) -> Exchange {
        // An exchange that ended just before this one began may have cached the token.
        if let Some(token) = self.lookup(&digest) {
            return Exchange::Token(token);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in for identity's exchange endpoint: it answers each request `delay` after it
    /// came, with `status` and `body`, and counts the requests.
    async fn identity(
        delay: Duration,
        status: &'static str,
        body: &'static str,
    ) -> (Arc<ApiKeys>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/api/v1/auth/api-key/exchange",
            listener.local_addr().unwrap()
        );
        let asked = Arc::new(AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let count = count.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        fleetdesk_testkit::install_crypto();
        let keys = ApiKeys::new(
            reqwest::Client::new(),
            Url::parse(&url).unwrap(),
            Duration::from_secs(30),
        );
        (Arc::new(keys), asked)
    }

    const TOKEN: &str = r#"{"accessToken":"exchanged","expiresIn":300}"#;

    /// Starts an exchange of `key` on its own task.
    fn exchange(keys: &Arc<ApiKeys>, key: &'static str) -> tokio::task::JoinHandle<Exchange> {
        let keys = keys.clone();
        tokio::spawn(async move {
            let digest = keys.cached(key).unwrap_err();
            keys.exchange(key, digest, "req-1").await
        })
    }

    fn in_flight(keys: &ApiKeys) -> usize {
        keys.in_flight.lock().unwrap().len()
    }

    #[tokio::test]
    async fn concurrent_exchanges_of_one_key_ask_identity_once() {
        let (keys, asked) = identity(Duration::from_millis(200), "200 OK", TOKEN).await;
        let same: Vec<_> = (0..20).map(|_| exchange(&keys, "fdk_busy")).collect();
        let other = exchange(&keys, "fdk_other");
        for task in same {
            assert_eq!(task.await.unwrap(), Exchange::Token("exchanged".into()));
        }
        assert_eq!(other.await.unwrap(), Exchange::Token("exchanged".into()));
        assert_eq!(asked.load(Ordering::SeqCst), 2, "one exchange per key");
        assert_eq!(in_flight(&keys), 0, "finished exchanges are not kept");
        assert_eq!(keys.cached("fdk_busy").as_deref(), Ok("exchanged"));
    }

    #[tokio::test]
    async fn a_refusal_is_shared_by_the_requests_waiting_for_it_and_not_remembered() {
        let body = r#"{"status":401}"#;
        let (keys, asked) = identity(Duration::from_millis(200), "401 Unauthorized", body).await;
        let waiting: Vec<_> = (0..5).map(|_| exchange(&keys, "fdk_revoked")).collect();
        for task in waiting {
            assert_eq!(task.await.unwrap(), Exchange::Refused);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        assert_eq!(
            exchange(&keys, "fdk_revoked").await.unwrap(),
            Exchange::Refused
        );
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "a refusal is asked again later"
        );
        assert_eq!(in_flight(&keys), 0);
    }

    #[tokio::test]
    async fn when_the_request_asking_goes_away_one_waiting_asks_in_its_place() {
        let (keys, asked) = identity(Duration::from_millis(300), "200 OK", TOKEN).await;
        let first = exchange(&keys, "fdk_key");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = exchange(&keys, "fdk_key");
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The first request's client hangs up while identity is still answering it.
        first.abort();
        assert_eq!(second.await.unwrap(), Exchange::Token("exchanged".into()));
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(in_flight(&keys), 0);
        // Every share gone before an answer: nothing is left behind either.
        let lone = exchange(&keys, "fdk_gone");
        tokio::time::sleep(Duration::from_millis(50)).await;
        lone.abort();
        let _ = lone.await;
        assert_eq!(in_flight(&keys), 0);
    }
}
