//! Identity's public keys fetched from its JWKS, for every service that verifies tokens but
//! does not sign them (the gateway and every service besides identity).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::{Claims, TokenError, Verifier};

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

    /// Fetches the keys now (a failure is logged: the first token fetches them again), then
    /// again every `every` until the returned task is aborted; a failed refresh is logged and
    /// the known keys keep serving.
    pub async fn keep_fresh(
        self: std::sync::Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        if let Err(e) = self.fetch().await {
            tracing::warn!(error = %e, "no signing keys yet; they are fetched on the first token");
        }
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = self.fetch().await {
                    tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys already known");
                }
            }
        })
    }
}
