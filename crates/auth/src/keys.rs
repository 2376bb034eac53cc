//! Ed25519 signing keys and their public JWK form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;

use crate::claims::Claims;

/// The fixed PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the DER header that
/// precedes the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The stored seed is not 32 base64 bytes.
    #[error("an Ed25519 seed must be 32 bytes of base64")]
    BadSeed,
    /// The signing library refused the key or the claims.
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// An Ed25519 key that signs access tokens, identified by its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    seed: [u8; 32],
    encoding: EncodingKey,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is the private key: never print it.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key; its `kid` is the RFC 7638 thumbprint of its public key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// Rebuilds a key from its base64 seed, as stored.
    pub fn from_seed_base64(seed: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(seed).map_err(|_| KeyError::BadSeed)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadSeed)?;
        Self::from_seed(seed)
    }

    fn from_seed(seed: [u8; 32]) -> Result<Self, KeyError> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(&seed);
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        Ok(Self {
            kid,
            seed,
            encoding,
            jwk,
        })
    }

    /// The key id carried in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The seed as base64, for storage. This is secret material.
    pub fn seed_base64(&self) -> String {
        STANDARD.encode(self.seed)
    }

    /// The public half, as published in the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs the claims into a compact JWT with `alg: EdDSA` and this key's `kid`.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_storage_as_its_seed() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_seed_base64(&key.seed_base64()).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.public_jwk(), again.public_jwk());
    }

    #[test]
    fn a_seed_of_the_wrong_length_is_refused() {
        assert!(SigningKey::from_seed_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(SigningKey::from_seed_base64("not base64!").is_err());
    }
}
