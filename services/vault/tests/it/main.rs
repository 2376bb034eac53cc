//! The vault's integration tests: the real app over HTTP, on a fresh database per test
//! (SQLite by default; PostgreSQL when FLEETDESK_TEST_DATABASE_URL names a server), with
//! tokens from a real JWKS server and companies fed through the bus as tickets feeds them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod credentials;
mod encryption;
mod helpers;
mod reveal;
mod rotation;
mod routes;
mod types;
