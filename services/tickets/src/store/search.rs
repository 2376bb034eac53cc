//! Full-text search over tickets' titles, descriptions and comments: PostgreSQL `tsvector`
//! columns with GIN indexes, or SQLite FTS5 tables kept by triggers. The one place where the
//! two backends need different SQL for it.

use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::sql_types::{Bool, Text};
use fleetdesk_store::{Backend, MultiBackend};

use super::schema::tickets;

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
