//! [`Together`]: several writes sent to PostgreSQL as one statement.
//!
//! Each statement is a round trip and a trip through PostgreSQL's parser, planner and executor
//! set-up. Writes that do not read each other's results (a new row and the rows that hang off
//! it) can go as one: `WITH w0 AS (<first>), w1 AS (<second>) <last>`. PostgreSQL runs every
//! part, foreign keys are checked at the end of the statement, and all of it commits or none.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;

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

/// Writes whose SQL text is the same on every run, returning one `bigint` (`RETURNING <column>`
/// of the last write), named by the type `K`.
///
/// Diesel finds the prepared statement of a query without a static id by its SQL text, so on
/// every run it builds the text (quoting each column name) and walks every part to see whether
/// it may keep it: for a ticket create's six inserts, 125,000 of its 740,000 instructions. Named
/// by `K`, the statement is found by type, and the text is built once per connection.
///
/// The caller answers for the text never varying with the values: each `K` names one shape
/// (a fixed list of writes, each binding every column; a list of values goes as one array).
pub struct Fixed<'a, K> {
    writes: Together<'a>,
    returning: &'static str,
    shape: PhantomData<K>,
}

impl<'a, K> Fixed<'a, K> {
    /// `writes`, the last returning its `returning` column.
    pub fn new(writes: Together<'a>, returning: &'static str) -> Self {
        Self {
            writes,
            returning,
            shape: PhantomData,
        }
    }
}

impl<K: 'static> QueryId for Fixed<'_, K> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K> Query for Fixed<'_, K> {
    type SqlType = BigInt;
}

impl<K> QueryFragment<Pg> for Fixed<'_, K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.writes.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        out.push_sql(self.returning);
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<K> diesel::RunQueryDsl<PgConnection> for Fixed<'_, K> {}
