//! [`Prepared`]: a query kept as a prepared statement although diesel would not keep it.
//!
//! Diesel prepares and keeps a statement only when it can prove its SQL never depends on its
//! values, and it gives up on every `UPDATE`, every `sql_query` and every insert with an
//! optional column left to its default. Those are parsed and planned by PostgreSQL on every
//! run: 65 µs of a ticket create's write, 260 µs of each outbox claim. Wrapped here, such a
//! query is kept by its SQL text like any other, so it is prepared once per connection.
//! PostgreSQL may then settle on a generic plan, made for the tables as they were and kept
//! until they are next analysed; a statement on a table that grows from empty says
//! `SET LOCAL plan_cache_mode = force_custom_plan` first, as the outbox claim does.
//!
//! Diesel asks the wrapper only when it is handed the query by value: `load`, `get_result`,
//! `get_results`. `execute` takes a reference, and diesel's impl for references
//! asks the inner query instead, so a write wrapped here must return something (`RETURNING`)
//! and be loaded. An insert needs no wrapper: `treat_none_as_default_value = false` on its
//! `Insertable` binds `NULL` for `None`, and the statement is then kept as it is.
//!
//! Only for queries whose SQL takes few shapes (a fixed statement, or one shape per count of a
//! small, bounded list): every distinct text is kept for the connection's life.
//! [`crate::Planned`] is the opposite: queries whose best plan depends on their values.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment};

/// `Q`, kept as a prepared statement by its SQL text.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

query_wrapper!(Prepared);

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// `Q` kept prepared as [`Prepared`] when the flag is set, and planned with its values on
/// every run as [`crate::Planned`] when it is not: for a query whose plan depends on its
/// values only in some of the shapes it takes.
#[derive(Debug, Clone, Copy)]
pub struct PreparedIf<Q>(pub bool, pub Q);

query_wrapper!(PreparedIf);

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for PreparedIf<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.0 {
            out.unsafe_to_cache_prepared();
        }
        self.1.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(self.0)
    }
}
