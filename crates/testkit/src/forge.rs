//! Tokens a verifier must refuse, built the way an attacker would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fleetdesk_auth::Claims;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn segment(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// `alg: none`, no signature.
pub fn alg_none(claims: &Claims, kid: &str) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        segment(&header),
        segment(&serde_json::to_value(claims).unwrap_or_default())
    )
}

/// HS256 with the public key as the HMAC secret (the classic algorithm-confusion attack).
pub fn hs256_with_public_key(claims: &Claims, kid: &str, public_x: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap_or_default()
}

/// The token with its payload replaced by `claims` and the original signature kept.
pub fn tampered(token: &str, claims: &Claims) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if parts.len() == 3 {
        parts[1] = segment(&serde_json::to_value(claims).unwrap_or_default());
    }
    parts.join(".")
}
