//! Database access shared by every Fleetdesk service.
//!
//! One connection type, [`DbConn`], covers PostgreSQL and SQLite (diesel `MultiConnection`).
//! Store functions are plain `fn(&mut DbConn, …) -> QueryResult<T>` so they compose inside a
//! transaction; handlers reach them only through [`Db::run`], which takes a pooled connection
//! on the blocking pool inside the caller's tracing span.

/// The impls a query wrapper (`Wrapper<Q>`, `Q` its last field) shares with the others: it
/// is a query of `Q`'s type, run like any other, named by no static id (so diesel asks the
/// wrapper's `is_safe_to_cache_prepared` whether to keep it). Each wrapper writes its own
/// `QueryFragment`.
macro_rules! query_wrapper {
    ($wrapper:ident) => {
        impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for $wrapper<Q> {
            type SqlType = Q::SqlType;
        }

        impl<Q> diesel::query_builder::QueryId for $wrapper<Q> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl<Q, C> diesel::RunQueryDsl<C> for $wrapper<Q> {}
    };
}

pub mod clock;
mod conn;
pub mod count;
mod error;
pub mod gather;
mod migrate;
pub mod outbox;
pub mod planned;
pub mod platform;
mod pool;
pub mod prepared;
pub mod processed;
pub mod text;
mod together;
mod unnest;

pub use clock::{Clock, ManualClock, SystemClock};
pub use conn::{Backend, DbConn, MultiBackend, one_statement, snapshot, transaction};
pub use count::CountRows;
pub use error::StoreError;
pub use gather::Gather;
pub use migrate::{Migrations, ensure_database};
pub use planned::Planned;
pub use pool::{Db, PoolOptions, default_max_reads};
pub use prepared::{Prepared, PreparedIf};
pub use together::{Fixed, Together};
pub use unnest::Unnest;

/// Runs `$body` with `$c` bound to the concrete connection under a [`DbConn`], for a query
/// written for any backend (not boxed for [`MultiBackend`]) on a hot path.
///
/// Through the multi-connection, every pass diesel makes over a query (its binds, whether it
/// may be kept, its text) renders the whole SQL again, and its prepared statement is found by
/// that text; on the concrete connection a query with a static id is found by type and its
/// text built once per connection. Identity's audit row, written once for every event in the
/// system, cost 51,000 instructions through the multi-connection.
#[macro_export]
macro_rules! concrete {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConn::Pg($c) => $body,
            $crate::DbConn::Sqlite($c) => $body,
        }
    };
}

/// Diesel, re-exported so services use the same version.
pub use diesel;
/// Embedded migrations, re-exported for `embed_migrations!`.
pub use diesel_migrations;

/// A new UUID v7 as text: time-ordered ids that index well on both backends.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
