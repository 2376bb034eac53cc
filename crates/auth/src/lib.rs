//! Tokens and permissions shared by every Fleetdesk service.
//!
//! - [`claims`]: what an access token says about its bearer.
//! - [`keys`]: Ed25519 signing keys (identity signs; everyone else only verifies).
//! - [`jwks`]: identity's public keys fetched from its JWKS, refreshed on an unknown `kid`.
//! - [`verify`]: a verifier pinned to EdDSA that checks issuer, audience and lifetimes.
//! - [`permissions`]: the catalogue of permission nodes and their wildcard matching.

pub mod claims;
pub mod jwks;
pub mod keys;
pub mod permissions;
pub mod verify;

pub use claims::{Claims, TokenType};
pub use jwks::RemoteKeys;
pub use keys::SigningKey;
pub use permissions::{Grants, Requirement, perm};
pub use verify::{TokenError, Verifier};
