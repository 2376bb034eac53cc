//! [`Planned`]: a query PostgreSQL plans with its own values every time it runs.
//!
//! Connections keep PostgreSQL's default plan cache mode, in which a prepared statement run
//! often enough gets one generic plan for all values: planning each insert anew cost an
//! eighth of the CPU of a ticket create. A generic plan cannot know that one tenant has a
//! million tickets and another ten, or that the newest tickets are mostly `new`, so the
//! queries whose best plan depends on their values (filtered list pages, statistics) are
//! sent unprepared, which PostgreSQL always plans with the values at hand. (A tenant's
//! whole list, unfiltered, has one best plan whatever the tenant: tickets keeps it prepared.)

use diesel::QueryResult;
use diesel::query_builder::{AstPass, QueryFragment};

use crate::conn::MultiBackend;

/// `Q`, never prepared: planned with its values on every run.
#[derive(Debug, Clone, Copy)]
pub struct Planned<Q>(pub Q);

query_wrapper!(Planned);

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for Planned<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        self.0.walk_ast(out)
    }
}
