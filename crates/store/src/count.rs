//! `SELECT COUNT(*) FROM (<query> LIMIT n) AS capped`: how many rows a query has, counted no
//! further than its limit, in one row. Loading the capped rows to count them instead costs a
//! row sent, parsed and dropped per match (a thousand per list page).

use diesel::QueryResult;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::BigInt;

use crate::conn::MultiBackend;

/// A query wrapped to count its rows; build with [`CountRows::of`], run with `get_result`.
#[derive(Debug, Clone, Copy)]
pub struct CountRows<Q>(Q);

impl<Q> CountRows<Q> {
    /// Counts the rows of `query` (which should carry its own `LIMIT`).
    pub fn of(query: Q) -> Self {
        Self(query)
    }
}

/// Makes `$name<Q>`, a hand-written query whose SQL comes from its own `QueryFragment` impl,
/// runnable: diesel's `Query` with the given row type, `QueryId` (not cached by type: its SQL
/// depends on the wrapped query) and `RunQueryDsl`.
#[macro_export]
macro_rules! query_wrapper {
    ($name:ident => $sql_type:ty) => {
        impl<Q> $crate::diesel::query_builder::Query for $name<Q> {
            type SqlType = $sql_type;
        }

        impl<Q> $crate::diesel::query_builder::QueryId for $name<Q> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl<Q, C> $crate::diesel::RunQueryDsl<C> for $name<Q> {}
    };
}

query_wrapper!(CountRows => BigInt);

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for CountRows<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS capped");
        Ok(())
    }
}
