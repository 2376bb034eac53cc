//! Tickets' integration tests: the real app over HTTP, on a fresh database per test (SQLite
//! by default; PostgreSQL when FLEETDESK_TEST_DATABASE_URL names a server), with tokens from
//! a real JWKS server and users fed through the bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod companies;
mod helpers;
mod products;
mod routes;
mod sla;
mod tickets;
mod triage;
mod users;
mod workflow;
