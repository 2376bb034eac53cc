//! Identity's integration tests: the real app over HTTP, on a fresh database per test
//! (SQLite by default; PostgreSQL when FLEETDESK_TEST_DATABASE_URL names a server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod audit;
mod auth;
mod helpers;
mod roles;
mod routes;
mod sessions;
mod tokens;
mod users;
