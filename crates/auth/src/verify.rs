//! Verifying access tokens: EdDSA only, issuer and audience pinned, keys by `kid`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::claims::Claims;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused. The text is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64 segments, bad JSON, or a bad signature.
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    /// `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Any algorithm other than EdDSA, including `none` and HMAC.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// No key with the token's `kid` is known.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// Wrong issuer or audience.
    #[error("the token was not issued for this API")]
    WrongAudience,
}

/// How many verified tokens a [`Verifier`] remembers.
const REMEMBERED: usize = 10_000;

/// Verifies Fleetdesk access tokens against a set of public keys.
///
/// The key set is replaceable at run time (a JWKS refresh, or identity adding a key).
///
/// Tokens that verified are remembered, with their claims, until they expire or the keys are
/// replaced or added to (every JWKS fetch), so a key that is gone takes its tokens with it: a
/// client sends the same token with every request for its lifetime, and checking an Ed25519
/// signature was about a tenth of a service's CPU per list request. A remembered token is the
/// same bytes as one whose signature verified, so only its times are checked again.
pub struct Verifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    validation: Validation,
    // Hashed with foldhash, not SipHash: SipHashing the whole token is in every request's
    // profile in the gateway, and only tokens whose signature verified are ever stored, so a
    // client cannot choose the keys (a lookup of a forged token costs one probe).
    verified: Mutex<HashMap<String, Arc<Claims>, foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens issued by `issuer` for `audience`, with no keys yet.
    pub fn new(issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self {
            keys: RwLock::new(HashMap::new()),
            validation,
            verified: Mutex::new(HashMap::default()),
        }
    }

    /// Forgets the tokens verified so far: a key that is gone must not keep its tokens
    /// working.
    fn forget_verified(&self) {
        if let Ok(mut v) = self.verified.lock() {
            v.clear();
        }
    }

    /// Replaces the known keys with the EdDSA keys of a JWKS; others are ignored.
    pub fn replace_keys(&self, set: &JwkSet) {
        let fresh: HashMap<_, _> = set.keys.iter().filter_map(decoding_key).collect();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        self.forget_verified();
    }

    /// Adds or replaces one key.
    pub fn add_key(&self, jwk: &Jwk) {
        if let (Some((kid, key)), Ok(mut keys)) = (decoding_key(jwk), self.keys.write()) {
            keys.insert(kid, key);
        }
        self.forget_verified();
    }

    /// Whether a key with this id is known.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys
            .read()
            .map(|k| k.contains_key(kid))
            .unwrap_or(false)
    }

    /// Checks the token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_shared(token).map(Arc::unwrap_or_clone)
    }

    /// Checks the token and returns its claims as remembered, without copying them (a
    /// caller that only reads a field or two, such as the gateway).
    pub fn verify_shared(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|v| v.get(token).cloned());
        if let Some(claims) = known {
            return in_time(&claims, now).map(|()| claims);
        }
        let claims = Arc::new(self.verify_signature(token)?);
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= REMEMBERED {
                v.retain(|_, c| in_time(c, now).is_ok());
                if v.len() >= REMEMBERED {
                    v.clear();
                }
            }
            v.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` and unknown algorithms fail while parsing the header.
            ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
            _ => TokenError::Invalid,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = {
            let keys = self.keys.read().map_err(|_| TokenError::UnknownKey)?;
            keys.get(&kid).cloned().ok_or(TokenError::UnknownKey)?
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                _ => TokenError::Invalid,
            })
    }
}

/// `exp` and `nbf` against `now`, with the leeway `jsonwebtoken` applies.
fn in_time(claims: &Claims, now: i64) -> Result<(), TokenError> {
    let leeway = LEEWAY_SECONDS as i64;
    if claims.exp < now - leeway {
        Err(TokenError::Expired)
    } else if claims.nbf > now + leeway {
        Err(TokenError::NotYetValid)
    } else {
        Ok(())
    }
}

fn decoding_key(jwk: &Jwk) -> Option<(String, DecodingKey)> {
    use jsonwebtoken::jwk::AlgorithmParameters;
    if !matches!(jwk.algorithm, AlgorithmParameters::OctetKeyPair(_)) {
        return None;
    }
    let kid = jwk.common.key_id.clone()?;
    DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::claims::TokenType;
    use crate::keys::SigningKey;

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "fleetdesk".into(),
            aud: "fleetdesk-api".into(),
            sub: "u1".into(),
            tid: "t1".into(),
            roles: vec!["admin".into()],
            perms: vec!["*".into()],
            exp: now + exp_offset,
            iat: now,
            nbf: now,
            jti: "j1".into(),
            typ: TokenType::User,
        }
    }

    fn verifier_for(key: &SigningKey) -> Verifier {
        let v = Verifier::new("fleetdesk", "fleetdesk-api");
        v.add_key(key.public_jwk());
        v
    }

    #[test]
    fn a_token_signed_by_a_known_key_verifies() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign(&claims(60)).unwrap();
        assert_eq!(
            verifier_for(&key).verify(&token).unwrap(),
            claims_of(&token)
        );
    }

    fn claims_of(token: &str) -> Claims {
        let body = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
    }

    #[test]
    fn a_remembered_token_still_expires_and_goes_with_its_key() {
        let key = SigningKey::generate().unwrap();
        let v = verifier_for(&key);
        let token = key.sign(&claims(60)).unwrap();
        assert!(v.verify(&token).is_ok());
        assert!(v.verified.lock().unwrap().contains_key(&token));
        assert!(v.verify(&token).is_ok(), "from memory");
        let c = claims_of(&token);
        let leeway = LEEWAY_SECONDS as i64;
        assert_eq!(in_time(&c, c.exp + leeway), Ok(()));
        assert_eq!(in_time(&c, c.exp + leeway + 1), Err(TokenError::Expired));
        assert_eq!(
            in_time(&c, c.nbf - leeway - 1),
            Err(TokenError::NotYetValid)
        );
        // The key set changes without the key: its tokens stop working at once.
        let other = SigningKey::generate().unwrap();
        v.replace_keys(&JwkSet {
            keys: vec![other.public_jwk().clone()],
        });
        assert_eq!(v.verify(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_leeway() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign(&claims(-(LEEWAY_SECONDS as i64) - 5)).unwrap();
        assert_eq!(verifier_for(&key).verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let key = SigningKey::generate().unwrap();
        let v = verifier_for(&key);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(60)).unwrap());
        for alg in ["none", "HS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#,
                key.kid()
            ));
            let token = format!("{header}.{body}.");
            assert!(matches!(
                v.verify(&token),
                Err(TokenError::Algorithm | TokenError::Invalid)
            ));
        }
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign(&claims(60)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(60);
        forged.perms = vec!["*".into(), "more".into()];
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            verifier_for(&key).verify(&parts.join(".")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn another_keys_token_and_a_wrong_audience_are_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let v = verifier_for(&key);
        assert_eq!(
            v.verify(&other.sign(&claims(60)).unwrap()),
            Err(TokenError::UnknownKey)
        );
        let mut c = claims(60);
        c.aud = "elsewhere".into();
        assert_eq!(
            v.verify(&key.sign(&c).unwrap()),
            Err(TokenError::WrongAudience)
        );
    }
}
