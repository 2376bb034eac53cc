//! The forwarding client: plain HTTP/1.1 keep-alive connections to the upstreams, kept per
//! worker thread, as nginx keeps its `keepalive` connections per worker process.
//!
//! A request is written on an idle connection of its worker (or a new one) and the response
//! streams back through the same worker: no pool lock, no hand-off between threads, and the
//! bodies' frames pass through as they come, both ways, without a copy or a channel. A
//! connection goes back to its worker's idle list when its response has been read to the end;
//! one whose response was abandoned is closed. (reqwest, still used for the gateway's own calls
//! to identity, spent a fifth of the gateway's CPU per forwarded request on its pool, URL
//! handling and futures.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Connections kept idle per upstream and worker.
const MAX_IDLE: usize = 256;

/// How long connecting may take before the upstream counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A request body: none, or the client's body passed on frame by frame as it arrives,
/// counted against the gateway's limit.
pub enum UpBody {
    /// No body.
    Empty,
    /// The client's body.
    Client {
        /// As the client sends it.
        body: Incoming,
        /// Bytes passed on so far (read by the handler after a failed send).
        seen: Arc<AtomicU64>,
        /// Most bytes allowed.
        limit: u64,
    },
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let UpBody::Client { body, seen, limit } = self.get_mut() else {
            return Poll::Ready(None);
        };
        loop {
            return match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let n = data.len() as u64;
                        if seen.fetch_add(n, Ordering::Relaxed) + n > *limit {
                            Poll::Ready(Some(Err(std::io::Error::other(
                                "request body over the limit",
                            ))))
                        } else {
                            Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                    }
                    // Trailers: not forwarded.
                    Err(_) => continue,
                },
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Empty => true,
            UpBody::Client { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Empty => SizeHint::with_exact(0),
            UpBody::Client { body, .. } => body.size_hint(),
        }
    }
}

type Sender = SendRequest<UpBody>;

thread_local! {
    static IDLE: RefCell<HashMap<String, Vec<Sender>>> = RefCell::new(HashMap::new());
}

fn take_idle(authority: &str) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(authority)?;
        // The most recently used first: the least likely to have been closed as idle.
        while let Some(sender) = list.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    })
}

fn put_idle(authority: &str, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        match idle.get_mut(authority) {
            Some(list) if list.len() < MAX_IDLE => list.push(sender),
            Some(_) => {}
            None => {
                idle.insert(authority.to_owned(), vec![sender]);
            }
        }
    });
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: the upstream is down or unreachable.
    Connect(String),
    /// The connection failed while the request was written or the response read.
    Failed(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Failed(e) => write!(f, "{e}"),
        }
    }
}

async fn connect(authority: &str) -> Result<Sender, SendError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| SendError::Connect("timed out".into()))?
        .map_err(|e| SendError::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Failed)?;
    // On this worker's own runtime, beside the requests that use it.
    tokio::task::spawn_local(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// Sends `request` (origin-form URI, `Host` set) to `authority` (`host:port`). An idempotent
/// request without a body that fails on a reused connection before any answer (the upstream
/// closed it while idle) is tried once more on a new one.
pub async fn send(
    authority: &str,
    request: Request<UpBody>,
) -> Result<Response<Returning>, SendError> {
    let idle = match take_idle(authority) {
        // Given back as its last response ended; ready once its connection has seen that.
        Some(mut s) => s.ready().await.is_ok().then_some(s),
        None => None,
    };
    let (mut sender, reused) = match idle {
        Some(s) => (s, true),
        // Boxed: a new connection is rare and its future large.
        None => (Box::pin(connect(authority)).await?, false),
    };
    // A copy to send again, for a bodiless idempotent request (RFC 9110 §9.2.2; like nginx,
    // never a POST or PATCH) on a connection that may have gone stale.
    let retry = (reused && request.body().is_end_stream() && request.method().is_idempotent())
        .then(|| {
            let mut again = Request::new(UpBody::Empty);
            *again.method_mut() = request.method().clone();
            *again.uri_mut() = request.uri().clone();
            *again.headers_mut() = request.headers().clone();
            again
        });
    let answer = match sender.send_request(request).await {
        Err(e) if reused && (e.is_canceled() || e.is_incomplete_message()) => match retry {
            Some(again) => {
                sender = Box::pin(connect(authority)).await?;
                sender.send_request(again).await
            }
            None => Err(e),
        },
        other => other,
    };
    let response = answer.map_err(SendError::Failed)?;
    let (parts, body) = response.into_parts();
    let mut body = Returning {
        body,
        sender: Some(sender),
        authority: authority.to_owned(),
    };
    if body.body.is_end_stream() {
        body.give_back();
    }
    Ok(Response::from_parts(parts, body))
}

/// A response body that gives its connection back to the worker's idle list once read to
/// the end.
pub struct Returning {
    body: Incoming,
    sender: Option<Sender>,
    authority: String,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some(sender) = self.sender.take() {
            put_idle(&self.authority, sender);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.give_back();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    // The connection is not reusable: drop it.
                    self.sender = None;
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if self.body.is_end_stream() {
                            self.give_back();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // Trailers: not forwarded.
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
