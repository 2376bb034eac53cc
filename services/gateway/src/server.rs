//! The gateway's HTTP/1.1 server: one thread per worker, each with its own single-threaded
//! runtime accepting from the shared listener and serving its connections to the end, so a
//! request, its upstream connection and its response never change threads (as nginx's worker
//! processes). A connection's requests are read and its responses written by [`crate::h1`].
//!
//! Timers are per connection, never per request: a connection's idle timer closes it when it
//! has served nothing for a while (a client that is slow to send its head, or a keep-alive
//! connection left idle), and its deadline timer bounds each request's wait for an upstream.
//! The idle timer is re-armed once per period, and the deadline timer is moved from one
//! request's deadline to the next's. (hyper's server, used before, made, armed and dropped a
//! head timer per request; with a timeout timer per upstream call, that was about a tenth of
//! the gateway's CPU per forwarded request.)

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::time::Sleep;

use crate::Gateway;
use crate::h1::{self, ClientIo};

/// How long in-flight requests get to finish once a stop is asked for.
const GRACE: Duration = Duration::from_secs(30);

/// What a connection knows of itself.
pub struct Peer {
    /// The address at the other end.
    pub addr: std::net::IpAddr,
    /// The same, as text (rate-limit keys).
    pub ip: String,
    /// The same, as the `X-Forwarded-For` sent upstream.
    pub ip_value: Option<hyper::header::HeaderValue>,
    /// The address the client connected to (the `X-Forwarded-Host` of a request without
    /// `Host`).
    pub local: String,
    /// Requests begun and not yet answered to the end of their body.
    busy: Cell<u32>,
    /// A request began or ended since the idle timer last looked.
    stirred: Cell<bool>,
    /// The connection's deadline timer (see [`Peer::within`]), made on its first request.
    deadline: Cell<Option<Pin<Box<Sleep>>>>,
    /// The gateway is stopping: the request in flight is the connection's last.
    stopping: Cell<bool>,
}

impl Peer {
    fn new(addr: SocketAddr, local: String) -> Self {
        let ip = ip_text(addr);
        Self {
            addr: addr.ip(),
            ip_value: hyper::header::HeaderValue::from_str(&ip).ok(),
            ip,
            local,
            busy: Cell::new(0),
            stirred: Cell::new(false),
            deadline: Cell::new(None),
            stopping: Cell::new(false),
        }
    }

    /// `work`'s output, or `None` if `deadline` came first. The connection's one timer is
    /// moved to `deadline`: moved later, as from one request to the next, that is one atomic
    /// store (tokio re-files the timer when its old time comes, not now).
    pub async fn within<F: Future>(&self, deadline: Instant, work: F) -> Option<F::Output> {
        // Taken while in use and put back after (a request dropped meanwhile drops it: the
        // next makes another).
        let mut timer = match self.deadline.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline.into());
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline.into())),
        };
        let mut work = std::pin::pin!(work);
        let out = poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        self.deadline.set(Some(timer));
        out
    }

    /// Whether the gateway is stopping.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// A request has begun; it ends when the returned guard is dropped.
    pub(crate) fn begin(self: &Rc<Self>) -> Serving {
        self.busy.set(self.busy.get() + 1);
        self.stirred.set(true);
        Serving(self.clone())
    }

    /// Whether the connection has been idle since the last look, which starts a new period.
    fn idle_since_last_look(&self) -> bool {
        let idle = self.busy.get() == 0 && !self.stirred.get();
        self.stirred.set(false);
        idle
    }
}

/// A request being served, from its head to the end of its response's body.
pub(crate) struct Serving(Rc<Peer>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.busy.set(self.0.busy.get() - 1);
        self.0.stirred.set(true);
    }
}

/// Stops a [`Server`]: it stops accepting, answers the requests in flight (each the last on
/// its connection) and closes idle connections.
#[derive(Clone)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// Running workers.
pub struct Server {
    stop: watch::Sender<bool>,
    workers: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl Server {
    /// Starts `workers` threads serving `listener`.
    pub fn start(
        gateway: Arc<Gateway>,
        listener: TcpListener,
        workers: usize,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let (stop, stopped) = watch::channel(false);
        let mut done = Vec::new();
        for n in 0..workers.max(1) {
            let listener = listener.try_clone()?;
            let gateway = gateway.clone();
            let stopped = stopped.clone();
            let (finished, finished_rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("gateway-worker-{n}"))
                .spawn(move || {
                    // A local runtime: tasks spawned with `spawn_local` are its own, so waking
                    // one is no cross-thread signal (a `LocalSet` costs an eventfd write per
                    // wake-up from I/O).
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build_local(tokio::runtime::LocalOptions::default())
                    {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "a gateway worker could not start");
                            return;
                        }
                    };
                    runtime.block_on(worker(gateway, listener, stopped));
                    let _ = finished.send(());
                })?;
            done.push(finished_rx);
        }
        Ok(Self {
            stop,
            workers: done,
        })
    }

    /// A handle that stops the server as SIGTERM does.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Serves until SIGINT or SIGTERM (or a worker ends), then stops accepting and lets the
    /// requests in flight finish, for at most 30 s.
    pub async fn run(self) -> std::io::Result<()> {
        let Self { stop, workers } = self;
        let all_done = futures_util::future::join_all(workers);
        tokio::pin!(all_done);
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::info!("gateway stopping: finishing requests in flight");
                let _ = stop.send(true);
                let _ = tokio::time::timeout(GRACE + Duration::from_secs(1), &mut all_done).await;
            }
            _ = &mut all_done => {}
        }
        Ok(())
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Connections a worker is serving, to wait for on a stop.
#[derive(Default)]
struct Live {
    count: Cell<usize>,
    idle: Notify,
}

/// One connection counted in [`Live`] while it lives, however its task ends.
struct Counted(Rc<Live>);

impl Counted {
    fn new(live: &Rc<Live>) -> Self {
        live.count.set(live.count.get() + 1);
        Self(live.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let left = self.0.count.get() - 1;
        self.0.count.set(left);
        if left == 0 {
            self.0.idle.notify_one();
        }
    }
}

async fn worker(gateway: Arc<Gateway>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "a gateway worker could not listen");
            return;
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let live = Rc::new(Live::default());
    // Room for heads past the configured limit, so that forwarding answers them with its own
    // problem (414/431, see `proxy::oversized_head`) rather than the reader's plain 431.
    let max_head = (gateway.max_header * 2 + 16 * 1024).max(8192);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let peer = Rc::new(Peer::new(addr, local.clone()));
        let gateway = gateway.clone();
        let mut stopped = stopped.clone();
        let counted = Counted::new(&live);
        tokio::task::spawn_local(async move {
            let _counted = counted;
            let idle_timeout = gateway.idle_timeout;
            let io = Rc::new(ClientIo::new(stream, gateway.send_timeout));
            // Whether the connection ended by itself (the client closed it, or asked to, or a
            // request left it out of step), rather than idle or stopped between requests.
            let ended = async {
                let serving = h1::serve(&gateway, &peer, &io, max_head);
                tokio::pin!(serving);
                // A connection idle for a whole period is closed: one that was not (a request began or
                // ended in it, or one is being served) gets another period.
                let idle = tokio::time::sleep(idle_timeout);
                tokio::pin!(idle);
                loop {
                    tokio::select! {
                        // Polled in this order on every wake-up (the requests' own first), with
                        // no random draw to pick the first.
                        biased;
                        () = &mut serving => return true,
                        _ = stopped.changed(), if !peer.stopping() => {
                            // The request in flight, if any, is answered and is the last.
                            peer.stopping.set(true);
                            if peer.busy.get() == 0 {
                                return false;
                            }
                        }
                        () = &mut idle => {
                            if peer.idle_since_last_look() {
                                // Nothing in flight: nothing is lost by closing.
                                tracing::debug!("idle client connection closed");
                                return false;
                            }
                            idle.as_mut().reset((Instant::now() + idle_timeout).into());
                        }
                    }
                }
            }
            .await;
            if ended && let Ok(io) = Rc::try_unwrap(io) {
                linger(io.into_stream()).await;
            }
        });
    }
    drop(listener);
    let wait = async {
        while live.count.get() > 0 {
            live.idle.notified().await;
        }
    };
    let _ = tokio::time::timeout(GRACE, wait).await;
}

/// Most a closing connection reads and drops of what the client still sends.
const LINGER_BYTES: usize = 1024 * 1024;

/// How long a closing connection waits for the client to stop sending.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes a connection as nginx's lingering close does: the write side first, then what the
/// client still sends (the rest of a body refused with 413, say) is read and dropped until it
/// closes too. Closing with unread bytes would make the kernel answer them with a reset,
/// which can destroy the answer before the client has read it.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

fn ip_text(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.ip().to_string(),
        },
        SocketAddr::V4(v4) => v4.ip().to_string(),
    }
}
