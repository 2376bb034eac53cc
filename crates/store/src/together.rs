//! [`Together`]: several writes sent to PostgreSQL as one statement.
//!
//! Each statement is a round trip and a trip through PostgreSQL's parser, planner and executor
//! set-up. Writes that do not read each other's results (a new row and the rows that hang off
//! it) can go as one: `WITH w0 AS (<first>), w1 AS (<second>) <last>`. PostgreSQL runs every
//! part, foreign keys are checked at the end of the statement, and all of it commits or none.

use diesel::QueryResult;
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};

/// Writes (inserts, updates, deletes without `RETURNING`) to run as one statement.
#[derive(Default)]
pub struct Together<'a>(Vec<Box<dyn QueryFragment<Pg> + 'a>>);

impl<'a> Together<'a> {
    /// No writes yet.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds a write.
    pub fn and(mut self, write: impl QueryFragment<Pg> + 'a) -> Self {
        self.0.push(Box::new(write));
        self
    }
}

impl QueryId for Together<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Together<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Some((last, first)) = self.0.split_last() else {
            return Ok(());
        };
        for (i, write) in first.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("w{i} AS ("));
            write.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if !first.is_empty() {
            out.push_sql(" ");
        }
        last.walk_ast(out.reborrow())
    }
}

impl diesel::RunQueryDsl<PgConnection> for Together<'_> {}
