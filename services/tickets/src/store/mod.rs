//! Diesel queries of the tickets database. Every function takes `&mut DbConn` and returns
//! `QueryResult`, so handlers compose them inside one transaction.

pub mod companies;
pub mod idempotency;
pub mod products;
pub mod schema;
pub mod search;
pub mod tickets;
pub mod users;

pub use fleetdesk_store::DbConn;
pub use fleetdesk_store::text::{contains_pattern, list_from_json, list_to_json, lower};
