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

/// The columns of rows to insert, each as an array. Columns are sent grouped by type (text,
/// nullable text, bigint, nullable bigint, integer, timestamp, nullable timestamp), names and
/// arrays in the same order, so the order they are added in within a type is the only order
/// that matters; every array has one element per row.
pub struct Unnest<'a> {
    table: &'static str,
    text: Vec<(&'static str, Vec<&'a str>)>,
    opt_text: Vec<(&'static str, Vec<Option<&'a str>>)>,
    big: Vec<(&'static str, Vec<i64>)>,
    opt_big: Vec<(&'static str, Vec<Option<i64>>)>,
    int: Vec<(&'static str, Vec<i32>)>,
    ts: Vec<(&'static str, Vec<NaiveDateTime>)>,
    opt_ts: Vec<(&'static str, Vec<Option<NaiveDateTime>>)>,
}

impl<'a> Unnest<'a> {
    /// An insert into `table`, with no columns yet.
    pub fn into(table: &'static str) -> Self {
        Self {
            table,
            text: Vec::new(),
            opt_text: Vec::new(),
            big: Vec::new(),
            opt_big: Vec::new(),
            int: Vec::new(),
            ts: Vec::new(),
            opt_ts: Vec::new(),
        }
    }

    /// A `TEXT` column.
    pub fn text<R>(mut self, name: &'static str, rows: &'a [R], f: fn(&'a R) -> &'a str) -> Self {
        self.text.push((name, rows.iter().map(f).collect()));
        self
    }

    /// A nullable `TEXT` column.
    pub fn opt_text<R>(
        mut self,
        name: &'static str,
        rows: &'a [R],
        f: fn(&'a R) -> Option<&'a str>,
    ) -> Self {
        self.opt_text.push((name, rows.iter().map(f).collect()));
        self
    }

    /// A `BIGINT` column.
    pub fn big<R>(mut self, name: &'static str, rows: &'a [R], f: fn(&'a R) -> i64) -> Self {
        self.big.push((name, rows.iter().map(f).collect()));
        self
    }

    /// A nullable `BIGINT` column.
    pub fn opt_big<R>(
        mut self,
        name: &'static str,
        rows: &'a [R],
        f: fn(&'a R) -> Option<i64>,
    ) -> Self {
        self.opt_big.push((name, rows.iter().map(f).collect()));
        self
    }

    /// An `INTEGER` column.
    pub fn int<R>(mut self, name: &'static str, rows: &'a [R], f: fn(&'a R) -> i32) -> Self {
        self.int.push((name, rows.iter().map(f).collect()));
        self
    }

    /// A `TIMESTAMP` column.
    pub fn ts<R>(
        mut self,
        name: &'static str,
        rows: &'a [R],
        f: fn(&'a R) -> NaiveDateTime,
    ) -> Self {
        self.ts.push((name, rows.iter().map(f).collect()));
        self
    }

    /// A nullable `TIMESTAMP` column.
    pub fn opt_ts<R>(
        mut self,
        name: &'static str,
        rows: &'a [R],
        f: fn(&'a R) -> Option<NaiveDateTime>,
    ) -> Self {
        self.opt_ts.push((name, rows.iter().map(f).collect()));
        self
    }

    fn names<'s>(&'s self) -> impl Iterator<Item = &'static str> + 's {
        fn of<T>(columns: &[(&'static str, T)]) -> impl Iterator<Item = &'static str> {
            columns.iter().map(|c| c.0)
        }
        of(&self.text)
            .chain(of(&self.opt_text))
            .chain(of(&self.big))
            .chain(of(&self.opt_big))
            .chain(of(&self.int))
            .chain(of(&self.ts))
            .chain(of(&self.opt_ts))
    }
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
        let mut first = true;
        let mut sep = |out: &mut AstPass<'_, 'b, Pg>| {
            if !std::mem::take(&mut first) {
                out.push_sql(", ");
            }
        };
        for (_, v) in &self.text {
            sep(&mut out);
            out.push_bind_param::<Array<Text>, _>(v)?;
        }
        for (_, v) in &self.opt_text {
            sep(&mut out);
            out.push_bind_param::<Array<Nullable<Text>>, _>(v)?;
        }
        for (_, v) in &self.big {
            sep(&mut out);
            out.push_bind_param::<Array<BigInt>, _>(v)?;
        }
        for (_, v) in &self.opt_big {
            sep(&mut out);
            out.push_bind_param::<Array<Nullable<BigInt>>, _>(v)?;
        }
        for (_, v) in &self.int {
            sep(&mut out);
            out.push_bind_param::<Array<Integer>, _>(v)?;
        }
        for (_, v) in &self.ts {
            sep(&mut out);
            out.push_bind_param::<Array<Timestamp>, _>(v)?;
        }
        for (_, v) in &self.opt_ts {
            sep(&mut out);
            out.push_bind_param::<Array<Nullable<Timestamp>>, _>(v)?;
        }
        out.push_sql(")");
        Ok(())
    }
}
