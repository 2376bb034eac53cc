//! The pool and the one blocking gate every handler goes through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::r2d2::Pool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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
    /// Reads run through [`Db::read`] at once, at most (the rest wait their turn in order).
    pub max_reads: usize,
}

/// The default for [`PoolOptions::max_reads`]: one more than the cores this process may use.
pub fn default_max_reads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            acquire_timeout: Duration::from_secs(5),
            max_reads: default_max_reads(),
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
    // Bounds the reads run at once (see `read`).
    reads: Arc<Semaphore>,
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
        let reads = Arc::new(Semaphore::new(options.max_reads.max(1)));
        Ok(Self {
            pool,
            backend,
            gate,
            reads,
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
        self.run_since(Instant::now(), None, f).await
    }

    /// [`Db::run`] for a short query that only reads and is bound by CPU (a list, a
    /// search): at most [`PoolOptions::max_reads`] run at once, the others wait for a
    /// turn in the order they came. More at once than there are cores does not answer them
    /// sooner: the database's processes then share the cores in time slices, and a request
    /// whose queries lose their slice a few times waits several times as long as the others
    /// (on 2 cores, with 8 searches at once: p99 20–82 ms with no limit against 8–15 ms with
    /// 3 at once, at the same throughput). Writes are not limited by this: they spend their
    /// time waiting for the commit's flush, which more at once share.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let turn = tokio::time::timeout(
            self.options.acquire_timeout,
            self.reads.clone().acquire_owned(),
        )
        .await
        .map_err(|_| StoreError::Unavailable("timed out waiting for a turn to read".into()))?
        .map_err(|_| StoreError::TaskFailed)?;
        self.run_since(started, Some(turn), f).await
    }

    /// [`Db::run`], with the acquire timeout counted from `started`; `turn` (a read's) is
    /// held until `f` has run, like the connection's permit, even if the caller goes away.
    async fn run_since<T, E, F>(
        &self,
        started: Instant,
        turn: Option<OwnedSemaphorePermit>,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = tokio::time::timeout(
            self.options
                .acquire_timeout
                .saturating_sub(started.elapsed()),
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
            let _turn = turn;
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

    /// Runs `f` on this thread (one of its own, not a runtime's or the blocking pool's) with
    /// a PostgreSQL connection from the pool, waiting at most the acquire timeout for one: what
    /// [`crate::Gather::postgres`] sends its statements through. `f`'s one write commits by
    /// itself ([`crate::one_statement`]); outbox rows it wrote wake the relay.
    pub fn with_postgres<T>(
        &self,
        f: impl FnOnce(&mut diesel::PgConnection) -> diesel::QueryResult<T>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut conn = self
            .pool
            .get_timeout(self.options.acquire_timeout)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        metrics::histogram!("db_acquire_seconds", "db" => self.name)
            .record(started.elapsed().as_secs_f64());
        crate::conn::take_dead();
        let result = match &mut *conn {
            DbConn::Pg(c) => {
                crate::outbox::begin_transaction();
                let result = f(c);
                crate::outbox::end_transaction(result.is_ok());
                result.map_err(StoreError::from)
            }
            DbConn::Sqlite(_) => Err(StoreError::Setup(
                "a statement sent by a gather needs PostgreSQL".into(),
            )),
        };
        if crate::outbox::take_committed() {
            self.written.notify_waiters();
        }
        drop(conn);
        if crate::conn::take_dead() {
            sweep(&self.pool, self.name);
        }
        result
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Runs `n` closures at once through `read` (or `run`), each holding its connection for
    /// a while; the most that ran at the same time.
    async fn most_at_once(db: &Db, n: usize, read: bool) -> usize {
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (db, now, most) = (db.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let f = move |_: &mut DbConn| {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(running, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(40));
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, StoreError>(())
                    };
                    if read {
                        db.read(f).await
                    } else {
                        db.run(f).await
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_at_most_max_reads_at_once_and_other_work_is_not_held_back() {
        let dir = std::env::temp_dir().join(format!(
            "fleetdesk-pool-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}/reads.db", dir.display());
        let options = PoolOptions {
            max_size: 6,
            max_reads: 2,
            ..PoolOptions::default()
        };
        let db = Db::connect("test", &url, &Migrations::PLATFORM, options).unwrap();
        assert_eq!(most_at_once(&db, 6, true).await, 2);
        assert!(most_at_once(&db, 6, false).await > 2);
        drop(db);
        std::fs::remove_dir_all(&dir).ok();
    }
}
