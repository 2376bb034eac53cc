//! Password policy and Argon2id hashing.
//!
//! Parameters are OWASP's recommendation for Argon2id: 19 MiB of memory, 2 passes, 1 lane.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted (bounds hashing work per request).
pub const MAX_LENGTH: usize = 128;

/// Checks a new password against the policy.
pub fn check_policy(password: &str, email: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("must be at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("must not be your email address".into());
    }
    if password.chars().all(|c| password.starts_with(c)) {
        return Err("must not be one character repeated".into());
    }
    Ok(())
}

/// Hashes and verifies passwords with Argon2id.
#[derive(Debug, Clone, Default)]
pub struct PasswordHasher {
    params: Params,
}

impl PasswordHasher {
    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| format!("hashing failed: {e}"))
    }

    /// Whether `password` matches the stored PHC string (with that string's parameters).
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        PasswordHash::new(stored)
            .map(|parsed| {
                self.argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    /// A hash of a random password, to spend the same time on unknown accounts.
    pub fn decoy(&self) -> String {
        self.hash("decoy password never used").unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::default();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify("correct horse battery", &hash));
        assert!(!hasher.verify("correct horse batterx", &hash));
        assert!(!hasher.verify("anything", "not a hash"));
    }

    #[test]
    fn the_policy_refuses_short_long_and_trivial_passwords() {
        assert!(check_policy("short", "a@b.co").is_err());
        assert!(check_policy(&"ab".repeat(65), "a@b.co").is_err());
        assert!(check_policy("aaaaaaaaaaaa", "a@b.co").is_err());
        assert!(check_policy("ada@example.com", "ada@example.com").is_err());
        assert!(check_policy("a long enough phrase", "a@b.co").is_ok());
    }
}
