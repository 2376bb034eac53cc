//! The connection type for both backends and its pool manager.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, R2D2Connection};

use crate::error::StoreError;

/// A connection to PostgreSQL or SQLite; store functions take `&mut DbConn`.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL (production, microservices).
    Pg(PgConnection),
    /// SQLite (the all-in-one quickstart).
    Sqlite(SqliteConnection),
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:` or `file:`.
    Sqlite,
}

impl Backend {
    /// Reads the backend from a URL, refusing anything else with a message naming the forms.
    pub fn of_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") || url.starts_with("file:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::Setup(
                "a database URL must start with postgres://, postgresql://, sqlite: or file:"
                    .into(),
            ))
        }
    }
}

/// The SQLite path or URI diesel accepts, from our `sqlite:` form.
pub(crate) fn sqlite_target(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// Opens one connection of the URL's backend with the session settings Fleetdesk needs.
pub(crate) fn establish(backend: Backend, url: &str) -> Result<DbConn, StoreError> {
    // Connect with the concrete type: the derived `MultiConnection::establish` tries each
    // backend in turn and would open a SQLite file named after a PostgreSQL URL.
    match backend {
        Backend::Postgres => {
            let mut conn =
                PgConnection::establish(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            // The plan cache keeps its default: queries whose plan depends on their values
            // are sent as `Planned`.
            conn.batch_execute("SET TIME ZONE 'UTC'")?;
            Ok(DbConn::Pg(conn))
        }
        Backend::Sqlite => {
            let mut conn = SqliteConnection::establish(sqlite_target(url))
                .map_err(|e| StoreError::Setup(format!("cannot open SQLite database: {e}")))?;
            // busy_timeout first, so the WAL switch itself waits for a lock.
            conn.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )?;
            Ok(DbConn::Sqlite(conn))
        }
    }
}

impl DbConn {
    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Pg(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs `f` in a transaction that takes the write lock up front on SQLite (`BEGIN IMMEDIATE`).
///
/// A deferred SQLite transaction that reads and then writes fails at once with "database is
/// locked" when another writer got there first, without waiting for `busy_timeout`; taking
/// the lock up front makes concurrent writers queue instead. PostgreSQL uses diesel's
/// ordinary transaction. Do not nest: call store functions inside `f`, not `transaction`.
pub fn transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    crate::outbox::begin_transaction();
    let result = match conn {
        DbConn::Pg(_) => conn.transaction(f),
        DbConn::Sqlite(_) => {
            conn.batch_execute("BEGIN IMMEDIATE")?;
            let mut guard = RollbackGuard { conn, done: false };
            let out = f(guard.conn);
            match out {
                Ok(value) => {
                    guard.conn.batch_execute("COMMIT")?;
                    guard.done = true;
                    Ok(value)
                }
                Err(e) => Err(e), // the guard rolls back
            }
        }
    };
    crate::outbox::end_transaction(result.is_ok());
    result
}

/// Runs `f`, whose only write on PostgreSQL is its last statement, without `BEGIN` and
/// `COMMIT` there: one statement is atomic by itself, and the reads before it see the latest
/// commits, as they would in a `READ COMMITTED` transaction. Saves two round trips of a short
/// write. `f` must not fail after its write, which is committed when it returns. On SQLite,
/// [`transaction`].
pub fn one_statement<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn.backend() {
        Backend::Postgres => {
            crate::outbox::begin_transaction();
            let result = f(conn);
            crate::outbox::end_transaction(result.is_ok());
            result
        }
        Backend::Sqlite => transaction(conn, f),
    }
}

/// Runs `f` in a read-only transaction that sees one snapshot of the database, so several
/// reads agree (a count, and the rows it counted): `REPEATABLE READ, READ ONLY` on
/// PostgreSQL, where each statement would otherwise see the latest commits; a deferred
/// transaction on SQLite, whose first read fixes what the rest see (WAL).
pub fn snapshot<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let backend = conn.backend();
    conn.transaction(|conn| {
        if backend == Backend::Postgres {
            conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        f(conn)
    })
}

/// Rolls an open SQLite transaction back unless it was committed, also on panic, so the
/// pooled connection is never returned mid-transaction.
struct RollbackGuard<'a> {
    conn: &'a mut DbConn,
    done: bool,
}

impl Drop for RollbackGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.batch_execute("ROLLBACK");
        }
    }
}

/// The r2d2 manager: one backend, chosen from the URL once.
#[derive(Debug)]
pub(crate) struct Manager {
    pub(crate) backend: Backend,
    pub(crate) url: String,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConn, StoreError> {
        establish(self.backend, &self.url)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        conn.ping().map(|_| ()).map_err(StoreError::from)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        // diesel takes a connection libpq knows to be bad for broken.
        conn.is_broken()
    }
}

thread_local! {
    /// Set when a query on this thread found its connection dead (see [`Db::run`]: a pooled
    /// connection is used on one thread).
    static DEAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the connection in use on this thread was found dead.
pub(crate) fn mark_dead() {
    DEAD.set(true);
}

/// Whether a connection was found dead on this thread since the last call.
pub(crate) fn take_dead() -> bool {
    DEAD.take()
}
