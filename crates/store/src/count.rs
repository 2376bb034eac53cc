//! `SELECT COUNT(*) FROM (<query> LIMIT n) AS capped`: how many rows a query has, counted no
//! further than its limit, in one row. Loading the capped rows to count them instead costs a
//! row sent, parsed and dropped per match (a thousand per list page).

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::{QueryResult, RunQueryDsl};

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

impl<Q> Query for CountRows<Q> {
    type SqlType = BigInt;
}

impl<Q> QueryId for CountRows<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, C> RunQueryDsl<C> for CountRows<Q> {}

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for CountRows<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS capped");
        Ok(())
    }
}
