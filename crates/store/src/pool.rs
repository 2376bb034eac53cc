//! The pool and the one blocking gate every handler goes through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::r2d2::Pool;
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;

use crate::conn::{Backend, DbConn, Manager};
use crate::error::StoreError;
use crate::migrate::Migrations;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connections kept at most.
    pub max_size: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A service's database: a pool of [`DbConn`] behind a semaphore.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    backend: Backend,
    // Bounds the blocking tasks waiting for a connection to the pool size, so a slow
    // database queues requests here instead of filling tokio's blocking pool.
    gate: Arc<Semaphore>,
    options: PoolOptions,
    name: &'static str,
    // Woken when a transaction run through this pool commits outbox rows.
    written: Arc<Notify>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("name", &self.name)
            .finish()
    }
}

impl Db {
    /// Connects, runs the pending migrations of the URL's backend, and builds the pool.
    ///
    /// Blocking: call it at start-up (or through `spawn_blocking`). `name` labels metrics.
    pub fn connect(
        name: &'static str,
        url: &str,
        migrations: &Migrations,
        options: PoolOptions,
    ) -> Result<Self, StoreError> {
        let backend = Backend::of_url(url)?;
        migrations.run(backend, url)?;
        let pool = Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(1))
            .connection_timeout(options.acquire_timeout)
            .test_on_check_out(false)
            .build(Manager {
                backend,
                url: url.to_owned(),
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let gate = Arc::new(Semaphore::new(options.max_size as usize));
        Ok(Self {
            pool,
            backend,
            gate,
            options,
            name,
            written: Arc::new(Notify::new()),
        })
    }

    /// The backend behind this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on the blocking pool, inside the current span.
    ///
    /// Waiting longer than the acquire timeout for a connection is
    /// [`StoreError::Unavailable`]; a panic in `f` is [`StoreError::TaskFailed`].
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let permit = tokio::time::timeout(
            self.options.acquire_timeout,
            self.gate.clone().acquire_owned(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("timed out waiting for a connection".into()))?
        .map_err(|_| StoreError::TaskFailed)?;
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let name = self.name;
        let written = self.written.clone();
        let timeout = self
            .options
            .acquire_timeout
            .saturating_sub(started.elapsed());
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            let mut conn = pool
                .get_timeout(timeout.max(Duration::from_millis(50)))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            metrics::histogram!("db_acquire_seconds", "db" => name)
                .record(started.elapsed().as_secs_f64());
            crate::outbox::take_committed();
            crate::conn::take_dead();
            let result = f(&mut conn);
            if crate::outbox::take_committed() {
                written.notify_waiters();
            }
            drop(conn);
            if crate::conn::take_dead() {
                sweep(&pool, name);
            }
            result
        });
        match task.in_current_span().await {
            Ok(result) => result,
            Err(_) => Err(StoreError::TaskFailed.into()),
        }
    }

    /// [`Db::run`] inside one transaction ([`crate::transaction`]: `BEGIN IMMEDIATE` on SQLite).
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| crate::conn::transaction(conn, f))
            .await
    }

    /// Woken after a transaction run through this pool (any clone of it) commits outbox
    /// rows. Create the future (and `enable` it) before looking for rows, then await it, so no
    /// commit is missed. Other pools' commits do not wake it.
    pub fn written(&self) -> &Notify {
        &self.written
    }

    /// Checks that a connection can be had and answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        self.run(|conn| conn.batch_execute("SELECT 1").map_err(StoreError::from))
            .await
    }

    /// Connections in the pool and how many are idle, for metrics.
    pub fn state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }
}

/// Tries every idle connection once a request has met a dead one: when PostgreSQL restarts,
/// every pooled connection dies with it, and without this each would fail one request of its
/// own before being replaced (40 connections took the background loops about 20 s to use up).
/// A dead one fails its `SELECT 1`, which marks it broken, and the pool drops it when it
/// comes back; a live one just goes back.
fn sweep(pool: &Pool<Manager>, name: &'static str) {
    use diesel::connection::SimpleConnection;
    let mut tried = Vec::new();
    let mut dead = 0;
    while tried.len() < pool.max_size() as usize
        && let Some(mut conn) = pool.try_get()
    {
        if conn.batch_execute("SELECT 1").is_err() {
            dead += 1;
        }
        tried.push(conn);
    }
    crate::conn::take_dead();
    if dead > 0 {
        tracing::warn!(
            db = name,
            dead,
            "dropped pooled connections the database had ended"
        );
    }
}
