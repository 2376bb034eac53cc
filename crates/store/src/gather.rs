//! [`Gather`]: concurrent writes of one kind sent to PostgreSQL as one statement (group
//! commit), or concurrent reads of one kind as one query, by a thread of their own.
//!
//! A write that is its own statement outside a transaction ([`crate::one_statement`]) commits
//! by itself: a round trip, an executor set-up that opens and locks the table and each of its
//! indexes, and a commit record flushed to the WAL. Writes that arrive while one statement is
//! running wait for it and then go as the next statement, all together. Nothing waits for
//! company: a write that finds none running goes at once, so a lone write costs what it did.
//!
//! The statements are sent by the gather's own thread, on a pooled connection it takes for
//! each, and a caller awaits its answer without holding a thread or a connection. So a write
//! costs its caller one hand-over and one wake-up, where a caller on the blocking pool paid a
//! thread of its own, a wait for the statement (on the socket, or on the others' condition
//! variable, woken with all of them) and a wake-up to get back: on 2 cores, 8 concurrent
//! ticket creates switched threads 10–11 times each, and a third of that service's CPU time
//! went to switching.
//!
//! A gathered statement commits all of its writes or none. If it fails, each write is tried
//! again alone, so only the write at fault fails (unless no connection could be had: then
//! they all fail at once, as each would alone). While the database is down, each statement
//! waits up to the pool's acquire timeout for a connection, one statement at a time: a write
//! arriving meanwhile waits for the one before it, so up to twice that timeout before its 503.
//! A write whose caller has gone away (its client disconnected) is still sent.
//!
//! Reads gather the same way (each answered with its own value): a read is a round trip, and
//! a trip through PostgreSQL's executor, whatever it finds.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use diesel::QueryResult;
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::pool::Db;

/// The most writes one statement carries.
pub const MOST: usize = 64;

/// What sends a statement of several items, answering each in order.
type Statement<T, R> = Box<dyn Fn(&[T]) -> Result<Vec<R>, StoreError> + Send + Sync>;

/// Writes (or reads) of one kind (`T`) going together, each answered with an `R`. Dropping
/// it lets its thread send what is still waiting, then end.
pub struct Gather<T, R = ()> {
    shared: Arc<Shared<T, R>>,
}

struct Shared<T, R> {
    /// What the writes are (the `writes` label of `db_gathered_statements_total` and
    /// `db_gathered_writes_total`).
    name: &'static str,
    send: Statement<T, R>,
    state: Mutex<State<T, R>>,
    /// The thread waits here for work.
    ready: Condvar,
    statements: AtomicU64,
    writes: AtomicU64,
}

struct State<T, R> {
    /// Writes waiting for a statement, with where their answers go.
    queue: VecDeque<(T, oneshot::Sender<Result<R, StoreError>>)>,
    /// Whether the thread has been started (it runs until the gather is dropped).
    started: bool,
    /// Whether the thread is waiting for work (and so must be woken for it).
    idle: bool,
    /// Whether the gather was dropped.
    closed: bool,
    /// Writes taken by the thread and not yet answered.
    sending: usize,
}

impl<T: Send + 'static, R: Send + 'static> Gather<T, R> {
    /// Writes of kind `name` sent by `send`, which must send the items it is given (at most
    /// [`MOST`], in the order they came) as one statement outside a transaction and answer
    /// each in order. Its thread starts with the first write.
    pub fn new<F>(name: &'static str, send: F) -> Self
    where
        F: Fn(&[T]) -> Result<Vec<R>, StoreError> + Send + Sync + 'static,
    {
        Self {
            shared: Arc::new(Shared {
                name,
                send: Box::new(send),
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    started: false,
                    idle: false,
                    closed: false,
                    sending: 0,
                }),
                ready: Condvar::new(),
                statements: AtomicU64::new(0),
                writes: AtomicU64::new(0),
            }),
        }
    }

    /// [`Gather::new`] for statements sent to `db` (PostgreSQL) by `send`, on a connection
    /// taken from its pool for each ([`Db::with_postgres`]).
    pub fn postgres(
        name: &'static str,
        db: &Db,
        send: fn(&mut diesel::PgConnection, &[T]) -> QueryResult<Vec<R>>,
    ) -> Self {
        let db = db.clone();
        Self::new(name, move |items| db.with_postgres(|c| send(c, items)))
    }

    /// Sends `item` with whatever others are waiting, and returns its answer once its
    /// statement has run (a write's, once it is committed), or its failure.
    pub async fn run(&self, item: T) -> Result<R, StoreError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if !state.started {
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name(format!("gather-{}", self.shared.name))
                    .spawn(move || shared.serve())
                    .map_err(|e| StoreError::Unavailable(format!("no thread to send: {e}")))?;
                state.started = true;
            }
            state.queue.push_back((item, tx));
            if state.idle {
                state.idle = false;
                self.shared.ready.notify_one();
            }
        }
        rx.await.unwrap_or(Err(StoreError::TaskFailed))
    }

    /// Statements sent so far, and the writes they carried (those retried alone count twice).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.statements.load(Ordering::Relaxed),
            self.shared.writes.load(Ordering::Relaxed),
        )
    }

    /// Writes waiting for a statement, and writes in the statement being sent.
    pub fn waiting(&self) -> (usize, usize) {
        let state = self.shared.lock();
        (state.queue.len(), state.sending)
    }
}

impl<T, R> Drop for Gather<T, R> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }
}

impl<T, R> Shared<T, R> {
    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        // Nothing panics while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: sends what waits, a statement at a time, until the gather is dropped and
    /// nothing waits.
    fn serve(&self) {
        let mut state = self.lock();
        loop {
            if state.queue.is_empty() {
                if state.closed {
                    return;
                }
                state.idle = true;
                state = self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let n = state.queue.len().min(MOST);
            let (items, answers): (Vec<T>, Vec<_>) = state.queue.drain(..n).unzip();
            state.sending = n;
            drop(state);
            self.send_all(items, answers);
            state = self.lock();
            state.sending = 0;
        }
    }

    /// Sends `items` as one statement and answers each; if that fails, sends each alone.
    fn send_all(&self, items: Vec<T>, answers: Vec<oneshot::Sender<Result<R, StoreError>>>) {
        match self.send(&items) {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(Ok(result));
                }
            }
            // A statement failed: one of its writes may be at fault.
            Err(StoreError::NotFound | StoreError::Conflict(_) | StoreError::Query(_))
                if items.len() > 1 =>
            {
                for (item, answer) in items.into_iter().zip(answers) {
                    let result = self
                        .send(std::slice::from_ref(&item))
                        .map(|mut r| r.remove(0));
                    let _ = answer.send(result);
                }
            }
            // Alone, each would fail the same way: no connection, or a panic.
            Err(e) => {
                let mut answers = answers.into_iter();
                let first = answers.next();
                for answer in answers {
                    let _ = answer.send(Err(match &e {
                        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
                        StoreError::Setup(why) => StoreError::Setup(why.clone()),
                        _ => StoreError::TaskFailed,
                    }));
                }
                if let Some(answer) = first {
                    let _ = answer.send(Err(e));
                }
            }
        }
    }

    /// One statement: its answers, exactly one per item, or its failure (a panic in `send`
    /// is [`StoreError::TaskFailed`]).
    fn send(&self, items: &[T]) -> Result<Vec<R>, StoreError> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(items.len() as u64, Ordering::Relaxed);
        metrics::counter!("db_gathered_statements_total", "writes" => self.name).increment(1);
        metrics::counter!("db_gathered_writes_total", "writes" => self.name)
            .increment(items.len() as u64);
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.send)(items))) {
            Ok(Ok(answers)) if answers.len() == items.len() => Ok(answers),
            Ok(Ok(answers)) => Err(StoreError::Query(diesel::result::Error::QueryBuilderError(
                format!(
                    "{} answers for {} gathered items",
                    answers.len(),
                    items.len()
                )
                .into(),
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::TaskFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    /// What the statements carried: (the writes, whether it committed).
    type Log = Arc<Mutex<Vec<(Vec<u32>, bool)>>>;

    async fn wait_until(what: &str, f: impl Fn() -> bool) {
        let started = Instant::now();
        while !f() {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A gather whose statements are logged; one carrying `bad` fails as a statement does,
    /// and the first waits for a word on the returned sender.
    fn gather(bad: u32) -> (Arc<Gather<u32, u32>>, Log, mpsc::Sender<()>) {
        let log = Log::default();
        let (open, gate) = mpsc::channel();
        let gate = Mutex::new(Some(gate));
        let logged = log.clone();
        let gather = Gather::new("test", move |items: &[u32]| {
            // Taken first: the lock must not be held while waiting.
            let first = gate.lock().unwrap().take();
            if let Some(gate) = first {
                gate.recv().unwrap();
            }
            let ok = !items.contains(&bad);
            logged.lock().unwrap().push((items.to_vec(), ok));
            if ok {
                Ok(items.iter().map(|i| i * 10).collect())
            } else {
                Err(StoreError::Query(diesel::result::Error::NotFound))
            }
        });
        (Arc::new(gather), log, open)
    }

    type Sent<R> = tokio::task::JoinHandle<Result<R, StoreError>>;

    fn send<R: Send + 'static>(gather: &Arc<Gather<u32, R>>, item: u32) -> Sent<R> {
        let gather = gather.clone();
        tokio::spawn(async move { gather.run(item).await })
    }

    /// Sends write 1 and, once its statement is being sent, writes 2 to 4, which wait for it.
    async fn one_sent_three_waiting<R: Send + 'static>(
        gather: &Arc<Gather<u32, R>>,
    ) -> (Sent<R>, Vec<(u32, Sent<R>)>) {
        let first = send(gather, 1);
        wait_until("the first write is sent", || gather.waiting() == (0, 1)).await;
        let rest: Vec<_> = (2..=4).map(|i| (i, send(gather, i))).collect();
        wait_until("three writes wait", || gather.waiting() == (3, 1)).await;
        (first, rest)
    }

    #[tokio::test]
    async fn writes_arriving_while_one_runs_go_together_next_each_with_its_answer() {
        let (gather, log, open) = gather(0);
        let (first, rest) = one_sent_three_waiting(&gather).await;
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (i, w) in rest {
            assert_eq!(w.await.unwrap().unwrap(), i * 10);
        }
        let log = log.lock().unwrap().clone();
        assert_eq!(log, vec![(vec![1], true), (vec![2, 3, 4], true)]);
        assert_eq!(gather.counts(), (2, 4));
    }

    #[tokio::test]
    async fn a_failed_statement_is_retried_write_by_write_so_only_the_bad_one_fails() {
        let (gather, log, open) = gather(3);
        let (first, rest) = one_sent_three_waiting(&gather).await;
        open.send(()).unwrap();
        first.await.unwrap().unwrap();
        for (i, w) in rest {
            let result = w.await.unwrap();
            assert_eq!(result.is_ok(), i != 3, "write {i}: {result:?}");
        }
        let log = log.lock().unwrap().clone();
        // The first alone; the three together, failing; then each alone.
        assert_eq!(
            log,
            vec![
                (vec![1], true),
                (vec![2, 3, 4], false),
                (vec![2], true),
                (vec![3], false),
                (vec![4], true)
            ]
        );
    }

    #[tokio::test]
    async fn without_a_connection_every_write_fails_at_once_and_none_is_retried() {
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        let (open, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let gather = Arc::new(Gather::new(
            "test",
            move |_: &[u32]| -> Result<Vec<()>, _> {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    gate.lock().unwrap().recv().unwrap();
                }
                Err(StoreError::Unavailable("no connection".into()))
            },
        ));
        let (first, rest) = one_sent_three_waiting(&gather).await;
        open.send(()).unwrap();
        for w in std::iter::once(first).chain(rest.into_iter().map(|(_, w)| w)) {
            assert!(matches!(w.await.unwrap(), Err(StoreError::Unavailable(_))));
        }
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_statement_answering_too_few_or_panicking_fails_its_writes_and_the_next_goes() {
        let gather = Gather::new("test", |items: &[u32]| match items {
            [1] => Ok(Vec::new()),
            [2] => panic!("boom"),
            _ => Ok(vec![7; items.len()]),
        });
        assert!(matches!(gather.run(1).await, Err(StoreError::Query(_))));
        assert!(matches!(gather.run(2).await, Err(StoreError::TaskFailed)));
        assert_eq!(gather.run(3).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_dropped_gather_sends_what_waits_then_its_thread_ends() {
        let (gather, log, open) = gather(0);
        let first = send(&gather, 1);
        wait_until("the first write is sent", || gather.waiting() == (0, 1)).await;
        let second = send(&gather, 2);
        wait_until("a write waits", || gather.waiting() == (1, 1)).await;
        let shared = Arc::downgrade(&gather.shared);
        // The tasks hold the gather too: it is dropped once both have their answers.
        drop(gather);
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        assert_eq!(second.await.unwrap().unwrap(), 20);
        assert_eq!(log.lock().unwrap().len(), 2);
        // The thread let go of what it shares with the gather: it has ended.
        let started = Instant::now();
        while shared.upgrade().is_some() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the thread still runs"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}
