//! Diesel queries of the identity database. Every function takes `&mut DbConn` and returns
//! `QueryResult`, so handlers compose them inside one transaction.

pub mod api_keys;
pub mod audit;
pub mod invites;
pub mod password_resets;
pub mod refresh_tokens;
pub mod roles;
pub mod schema;
pub mod signing_keys;
pub mod tenants;
pub mod throttles;
pub mod users;

pub use fleetdesk_store::DbConn;

pub use fleetdesk_store::text::{contains_pattern, list_from_json, list_to_json, lower};
