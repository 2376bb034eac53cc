//! Full-text search over tickets' titles, descriptions and comments: PostgreSQL `tsvector`
//! columns with GIN indexes, or SQLite FTS5 tables kept by triggers. The one place where the
//! two backends need different SQL for it.

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, Bool, Text};
use fleetdesk_store::{Backend, DbConn, MultiBackend};

use super::schema::{ticket_comments, tickets};

/// A search condition on `tickets`, for a boxed query's `filter`.
pub type Condition = Box<dyn BoxableExpression<tickets::table, MultiBackend, SqlType = Bool>>;

/// The words of a query, for FTS5: each quoted (so no operator can be injected), all
/// required. `None` when the text has no word at all.
pub fn fts5_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Tickets whose title or description, or one of whose comments (internal ones only when
/// `internal` is allowed), contain every word of `q`. The comment subquery names the tenant
/// itself rather than correlating with the outer row, so PostgreSQL runs it once (hashed)
/// instead of once per ticket.
pub fn matching(backend: Backend, tenant_id: &str, q: &str, internal: bool) -> Option<Condition> {
    let visibility = if internal {
        ""
    } else {
        " AND visibility = 'public'"
    };
    match backend {
        Backend::Postgres => {
            fts5_query(q)?; // the same "has a word" rule on both backends
            Some(Box::new(
                sql::<Bool>("(tickets.search @@ plainto_tsquery('simple', ")
                    .bind::<Text, _>(q.to_owned())
                    .sql(") OR tickets.id IN (SELECT ticket_id FROM ticket_comments WHERE ticket_comments.tenant_id = ")
                    .bind::<Text, _>(tenant_id.to_owned())
                    .sql(&format!(
                        "{visibility} AND ticket_comments.search @@ plainto_tsquery('simple', "
                    ))
                    .bind::<Text, _>(q.to_owned())
                    .sql(")))"),
            ))
        }
        Backend::Sqlite => {
            let m = fts5_query(q)?;
            Some(Box::new(
                sql::<Bool>(
                    "(tickets.rowid IN (SELECT rowid FROM ticket_search WHERE ticket_search MATCH ",
                )
                .bind::<Text, _>(m.clone())
                .sql(
                    ") OR tickets.id IN (SELECT ticket_id FROM comment_search \
                     WHERE comment_search MATCH ",
                )
                .bind::<Text, _>(m)
                .sql(&format!("{visibility}))")),
            ))
        }
    }
}

/// Past this many matching comments, [`matching_sparse`] asks the comments table itself.
const COMMENT_IDS: i64 = 10_000;

/// The tickets (up to [`COMMENT_IDS`] + 1) with a comment matching `q` (PostgreSQL).
pub fn comment_matches(
    conn: &mut DbConn,
    tenant_id: &str,
    q: &str,
    internal: bool,
) -> QueryResult<Vec<String>> {
    let mut found = ticket_comments::table
        .filter(ticket_comments::tenant_id.eq(tenant_id))
        .filter(
            sql::<Bool>("ticket_comments.search @@ plainto_tsquery('simple', ")
                .bind::<Text, _>(q)
                .sql(")"),
        )
        .select(ticket_comments::ticket_id)
        .distinct()
        .limit(COMMENT_IDS + 1)
        .into_boxed::<MultiBackend>();
    if !internal {
        found = found.filter(ticket_comments::visibility.eq("public"));
    }
    found.load(conn)
}

/// [`matching`] for few matches on PostgreSQL: the tickets whose comments match come as a
/// list of ids (from [`comment_matches`]), so the planner can OR two index bitmaps instead
/// of checking every ticket against a hashed subquery.
pub fn matching_sparse(tenant_id: &str, q: &str, internal: bool, ids: &[String]) -> Condition {
    if ids.len() as i64 > COMMENT_IDS {
        return matching(Backend::Postgres, tenant_id, q, internal)
            .unwrap_or_else(|| Box::new(sql::<Bool>("FALSE")));
    }
    Box::new(
        sql::<Bool>("tickets.search @@ plainto_tsquery('simple', ")
            .bind::<Text, _>(q.to_owned())
            .sql(")")
            .or(tickets::id.eq_any(ids.to_vec())),
    )
}

/// Whether PostgreSQL expects `q` to match few tickets by title or description: no more than
/// its default guess for a word its statistics do not track (0.5 % of the rows), or `floor`
/// (a thousand: a bitmap scan and sort handle them quickly however many rows there are). A
/// word it knows to be common is not few. Costs a plan, not a scan.
pub fn few_expected(conn: &mut DbConn, q: &str, floor: f64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        json: String,
    }
    // Both estimates from one plan: the matches, and all rows (the planner's own count, which
    // it has even for a table never analysed).
    let plan: Plan = diesel::sql_query(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM tickets \
         WHERE search @@ plainto_tsquery('simple', $1) UNION ALL SELECT 1 FROM tickets",
    )
    .bind::<Text, _>(q)
    .get_result(conn)?;
    let plan = serde_json::from_str::<serde_json::Value>(&plan.json).unwrap_or_default();
    let rows = |i: usize| plan[0]["Plan"]["Plans"][i]["Plan Rows"].as_f64();
    Ok(match (rows(0), rows(1)) {
        (Some(matches), Some(all)) => matches <= (0.006 * all).max(floor),
        // An unreadable plan: take the word for common, which keeps PostgreSQL's own plan.
        _ => false,
    })
}

/// Makes the rest of the transaction find rows through bitmap index scans (PostgreSQL): a
/// rare word's few matches come from the text index, then are sorted, instead of walking a
/// list in order looking for them.
pub fn prefer_bitmaps(conn: &mut DbConn) -> QueryResult<()> {
    conn.batch_execute(
        "SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off; \
         SET LOCAL enable_indexonlyscan = off",
    )
}

/// `SELECT COUNT(*), COUNT(*) FILTER (WHERE <cond>) FROM (<newest>) AS tickets`: how many
/// tickets a window holds and how many of them match (PostgreSQL).
pub struct WindowStats<Q> {
    newest: Q,
    cond: Condition,
}

impl<Q> WindowStats<Q> {
    /// `newest` is the window: a tickets query in list order with its `LIMIT`.
    pub fn new(newest: Q, cond: Condition) -> Self {
        Self { newest, cond }
    }
}

fleetdesk_store::query_wrapper!(WindowStats => (BigInt, BigInt));

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for WindowStats<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*), COUNT(*) FILTER (WHERE ");
        self.cond.walk_ast(out.reborrow())?;
        out.push_sql(") FROM (");
        self.newest.walk_ast(out.reborrow())?;
        out.push_sql(") AS tickets");
        Ok(())
    }
}

/// `SELECT <ticket columns> FROM (<newest>) AS tickets WHERE <cond> ORDER BY … OFFSET …
/// LIMIT …`: a page of the matches within a window (PostgreSQL). The window comes out of its
/// index in order, so the scan stops once the page is full.
pub struct WindowPage<Q> {
    newest: Q,
    cond: Condition,
    order: &'static str,
    offset: i64,
    limit: i64,
}

impl<Q> WindowPage<Q> {
    /// `order` is the window's `ORDER BY` in SQL, naming columns as `tickets.<column>`.
    pub fn new(newest: Q, cond: Condition, order: &'static str, offset: i64, limit: i64) -> Self {
        Self {
            newest,
            cond,
            order,
            offset,
            limit,
        }
    }
}

fleetdesk_store::query_wrapper!(WindowPage => tickets::SqlType);

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for WindowPage<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        tickets::all_columns.walk_ast(out.reborrow())?;
        out.push_sql(" FROM (");
        self.newest.walk_ast(out.reborrow())?;
        out.push_sql(") AS tickets WHERE ");
        self.cond.walk_ast(out.reborrow())?;
        out.push_sql(" ORDER BY ");
        out.push_sql(self.order);
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(" OFFSET ");
        out.push_bind_param::<BigInt, _>(&self.offset)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts5_queries_quote_every_word() {
        assert_eq!(
            fts5_query("login  fails!").as_deref(),
            Some("\"login\" \"fails\"")
        );
        assert_eq!(
            fts5_query("a\"b OR c*").as_deref(),
            Some("\"a\" \"b\" \"OR\" \"c\"")
        );
        assert_eq!(fts5_query(" -- "), None);
    }
}
