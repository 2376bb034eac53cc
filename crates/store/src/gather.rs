//! [`Gather`]: concurrent writes of one kind sent to PostgreSQL as one statement (group
//! commit), or concurrent reads of one kind as one query.
//!
//! A write that is its own statement outside a transaction ([`crate::one_statement`]) commits
//! by itself: a round trip, an executor set-up that opens and locks the table and each of its
//! indexes, and a commit record flushed to the WAL. Writes that arrive while one is running
//! wait for it and then go as the next statement, all together, on the connection of the one
//! that goes first; the others' connections wait idle meanwhile. Nothing waits for company:
//! a write that finds none running goes at once, so a lone write costs what it did.
//!
//! A gathered statement commits all of its writes or none. If it fails, each write is tried
//! again alone, by its own caller on its own connection, so only the write at fault fails.
//!
//! Reads gather the same way ([`Gather::run`], each answered with its own value): a read is a
//! round trip, and a trip through PostgreSQL's executor, whatever it finds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use diesel::QueryResult;
use diesel::result::Error;

/// The most writes one statement carries.
pub const MOST: usize = 64;

/// Writes (or reads) of one kind (`T`) waiting to go together, each answered with an `R`.
pub struct Gather<T, R = ()> {
    /// What the writes are (the `writes` label of `db_gathered_statements_total` and
    /// `db_gathered_writes_total`).
    name: &'static str,
    state: Mutex<State<T, R>>,
    settled: Condvar,
    statements: AtomicU64,
    writes: AtomicU64,
}

struct State<T, R> {
    /// Writes waiting for a statement, with their callers' numbers.
    queue: Vec<(u64, T)>,
    /// Whether a gathered statement is running.
    writing: bool,
    /// The next caller's number.
    next: u64,
    /// What became of writes that went, by caller.
    settled: HashMap<u64, Outcome<T, R>>,
}

enum Outcome<T, R> {
    /// Committed with the rest of its statement (or read by it), with its answer.
    Written(R),
    /// Its statement (of more than one write) failed: to be tried alone.
    Alone(T),
    /// It went alone and failed.
    Failed(Error),
}

impl<T, R> Gather<T, R> {
    /// Nothing waiting yet for writes of kind `name`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            state: Mutex::new(State {
                queue: Vec::new(),
                writing: false,
                next: 0,
                settled: HashMap::new(),
            }),
            settled: Condvar::new(),
            statements: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        // A panic while the lock was held cannot leave the state half-changed (see `Leading`).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Statements sent so far, and the writes they carried (those retried alone count twice).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }

    /// Writes waiting for a statement.
    pub fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    /// Sends `item` with whatever others are waiting, by `write` (which must send them as one
    /// statement outside a transaction, on the connection it is given, and answer each in
    /// order), and returns `item`'s answer once it is committed, or its failure. `write` gets
    /// at most [`MOST`] items, in the order they arrived.
    pub fn run<C, F>(&self, conn: &mut C, item: T, write: F) -> QueryResult<R>
    where
        F: Fn(&mut C, &[T]) -> QueryResult<Vec<R>>,
    {
        let mut state = self.lock();
        let me = state.next;
        state.next += 1;
        state.queue.push((me, item));
        loop {
            if let Some(outcome) = state.settled.remove(&me) {
                drop(state);
                return match outcome {
                    Outcome::Written(answer) => Ok(answer),
                    Outcome::Failed(e) => Err(e),
                    Outcome::Alone(item) => {
                        self.sent(1);
                        let mut answers = answered(write(conn, std::slice::from_ref(&item)), 1)?;
                        Ok(answers.remove(0))
                    }
                };
            }
            if state.writing {
                state = self
                    .settled
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Nobody is writing: this caller sends what waits (its own write among it, unless
            // more than a statement's worth arrived before it).
            state.writing = true;
            let n = state.queue.len().min(MOST);
            let (callers, items): (Vec<u64>, Vec<T>) = state.queue.drain(..n).unzip();
            drop(state);
            let mut leading = Leading {
                gather: self,
                me,
                callers,
                done: false,
            };
            self.sent(items.len());
            let result = answered(write(conn, &items), items.len());
            leading.done = true;
            state = self.lock();
            state.writing = false;
            let callers = std::mem::take(&mut leading.callers);
            match result {
                Ok(answers) => {
                    for (caller, answer) in callers.into_iter().zip(answers) {
                        state.settled.insert(caller, Outcome::Written(answer));
                    }
                }
                Err(e) if items.len() == 1 => {
                    state.settled.insert(callers[0], Outcome::Failed(e));
                }
                Err(_) => {
                    for (caller, item) in callers.into_iter().zip(items) {
                        state.settled.insert(caller, Outcome::Alone(item));
                    }
                }
            }
            self.settled.notify_all();
        }
    }
}

impl<T> Gather<T> {
    /// [`Gather::run`] for writes that answer nothing but success.
    pub fn write<C, F>(&self, conn: &mut C, item: T, write: F) -> QueryResult<()>
    where
        F: Fn(&mut C, &[T]) -> QueryResult<()>,
    {
        self.run(conn, item, |c, items| {
            write(c, items).map(|()| vec![(); items.len()])
        })
    }
}

/// `result`, unless it answers other than `n` items.
fn answered<R>(result: QueryResult<Vec<R>>, n: usize) -> QueryResult<Vec<R>> {
    match result {
        Ok(answers) if answers.len() != n => Err(Error::QueryBuilderError(
            format!("{} answers for {n} gathered items", answers.len()).into(),
        )),
        other => other,
    }
}

impl<T, R> Gather<T, R> {
    fn sent(&self, writes: usize) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        metrics::counter!("db_gathered_statements_total", "writes" => self.name).increment(1);
        metrics::counter!("db_gathered_writes_total", "writes" => self.name)
            .increment(writes as u64);
    }
}

/// The callers of a statement being written: if writing it panics, they are told it failed
/// and another may lead, rather than waiting for ever.
struct Leading<'g, T, R> {
    gather: &'g Gather<T, R>,
    /// The caller writing it, whose panic goes on up.
    me: u64,
    callers: Vec<u64>,
    done: bool,
}

impl<T, R> Drop for Leading<'_, T, R> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.gather.lock();
        state.writing = false;
        for caller in self.callers.drain(..).filter(|c| *c != self.me) {
            state.settled.insert(
                caller,
                Outcome::Failed(Error::QueryBuilderError(
                    "the statement carrying this write panicked".into(),
                )),
            );
        }
        self.gather.settled.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    /// What the statements carried: (the writes, whether it committed).
    type Log = Arc<Mutex<Vec<(Vec<u32>, bool)>>>;
    /// Holds the first write's statement until the test opens it.
    type Gate = Arc<Mutex<Option<mpsc::Receiver<()>>>>;

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let started = Instant::now();
        while !f() {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Starts a writer of `item` whose statements are logged in `log`; one carrying `bad`
    /// fails; the first statement waits for a word on `gate`.
    fn writer(
        gather: &Arc<Gather<u32>>,
        log: &Log,
        gate: &Gate,
        item: u32,
        bad: u32,
    ) -> thread::JoinHandle<QueryResult<()>> {
        let (gather, log, gate) = (gather.clone(), log.clone(), gate.clone());
        thread::spawn(move || {
            gather.write(&mut (), item, |_, items| {
                pass(&gate);
                let ok = !items.contains(&bad);
                log.lock().unwrap().push((items.to_vec(), ok));
                if ok { Ok(()) } else { Err(Error::NotFound) }
            })
        })
    }

    /// A gate the first statement waits at, and what opens it.
    fn gate() -> (Gate, mpsc::Sender<()>) {
        let (open, gate) = mpsc::channel();
        (Arc::new(Mutex::new(Some(gate))), open)
    }

    /// Waits at `gate` if this is the first statement through it.
    fn pass(gate: &Gate) {
        // Taken first: the lock must not be held while waiting.
        let first = gate.lock().unwrap().take();
        if let Some(gate) = first {
            gate.recv().unwrap();
        }
    }

    fn setup() -> (Arc<Gather<u32>>, Log, Gate, mpsc::Sender<()>) {
        let (gate, open) = gate();
        (Arc::new(Gather::new("test")), Log::default(), gate, open)
    }

    #[test]
    fn writes_arriving_while_one_runs_go_together_next() {
        let (gather, log, gate, open) = setup();
        let first = writer(&gather, &log, &gate, 1, 0);
        wait_until("the first write leads", || {
            gather.waiting() == 0 && gate.lock().unwrap().is_none()
        });
        let rest: Vec<_> = (2..=4)
            .map(|i| writer(&gather, &log, &gate, i, 0))
            .collect();
        wait_until("three writes wait", || gather.waiting() == 3);
        open.send(()).unwrap();
        first.join().unwrap().unwrap();
        for w in rest {
            w.join().unwrap().unwrap();
        }
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 2, "{log:?}");
        assert_eq!(log[0], (vec![1], true));
        let mut second = log[1].0.clone();
        second.sort_unstable();
        assert_eq!(second, vec![2, 3, 4]);
        assert_eq!(gather.counts(), (2, 4));
    }

    #[test]
    fn a_failed_statement_is_retried_write_by_write_so_only_the_bad_one_fails() {
        let (gather, log, gate, open) = setup();
        let first = writer(&gather, &log, &gate, 1, 3);
        wait_until("the first write leads", || gate.lock().unwrap().is_none());
        let rest: Vec<_> = (2..=4)
            .map(|i| (i, writer(&gather, &log, &gate, i, 3)))
            .collect();
        wait_until("three writes wait", || gather.waiting() == 3);
        open.send(()).unwrap();
        first.join().unwrap().unwrap();
        for (i, w) in rest {
            let result = w.join().unwrap();
            assert_eq!(result.is_ok(), i != 3, "write {i}: {result:?}");
        }
        let log = log.lock().unwrap().clone();
        // The first alone; the three together, failing; then each alone.
        assert_eq!(log.len(), 5, "{log:?}");
        assert!(!log[1].1 && log[1].0.len() == 3, "{log:?}");
        let mut alone: Vec<_> = log[2..].to_vec();
        alone.sort();
        assert_eq!(
            alone,
            vec![(vec![2], true), (vec![3], false), (vec![4], true)]
        );
    }

    #[test]
    fn gathered_reads_get_each_its_own_answer() {
        let gather = Arc::new(Gather::<u32, u32>::new("test"));
        let (gate, open) = gate();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let reader = |item: u32| {
            let (gather, gate, sizes) = (gather.clone(), gate.clone(), sizes.clone());
            thread::spawn(move || {
                gather.run(&mut (), item, |_, items| {
                    pass(&gate);
                    sizes.lock().unwrap().push(items.len());
                    Ok(items.iter().map(|i| i * 10).collect())
                })
            })
        };
        let first = reader(1);
        wait_until("the first read leads", || gate.lock().unwrap().is_none());
        let rest: Vec<_> = (2..=4).map(|i| (i, reader(i))).collect();
        wait_until("three reads wait", || gather.waiting() == 3);
        open.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), 10);
        for (i, r) in rest {
            assert_eq!(r.join().unwrap().unwrap(), i * 10);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 3]);
        // A statement that answers too few fails rather than leaving a caller without one.
        let short = gather.run(&mut (), 5, |_, _| Ok(Vec::new()));
        assert!(short.is_err());
    }

    #[test]
    fn a_panicking_statement_fails_its_writes_and_the_next_write_goes() {
        let gather = Arc::new(Gather::<u32>::new("test"));
        let g = gather.clone();
        let panicked = thread::spawn(move || g.write(&mut (), 1, |_, _| panic!("boom"))).join();
        assert!(panicked.is_err());
        gather
            .write(&mut (), 2, |_, items| {
                assert_eq!(items, &[2]);
                Ok(())
            })
            .unwrap();
    }
}
