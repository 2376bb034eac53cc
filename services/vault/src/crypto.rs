//! Envelope encryption, three layers deep:
//!
//! - the **root key** (`FLEETDESK_VAULT_MASTER_KEY`, 32 bytes) never encrypts data: it wraps
//!   the key-encryption keys and seals a check value that proves, at start, that it is the key
//!   this vault was created with;
//! - **KEKs** (key-encryption keys) are random, versioned, stored wrapped by the root key;
//!   rotation adds a version and rewraps every data key under it;
//! - a **data key** per credential, random, stored wrapped by a KEK;
//! - every **field value** is sealed under its credential's data key.
//!
//! Everything is AES-256-GCM with a fresh 96-bit nonce per seal, and associated data that binds
//! the ciphertext to where it belongs (tenant, credential, field; the KEK version for a wrapped
//! KEK), so a ciphertext moved elsewhere fails its tag. Stored forms are text:
//! `v1:<base64(nonce ‖ ciphertext ‖ tag)>` for values, KEKs and the check value, and
//! `v1:k<KEK version>:<…>` for wrapped data keys. Key material lives in [`Zeroizing`] buffers.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

/// The format version every stored ciphertext starts with.
pub const FORMAT: &str = "v1";
const NONCE_LEN: usize = 12;
const CHECK_PLAINTEXT: &[u8] = b"fleetdesk vault check value";

/// Why a ciphertext could not be opened. Never carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The text is not a ciphertext of a known format.
    #[error("malformed ciphertext")]
    Malformed,
    /// The tag did not verify: wrong key, or the ciphertext was altered or moved.
    #[error("ciphertext failed its integrity check")]
    Integrity,
    /// The data key is wrapped by a KEK version this vault does not hold (or holds no more).
    #[error("KEK version {0} is not available")]
    UnknownKek(i32),
}

/// 32 bytes of key material, wiped when dropped.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(…)")
    }
}

impl KeyBytes {
    /// Fresh random key material from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        Self(k)
    }

    /// From exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// From base64 (standard alphabet, padding optional) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            B64.decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| "is not base64".to_owned())?,
        );
        Self::from_slice(&decoded)
            .ok_or_else(|| format!("decodes to {} bytes, not 32", decoded.len()))
    }

    /// Base64 of the key (to write a generated key file).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.as_ref()))
    }

    fn cipher(&self) -> Aes256Gcm {
        // A 32-byte slice is always a valid AES-256 key.
        Aes256Gcm::new((&*self.0).into())
    }

    /// Seals `plaintext` with `aad`: nonce ‖ ciphertext ‖ tag.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // AES-GCM fails to encrypt only for messages over 64 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        self.cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Integrity)
    }

    /// `v1:<base64>` of a seal.
    fn seal_text(&self, aad: &[u8], plaintext: &[u8]) -> String {
        format!("{FORMAT}:{}", B64.encode(self.seal(aad, plaintext)))
    }

    fn open_text(&self, aad: &[u8], text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let body = text
            .strip_prefix(FORMAT)
            .and_then(|t| t.strip_prefix(':'))
            .ok_or(CryptoError::Malformed)?;
        let blob = B64.decode(body).map_err(|_| CryptoError::Malformed)?;
        self.open(aad, &blob)
    }
}

/// The root key: wraps KEKs and seals the check value.
#[derive(Debug, Clone)]
pub struct RootKey(KeyBytes);

impl RootKey {
    /// Wraps key material.
    pub fn new(key: KeyBytes) -> Self {
        Self(key)
    }

    /// The check value stored at creation; [`RootKey::verify`] proves a key matches it.
    pub fn check_value(&self) -> String {
        self.0.seal_text(b"fleetdesk-vault/check", CHECK_PLAINTEXT)
    }

    /// Whether this is the key the check value was sealed with.
    pub fn verify(&self, check_value: &str) -> bool {
        matches!(self.0.open_text(b"fleetdesk-vault/check", check_value),
            Ok(p) if p.as_slice() == CHECK_PLAINTEXT)
    }

    /// Wraps KEK `version`.
    pub fn wrap_kek(&self, version: i32, kek: &KeyBytes) -> String {
        self.0
            .seal_text(kek_aad(version).as_bytes(), kek.0.as_ref())
    }

    /// Unwraps KEK `version`.
    pub fn unwrap_kek(&self, version: i32, wrapped: &str) -> Result<KeyBytes, CryptoError> {
        let raw = self.0.open_text(kek_aad(version).as_bytes(), wrapped)?;
        KeyBytes::from_slice(&raw).ok_or(CryptoError::Malformed)
    }
}

fn kek_aad(version: i32) -> String {
    format!("fleetdesk-vault/kek/{version}")
}

fn data_key_aad(tenant_id: &str, credential_id: &str) -> String {
    format!("fleetdesk-vault/data-key/{tenant_id}/{credential_id}")
}

fn value_aad(tenant_id: &str, credential_id: &str, field_id: &str) -> String {
    format!("fleetdesk-vault/value/{tenant_id}/{credential_id}/{field_id}")
}

/// Wraps a credential's data key under KEK `version`: `v1:k<version>:<base64>`.
pub fn wrap_data_key(
    kek: &KeyBytes,
    version: i32,
    tenant_id: &str,
    credential_id: &str,
    data_key: &KeyBytes,
) -> String {
    let sealed = kek.seal(
        data_key_aad(tenant_id, credential_id).as_bytes(),
        data_key.0.as_ref(),
    );
    format!("{FORMAT}:k{version}:{}", B64.encode(sealed))
}

/// The KEK version a wrapped data key names.
pub fn wrapped_kek_version(wrapped: &str) -> Result<i32, CryptoError> {
    let rest = wrapped
        .strip_prefix(FORMAT)
        .and_then(|t| t.strip_prefix(":k"))
        .ok_or(CryptoError::Malformed)?;
    let (version, _) = rest.split_once(':').ok_or(CryptoError::Malformed)?;
    version.parse().map_err(|_| CryptoError::Malformed)
}

/// Unwraps a data key with the KEK it names (`kek` answers the KEK of a version).
pub fn unwrap_data_key(
    kek: &KeyBytes,
    tenant_id: &str,
    credential_id: &str,
    wrapped: &str,
) -> Result<KeyBytes, CryptoError> {
    let version = wrapped_kek_version(wrapped)?;
    let body = wrapped
        .strip_prefix(&format!("{FORMAT}:k{version}:"))
        .ok_or(CryptoError::Malformed)?;
    let blob = B64.decode(body).map_err(|_| CryptoError::Malformed)?;
    let raw = kek.open(data_key_aad(tenant_id, credential_id).as_bytes(), &blob)?;
    KeyBytes::from_slice(&raw).ok_or(CryptoError::Malformed)
}

/// Seals one field value under its credential's data key.
pub fn seal_value(
    data_key: &KeyBytes,
    tenant_id: &str,
    credential_id: &str,
    field_id: &str,
    value: &str,
) -> String {
    data_key.seal_text(
        value_aad(tenant_id, credential_id, field_id).as_bytes(),
        value.as_bytes(),
    )
}

/// Opens one field value; a ciphertext of another field or credential fails its tag.
pub fn open_value(
    data_key: &KeyBytes,
    tenant_id: &str,
    credential_id: &str,
    field_id: &str,
    sealed: &str,
) -> Result<Zeroizing<String>, CryptoError> {
    let raw = data_key.open_text(
        value_aad(tenant_id, credential_id, field_id).as_bytes(),
        sealed,
    )?;
    String::from_utf8(raw.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_where_they_were_sealed() {
        let dk = KeyBytes::generate();
        let sealed = seal_value(&dk, "t1", "c1", "password", "hunter2");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            open_value(&dk, "t1", "c1", "password", &sealed)
                .unwrap()
                .as_str(),
            "hunter2"
        );
        for (t, c, f) in [
            ("t2", "c1", "password"),
            ("t1", "c2", "password"),
            ("t1", "c1", "pin"),
        ] {
            assert_eq!(
                open_value(&dk, t, c, f, &sealed).unwrap_err(),
                CryptoError::Integrity
            );
        }
        let other = KeyBytes::generate();
        assert_eq!(
            open_value(&other, "t1", "c1", "password", &sealed).unwrap_err(),
            CryptoError::Integrity
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            open_value(&dk, "t1", "c1", "password", &tampered).unwrap_err(),
            CryptoError::Integrity
        );
        assert_eq!(
            open_value(&dk, "t1", "c1", "password", "v2:abc").unwrap_err(),
            CryptoError::Malformed
        );
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, seal_value(&dk, "t1", "c1", "password", "hunter2"));
    }

    #[test]
    fn data_keys_carry_their_kek_version_and_bind_to_the_credential() {
        let kek = KeyBytes::generate();
        let dk = KeyBytes::generate();
        let wrapped = wrap_data_key(&kek, 7, "t1", "c1", &dk);
        assert!(wrapped.starts_with("v1:k7:"));
        assert_eq!(wrapped_kek_version(&wrapped).unwrap(), 7);
        let back = unwrap_data_key(&kek, "t1", "c1", &wrapped).unwrap();
        assert_eq!(back.0.as_ref(), dk.0.as_ref());
        assert_eq!(
            unwrap_data_key(&kek, "t1", "c2", &wrapped).unwrap_err(),
            CryptoError::Integrity
        );
    }

    #[test]
    fn the_check_value_tells_the_right_root_key_from_a_wrong_one() {
        let root = RootKey::new(KeyBytes::generate());
        let check = root.check_value();
        assert!(root.verify(&check));
        assert!(!RootKey::new(KeyBytes::generate()).verify(&check));
        let kek = KeyBytes::generate();
        let wrapped = root.wrap_kek(2, &kek);
        assert!(root.unwrap_kek(2, &wrapped).is_ok());
        assert_eq!(
            root.unwrap_kek(3, &wrapped).unwrap_err(),
            CryptoError::Integrity
        );
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_only() {
        let k = KeyBytes::generate();
        assert!(KeyBytes::from_base64(&k.to_base64()).is_ok());
        assert!(KeyBytes::from_base64("not base64!").is_err());
        assert!(
            KeyBytes::from_base64(&B64.encode([1u8; 16]))
                .unwrap_err()
                .contains("16 bytes")
        );
    }
}
