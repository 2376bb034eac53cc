//! Identity's public keys fetched from its JWKS, for every service that verifies tokens but
//! does not sign them (the gateway and every service besides identity).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::{Claims, TokenError, Verifier};

/// How long a service keeps trying for its first keys before it warns that it has none.
const FIRST_FETCH_PATIENCE: Duration = Duration::from_secs(10);

/// Identity's signing keys, cached. Refreshed periodically (by whoever owns it, with
/// [`RemoteKeys::fetch`]) and when a token names an unknown `kid` — at most once per
/// `min_refresh`, so forged `kid`s cannot hammer identity. When identity cannot be reached
/// the keys already known keep working.
pub struct RemoteKeys {
    verifier: Verifier,
    jwks_url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    last_attempt: Mutex<Option<Instant>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// Keys fetched from `jwks_url`, for tokens of `issuer` and `audience`.
    pub fn new(
        client: reqwest::Client,
        jwks_url: impl Into<String>,
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
    ) -> Self {
        Self {
            verifier: Verifier::new(issuer, audience),
            jwks_url: jwks_url.into(),
            client,
            min_refresh,
            last_attempt: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The verifier holding the keys known so far.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Fetches the key set now. `Err` leaves the known keys in place.
    pub async fn fetch(&self) -> Result<usize, String> {
        let _one = self.refreshing.lock().await;
        self.fetch_now().await
    }

    async fn fetch_now(&self) -> Result<usize, String> {
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some(Instant::now());
        }
        let response = self
            .client
            .get(&self.jwks_url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("cannot reach identity's JWKS: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("identity's JWKS answered {}", response.status()));
        }
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| format!("identity's JWKS is not a key set: {e}"))?;
        if set.keys.is_empty() {
            return Err("identity's JWKS is empty".into());
        }
        self.verifier.replace_keys(&set);
        Ok(set.keys.len())
    }

    /// Refreshes unless the last attempt was under `min_refresh` ago; whether it did. Call
    /// with `refreshing` held.
    async fn refresh_if_due(&self) -> bool {
        let due = self
            .last_attempt
            .lock()
            .map(|l| l.is_none_or(|t| t.elapsed() >= self.min_refresh))
            .unwrap_or(false);
        if !due {
            return false;
        }
        match self.fetch_now().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys already known");
                false
            }
        }
    }

    /// Verifies a token, refreshing the keys once if it names a key not known yet.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_shared(token).await.map(Arc::unwrap_or_clone)
    }

    /// [`verify`](Self::verify) without copying the remembered claims.
    pub async fn verify_shared(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        match self.verifier.verify_shared(token) {
            Err(TokenError::UnknownKey) => {
                // Wait for a fetch in flight (start-up, a periodic refresh) before deciding
                // the key is unknown.
                let _one = self.refreshing.lock().await;
                match self.verifier.verify_shared(token) {
                    // Boxed: the fetch's future is large, and inline it would make every
                    // caller's future (a request's, in the gateway) as large.
                    Err(TokenError::UnknownKey) if Box::pin(self.refresh_if_due()).await => {
                        self.verifier.verify_shared(token)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Fetches the keys now, then again every `every` until the returned task is aborted; a
    /// failed refresh is logged and the known keys keep serving. The first fetch returns at
    /// once if it fails, and is tried again in the background for a while before that is
    /// worth a warning: identity may be starting at the same time (in one process, or in a
    /// rollout). Meanwhile the first token fetches the keys too.
    pub async fn keep_fresh(
        self: std::sync::Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let fetched = self.fetch().await.is_ok();
        tokio::spawn(async move {
            if !fetched {
                retry_first_fetch(|| self.fetch()).await;
            }
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = self.fetch().await {
                    tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys already known");
                }
            }
        })
    }
}

/// Tries a first fetch of the keys that failed again, with growing pauses, until it succeeds;
/// after [`FIRST_FETCH_PATIENCE`] a failure is logged and the trying stops (the first token
/// fetches the keys, and the periodic refresh goes on).
pub async fn retry_first_fetch<F, Fut>(mut fetch: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, String>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        match fetch().await {
            Ok(_) => return,
            Err(e) if started.elapsed() >= FIRST_FETCH_PATIENCE => {
                tracing::warn!(error = %e, "no signing keys yet; they are fetched on the first token");
                return;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn keys_that_identity_serves_only_after_the_start_are_fetched_without_a_token() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A port with nothing on it yet: identity is still starting.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_default();
        let keys = Arc::new(RemoteKeys::new(
            reqwest::Client::new(),
            format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            "fleetdesk",
            "fleetdesk-api",
            Duration::from_secs(5),
        ));
        let refresher = keys.clone().keep_fresh(Duration::from_secs(3600)).await;
        let Ok(key) = SigningKey::generate() else {
            panic!("no key generated");
        };
        assert!(!keys.verifier().knows(key.kid()), "nothing to fetch yet");

        tokio::time::sleep(Duration::from_millis(300)).await;
        let set = serde_json::json!({ "keys": [key.public_jwk()] }).to_string();
        let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await else {
            panic!("port {port} taken meanwhile");
        };
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{set}",
                    set.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        // Tried again in the background (pauses of 0.1, 0.2, 0.4 … s), with no token asking.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !keys.verifier().knows(key.kid()) {
            assert!(tokio::time::Instant::now() < deadline, "keys never fetched");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        refresher.abort();
    }
}
