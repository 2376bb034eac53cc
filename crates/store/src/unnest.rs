//! [`Unnest`]: many rows inserted by one PostgreSQL statement of one shape,
//! `INSERT INTO <table> (<columns>) SELECT * FROM unnest(<one array per column>)`.
//!
//! A multi-row `VALUES` list has a text (and a prepared statement) per number of rows; the
//! arrays keep one text for any number, so the statement is prepared once per connection.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};

/// Declares [`Unnest`] with one builder method, array list and bind per column kind.
macro_rules! column_kinds {
    ($($(#[$doc:meta])* $kind:ident: $sql:ty => $value:ty;)*) => {
        /// The columns of rows to insert, each as an array. Columns are sent grouped by kind
        /// (in the order declared below), names and arrays in the same order, so the order
        /// they are added in within a kind is the only order that matters; every array has
        /// one element per row.
        pub struct Unnest<'a> {
            table: &'static str,
            $($kind: Vec<(&'static str, Vec<$value>)>,)*
        }

        impl<'a> Unnest<'a> {
            /// An insert into `table`, with no columns yet.
            pub fn into(table: &'static str) -> Self {
                Self {
                    table,
                    $($kind: Vec::new(),)*
                }
            }

            $(
                $(#[$doc])*
                pub fn $kind<R>(
                    mut self,
                    name: &'static str,
                    rows: &'a [R],
                    f: fn(&'a R) -> $value,
                ) -> Self {
                    self.$kind.push((name, rows.iter().map(f).collect()));
                    self
                }
            )*

            fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
                std::iter::empty()$(.chain(self.$kind.iter().map(|c| c.0)))*
            }

            fn bind_arrays<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                let mut first = true;
                $(
                    for (_, v) in &self.$kind {
                        if !std::mem::take(&mut first) {
                            out.push_sql(", ");
                        }
                        out.push_bind_param::<Array<$sql>, _>(v)?;
                    }
                )*
                Ok(())
            }
        }
    };
}

column_kinds! {
    /// A `TEXT` column.
    text: Text => &'a str;
    /// A nullable `TEXT` column.
    opt_text: Nullable<Text> => Option<&'a str>;
    /// A `BIGINT` column.
    big: BigInt => i64;
    /// A nullable `BIGINT` column.
    opt_big: Nullable<BigInt> => Option<i64>;
    /// An `INTEGER` column.
    int: Integer => i32;
    /// A `TIMESTAMP` column.
    ts: Timestamp => NaiveDateTime;
    /// A nullable `TIMESTAMP` column.
    opt_ts: Nullable<Timestamp> => Option<NaiveDateTime>;
}

impl QueryFragment<Pg> for Unnest<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        out.push_sql(self.table);
        out.push_sql(" (");
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(name);
        }
        out.push_sql(") SELECT * FROM unnest(");
        self.bind_arrays(&mut out)?;
        out.push_sql(")");
        Ok(())
    }
}
