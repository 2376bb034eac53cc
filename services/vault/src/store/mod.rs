//! Diesel queries of the vault database. Every function takes `&mut DbConn` and returns
//! `QueryResult`, so handlers compose them inside one transaction.

pub mod companies;
pub mod credentials;
pub mod schema;
pub mod settings;
pub mod types;

pub use fleetdesk_store::DbConn;
pub use fleetdesk_store::text::contains_pattern;

/// The lower-cased form names are compared and sorted by.
pub fn lower(s: &str) -> String {
    s.to_lowercase()
}
