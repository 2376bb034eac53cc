//! The forwarding client: plain HTTP/1.1 keep-alive connections to the upstreams, kept per
//! worker thread, as nginx keeps its `keepalive` connections per worker process, and driven by
//! the request that uses them.
//!
//! A request's own task takes an idle connection of its worker (or makes one), writes the
//! request head and streams its body, reads the response head, and the response body reads the
//! same socket as the client's connection asks for frames. There is no task per upstream
//! connection, and no channel or wake-up between tasks: each forwarded request is one task's
//! work on one thread, from the client's socket to the upstream's and back. A connection goes
//! back to its worker's idle list when its response has been read to the end; one whose
//! response was abandoned is closed.
//!
//! (reqwest, still used for the gateway's own calls to identity, spent a fifth of the gateway's
//! CPU per forwarded request on its pool, URL handling and futures; hyper's client connection,
//! used after it, a task, a request channel and a body channel per upstream connection.)

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, Write as _};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::list;

/// Connections kept idle per upstream and worker.
const MAX_IDLE: usize = 256;

/// How long connecting may take before the upstream counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest response head read from an upstream.
const MAX_HEAD: usize = 64 * 1024;

/// The most header fields in a response head.
const MAX_HEADERS: usize = 128;

/// The longest chunk-size or trailer line in a chunked response body.
const MAX_LINE: usize = 4096;

/// Room made in a connection's read buffer before each read.
const READ_SIZE: usize = 16 * 1024;

/// Request body bytes gathered before they are written.
const WRITE_SIZE: usize = 64 * 1024;

/// A request body: none, or the client's body passed on frame by frame as it arrives,
/// counted against the gateway's limit.
pub enum UpBody {
    /// No body.
    Empty,
    /// The client's body.
    Client {
        /// As the client sends it.
        body: crate::h1::ClientBody,
        /// How far it has gone (read by the handler after a failed or timed-out send).
        progress: Arc<Progress>,
        /// Most bytes allowed.
        limit: u64,
    },
}

/// How far a client's body has gone up: what tells, after a send failed or ran out of time,
/// whether the client or the upstream was at fault.
#[derive(Default)]
pub struct Progress {
    /// Bytes passed on so far.
    seen: AtomicU64,
    /// The send is waiting for more of the client's body, not for the upstream.
    awaiting_client: AtomicBool,
}

impl Progress {
    /// Bytes of the body passed on so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Whether the send was waiting for the client (to send more of its body) when it was
    /// given up.
    pub fn awaiting_client(&self) -> bool {
        self.awaiting_client.load(Ordering::Relaxed)
    }
}

/// Marks a failure as the client's: its body was malformed, cut short or over the limit.
/// Such a failure says nothing of the upstream, and does not count against its circuit.
#[derive(Debug)]
struct ClientFault(io::Error);

impl std::fmt::Display for ClientFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ClientFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn client_fault(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), ClientFault(e))
}

impl UpBody {
    /// Notes whether the send is waiting for the client's body.
    fn awaiting_client(&self, waiting: bool) {
        if let UpBody::Client { progress, .. } = self {
            progress.awaiting_client.store(waiting, Ordering::Relaxed);
        }
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let UpBody::Client {
            body,
            progress,
            limit,
        } = self.get_mut()
        else {
            return Poll::Ready(None);
        };
        loop {
            return match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(client_fault(e)))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let n = data.len() as u64;
                        if progress.seen.fetch_add(n, Ordering::Relaxed) + n > *limit {
                            let e = io::Error::other("the request body is over the limit");
                            Poll::Ready(Some(Err(client_fault(e))))
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

/// A connection to an upstream, between two of its messages when idle.
struct Conn {
    io: TcpStream,
    /// Bytes read and not yet used: the next response's head, then its body.
    buf: BytesMut,
}

impl Conn {
    /// Whether an idle connection can take a request: the upstream has not closed it (nor
    /// sent anything unasked). Costs no system call unless the socket was seen readable.
    fn usable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

thread_local! {
    /// Each upstream's idle connections on this worker (few upstreams: found by a scan).
    static IDLE: RefCell<Vec<(Arc<str>, Vec<Conn>)>> = const { RefCell::new(Vec::new()) };
}

fn take_idle(authority: &str) -> Option<Conn> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let (_, list) = idle.iter_mut().find(|(a, _)| &**a == authority)?;
        // The most recently used first: the least likely to have been closed as idle.
        while let Some(mut conn) = list.pop() {
            if conn.usable() {
                return Some(conn);
            }
        }
        None
    })
}

fn put_idle(authority: &Arc<str>, conn: Conn) {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        match idle.iter_mut().find(|(a, _)| a == authority) {
            Some((_, list)) if list.len() < MAX_IDLE => {
                // The longest idle, if its upstream has closed it meanwhile, is let go now
                // rather than when its turn comes (one look per return, no system call
                // unless it was seen readable).
                if list.first_mut().is_some_and(|oldest| !oldest.usable()) {
                    list.remove(0);
                }
                list.push(conn);
            }
            Some(_) => {}
            None => idle.push((authority.clone(), vec![conn])),
        }
    });
}

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: the upstream is down or unreachable.
    Connect(String),
    /// The connection failed while the request was written or the response read, or the
    /// upstream's answer was not HTTP/1.1 that can be passed on.
    Failed(io::Error),
    /// The client's body could not be passed on: it was malformed, cut short or over the
    /// limit. Not the upstream's fault.
    Client(io::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Failed(e) | SendError::Client(e) => write!(f, "{e}"),
        }
    }
}

async fn connect(authority: &str) -> Result<Conn, SendError> {
    let io = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| SendError::Connect("timed out".into()))?
        .map_err(|e| SendError::Connect(e.to_string()))?;
    let _ = io.set_nodelay(true);
    Ok(Conn {
        io,
        buf: BytesMut::with_capacity(READ_SIZE),
    })
}

/// How a request body is framed on the way up.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Sending {
    /// No body.
    Nothing,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, for a body of unknown length.
    Chunked,
}

/// The fields forwarding sets on a request it sends up. They are written into its head
/// with the client's own, in place of any of the same names (which are not sent), rather
/// than put in the request's header map: six inserts into a hash map per request.
#[derive(Default)]
pub struct Fields {
    /// `Host`: the upstream's authority.
    pub host: Option<HeaderValue>,
    /// The `Authorization` that replaces the client's (an exchanged API key's token).
    pub authorization: Option<HeaderValue>,
    /// `X-Forwarded-For`.
    pub forwarded_for: Option<HeaderValue>,
    /// `X-Forwarded-Proto`.
    pub forwarded_proto: Option<HeaderValue>,
    /// `X-Forwarded-Host`.
    pub forwarded_host: Option<HeaderValue>,
    /// `X-Request-Id`.
    pub request_id: Option<HeaderValue>,
    /// `traceparent`.
    pub traceparent: Option<HeaderValue>,
}

impl Fields {
    /// Whether a client's field of this name gives way to the gateway's (or to none: the
    /// forwarding fields are the gateway's alone even where it has no value to send).
    fn replaces(&self, name: &header::HeaderName) -> bool {
        match name.as_str() {
            "host" | "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
            | "x-request-id" | "traceparent" => true,
            "authorization" => self.authorization.is_some(),
            _ => false,
        }
    }

    /// The fields after `Host` (which goes first, RFC 9110 §7.2), as head lines.
    fn rest(&self) -> [(&'static [u8], Option<&HeaderValue>); 6] {
        [
            (b"authorization", self.authorization.as_ref()),
            (b"x-forwarded-for", self.forwarded_for.as_ref()),
            (b"x-forwarded-proto", self.forwarded_proto.as_ref()),
            (b"x-forwarded-host", self.forwarded_host.as_ref()),
            (b"x-request-id", self.request_id.as_ref()),
            (b"traceparent", self.traceparent.as_ref()),
        ]
    }
}

/// The request line and header fields, forwarding's own among them, with the body's
/// framing.
fn encode_head(parts: &hyper::http::request::Parts, fields: &Fields, sending: Sending) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let size: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    let mut out = Vec::with_capacity(target.len() + size + 320);
    let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = &fields.host {
        line(&mut out, b"host", host.as_bytes());
    }
    for (name, value) in &parts.headers {
        // The body's framing is the gateway's to say (below), whatever the client sent.
        if (sending != Sending::Nothing && name == header::CONTENT_LENGTH) || fields.replaces(name)
        {
            continue;
        }
        line(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in fields.rest() {
        if let Some(value) = value {
            line(&mut out, name, value.as_bytes());
        }
    }
    match sending {
        Sending::Nothing => {}
        Sending::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Sending::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes the head and the body after it, gathering what is at hand into one write.
async fn write_request(
    io: &mut tokio::net::tcp::WriteHalf<'_>,
    head: &[u8],
    body: &mut UpBody,
    sending: Sending,
) -> io::Result<()> {
    if sending == Sending::Nothing {
        return io.write_all(head).await;
    }
    let mut out = head.to_vec();
    loop {
        let frame = match next_frame(body).now_or_never() {
            Some(frame) => frame,
            None => {
                // Nothing more yet: what is gathered goes now, then the body is awaited.
                if !out.is_empty() {
                    io.write_all(&out).await?;
                    out.clear();
                }
                // Waiting for the client now, not for the upstream: if time runs out here, the
                // client is the one that was slow.
                body.awaiting_client(true);
                let frame = next_frame(body).await;
                body.awaiting_client(false);
                frame
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        if sending == Sending::Chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if data.len() >= WRITE_SIZE / 4 {
            // A large frame is written as it is, not copied first.
            io.write_all(&out).await?;
            out.clear();
            io.write_all(&data).await?;
        } else {
            out.extend_from_slice(&data);
        }
        if sending == Sending::Chunked {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= WRITE_SIZE {
            io.write_all(&out).await?;
            out.clear();
        }
    }
    if sending == Sending::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if !out.is_empty() {
        io.write_all(&out).await?;
    }
    Ok(())
}

/// The body's next frame, when it comes.
fn next_frame(body: &mut UpBody) -> impl Future<Output = Option<io::Result<Frame<Bytes>>>> + '_ {
    poll_fn(move |cx| Pin::new(&mut *body).poll_frame(cx))
}

/// Reads into `buf`'s spare room, made first if there is little. An empty buffer (before a
/// response head) gets its whole room back: what the last response left of its allocation is
/// reclaimed in place once that response's bytes have been sent and dropped. Without that, the
/// room left after a 12 KiB answer took the next one in two reads, the second into a new
/// allocation.
fn poll_fill<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    make_room(buf, READ_SIZE);
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Makes room for a read of about `size` bytes: made when little is left, and given back
/// whole to an empty buffer (see [`poll_fill`]).
pub(crate) fn make_room(buf: &mut BytesMut, size: usize) {
    let spare = buf.capacity() - buf.len();
    if spare < size / 4 || (buf.is_empty() && spare < size) {
        buf.reserve(size);
    }
}

/// The `Content-Length` of a message's fields: `None` without one, an error unless every value
/// (over all its lines and comma-separated lists) is the same number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<Result<u64, ()>> {
    let mut lines = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lines.next()?;
    // Nearly always: one line holding one number.
    if lines.next().is_none()
        && !first.is_empty()
        && first.as_bytes().iter().all(u8::is_ascii_digit)
    {
        return Some(length(first.to_str().unwrap_or("?")));
    }
    let mut lengths = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|v| length(v.trim()));
    let first = lengths.next()?;
    Some(first.and_then(|n| {
        if lengths.all(|other| other == Ok(n)) {
            Ok(n)
        } else {
            Err(())
        }
    }))
}

/// A response head, parsed.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    reading: Reading,
    keep_alive: bool,
}

/// What a buffer's start holds.
enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An informational (1xx) response, now consumed: the final one follows.
    Informational,
    /// The final response's head, consumed.
    Final(Head),
}

pub(crate) fn bad(what: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A `Content-Length` value: digits only (`str::parse` would also take a sign).
pub(crate) fn length(value: &str) -> Result<u64, ()> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    value.parse().map_err(|_| ())
}

/// Whether the head that starts `buf` has ended, looking for its blank line only in what came
/// after `scanned` bytes (less the two that may begin it): a head sent a byte at a time is not
/// parsed again on every byte. Line ends are found with `memchr` (a head has a few dozen);
/// comparing every 2- and 3-byte window of a head with a 560-byte token took 3 % of the
/// gateway's CPU per forwarded request (a tenth of its time in user space).
pub(crate) fn head_end(buf: &[u8], scanned: usize) -> bool {
    let from = scanned.saturating_sub(2).min(buf.len());
    memchr::memchr_iter(b'\n', &buf[from..]).any(|at| {
        let after = &buf[from + at + 1..];
        after.starts_with(b"\n") || after.starts_with(b"\r\n")
    })
}

/// Parses a response head at the start of `buf` (RFC 9112 §6.3 for its body's length).
fn parse_head(buf: &mut BytesMut, request: &Method) -> io::Result<Parsed> {
    // Slots left uninitialised and spans sized to the fields: 4 KiB arrays zeroed per parse
    // were a visible share of the gateway's time.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(bad(format!("malformed response head: {e}"))),
    };
    let code = response.code.unwrap_or(0);
    let http11 = response.version == Some(1);
    // Where each field's name and value are in the buffer: the values are then shared with
    // it, not copied.
    let start = buf.as_ptr() as usize;
    let spans: Vec<(usize, usize, usize, usize)> = response
        .headers
        .iter()
        .map(|h| {
            let name = h.name.as_ptr() as usize - start;
            let value = h.value.as_ptr() as usize - start;
            (name, name + h.name.len(), value, value + h.value.len())
        })
        .collect();
    let head = buf.split_to(len).freeze();
    if (100..200).contains(&code) {
        if code == 101 {
            return Err(bad("an upgrade was not asked for"));
        }
        return Ok(Parsed::Informational);
    }
    let status = StatusCode::from_u16(code).map_err(bad)?;
    // What the gateway adds is written into the client's head, not put here (see
    // `edge::Added`).
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(name, name_end, value, value_end) in &spans {
        let name = crate::proxy::header_name(&head[name..name_end]).map_err(bad)?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value_end)).map_err(bad)?;
        headers.append(name, value);
    }
    let close = list(&headers, &header::CONNECTION).any(|t| t.eq_ignore_ascii_case("close"));
    let reading = if request == Method::HEAD || code == 204 || code == 304 {
        Reading::Length(0)
    } else if headers.contains_key(header::TRANSFER_ENCODING) {
        // Transfer-Encoding overrides Content-Length, which must not be passed on with it.
        headers.remove(header::CONTENT_LENGTH);
        match list(&headers, &header::TRANSFER_ENCODING).last() {
            Some(t) if t.eq_ignore_ascii_case("chunked") => Reading::Chunked(Chunk::Size),
            _ => Reading::Close,
        }
    } else {
        match content_length(&headers) {
            Some(Ok(n)) => Reading::Length(n),
            Some(Err(())) => return Err(bad("the response's Content-Length is not one number")),
            None => Reading::Close,
        }
    };
    let keep_alive = http11 && !close && reading != Reading::Close;
    Ok(Parsed::Final(Head {
        status,
        headers,
        reading,
        keep_alive,
    }))
}

/// A request that got no answer; `unanswered` when not a byte of one came back (the request
/// may then be sent again on another connection if it is idempotent).
struct Failure {
    error: io::Error,
    unanswered: bool,
}

async fn read_head(
    io: &mut tokio::net::tcp::ReadHalf<'_>,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Head, Failure> {
    let failed = |error, buf: &BytesMut| Failure {
        error,
        unanswered: buf.is_empty(),
    };
    loop {
        if !buf.is_empty() {
            match parse_head(buf, method) {
                Ok(Parsed::Final(head)) => return Ok(head),
                Ok(Parsed::Informational) => continue,
                Ok(Parsed::Partial) if buf.len() > MAX_HEAD => {
                    return Err(failed(bad("the response head is too large"), buf));
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return Err(failed(e, buf)),
            }
        }
        match poll_fn(|cx| poll_fill(io, buf, cx)).await {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "closed before answering");
                return Err(failed(e, buf));
            }
            Ok(_) => {}
            Err(e) => return Err(failed(e, buf)),
        }
    }
}

/// Sends a request on `conn` and reads its response's head. The body is written while the
/// answer is awaited: an upstream that answers before it has read the whole body (a refusal)
/// is heard at once, and its connection is not used again.
async fn exchange(
    conn: &mut Conn,
    head: &[u8],
    body: &mut UpBody,
    sending: Sending,
    method: &Method,
) -> Result<Head, Failure> {
    let Conn { io, buf } = conn;
    let (mut rd, mut wr) = io.split();
    let mut writing = pin!(write_request(&mut wr, head, body, sending));
    let mut reading = pin!(read_head(&mut rd, buf, method));
    let mut sent = false;
    poll_fn(|cx| {
        if !sent {
            match writing.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => sent = true,
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err(Failure {
                        error,
                        unanswered: true,
                    }));
                }
                Poll::Pending => {}
            }
        }
        reading.as_mut().poll(cx).map_ok(|mut head| {
            head.keep_alive &= sent;
            head
        })
    })
    .await
}

/// Sends `request` (origin-form URI, `Host` set) to `authority` (`host:port`). An idempotent
/// request without a body that fails on a reused connection before any answer (the upstream
/// closed it while idle) is tried once more on a new one.
pub async fn send(
    authority: &Arc<str>,
    request: Request<UpBody>,
    fields: &Fields,
) -> Result<Response<Returning>, SendError> {
    let (parts, mut body) = request.into_parts();
    let sending = match &body {
        UpBody::Empty => Sending::Nothing,
        UpBody::Client { body, .. } => match body.size_hint().exact() {
            Some(n) => Sending::Length(n),
            None => Sending::Chunked,
        },
    };
    let (mut conn, reused) = match take_idle(authority) {
        Some(conn) => (conn, true),
        // Boxed: a new connection is rare and its future large.
        None => (Box::pin(connect(authority)).await?, false),
    };
    let head = encode_head(&parts, fields, sending);
    // Sent again, for a bodiless idempotent request (RFC 9110 §9.2.2; like nginx, never a
    // POST or PATCH) on a connection that may have gone stale.
    let again = reused && sending == Sending::Nothing && parts.method.is_idempotent();
    let answer = match exchange(&mut conn, &head, &mut body, sending, &parts.method).await {
        Err(failure) if failure.unanswered && again => {
            conn = Box::pin(connect(authority)).await?;
            exchange(&mut conn, &head, &mut body, sending, &parts.method).await
        }
        other => other,
    };
    let head = answer.map_err(|f| {
        if f.error.get_ref().is_some_and(|e| e.is::<ClientFault>()) {
            SendError::Client(f.error)
        } else {
            SendError::Failed(f.error)
        }
    })?;
    let mut returning = Returning {
        conn: Some(conn),
        authority: authority.clone(),
        reading: head.reading,
        keep_alive: head.keep_alive,
    };
    returning.settle();
    let mut response = Response::new(returning);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    Ok(response)
}

/// How the rest of a response body is read.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Reading {
    /// This many bytes more.
    Length(u64),
    /// Chunked transfer coding, at this point of it.
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    Close,
    /// Read to the end.
    Done,
    /// Malformed: not read further.
    Failed,
}

/// Where a chunked body's reading is.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes of it to come.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// Among the trailer lines, which end with an empty one.
    Trailer,
}

/// What the buffered bytes gave.
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// Nothing more until more is read.
    More,
    /// The body's end.
    Done,
}

/// One line (without its CRLF, or a bare LF) from the start of `buf`, taken out of it.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end <= MAX_LINE => {
            let mut line = buf.split_to(end + 1).freeze();
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() <= MAX_LINE => Ok(None),
        _ => Err(bad("a chunked body's line is too long")),
    }
}

/// Reads past what carries no data (a chunk's size line or its end, the last chunk's
/// trailer) while it is in `buf`: `reading` is then at data, at the end, or waiting for more.
/// A malformed body is `Failed` from then on.
fn advance(reading: &mut Reading, buf: &mut BytesMut) -> io::Result<()> {
    let result = loop {
        let at = match *reading {
            Reading::Length(0) => {
                *reading = Reading::Done;
                return Ok(());
            }
            Reading::Chunked(at @ (Chunk::Size | Chunk::DataEnd | Chunk::Trailer)) => at,
            Reading::Failed => break Err(bad("the upstream's body is malformed")),
            _ => return Ok(()),
        };
        let line = match take_line(buf) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) => break Err(e),
        };
        *reading = match at {
            Chunk::Size => match chunk_size(&line) {
                Ok(0) => Reading::Chunked(Chunk::Trailer),
                Ok(n) => Reading::Chunked(Chunk::Data(n)),
                Err(e) => break Err(e),
            },
            Chunk::DataEnd if line.is_empty() => Reading::Chunked(Chunk::Size),
            Chunk::DataEnd => break Err(bad("a chunk is longer than its size")),
            // Trailer fields: not forwarded.
            _ if line.is_empty() => Reading::Done,
            _ => Reading::Chunked(Chunk::Trailer),
        };
    };
    *reading = Reading::Failed;
    result
}

/// The next step of reading a body from `buf`.
pub(crate) fn step(reading: &mut Reading, buf: &mut BytesMut) -> io::Result<Step> {
    advance(reading, buf)?;
    match *reading {
        Reading::Done => Ok(Step::Done),
        Reading::Length(n) | Reading::Chunked(Chunk::Data(n)) if !buf.is_empty() => {
            let k = n.min(buf.len() as u64);
            let data = buf.split_to(k as usize).freeze();
            *reading = match *reading {
                Reading::Length(_) => Reading::Length(n - k),
                _ if k == n => Reading::Chunked(Chunk::DataEnd),
                _ => Reading::Chunked(Chunk::Data(n - k)),
            };
            Ok(Step::Data(data))
        }
        Reading::Close if !buf.is_empty() => Ok(Step::Data(buf.split().freeze())),
        _ => Ok(Step::More),
    }
}

/// A chunk-size line's size (hexadecimal; extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(bad("a chunk size is not a hexadecimal number"));
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char)
            .to_digit(16)
            .ok_or_else(|| bad("a chunk size is not a hexadecimal number"))?;
        Ok(n << 4 | u64::from(v))
    })
}

/// A response body read from its upstream connection as the client's connection asks for
/// it; the connection goes back to the worker's idle list once the body has been read to the
/// end.
pub struct Returning {
    /// `None` once given back or broken.
    conn: Option<Conn>,
    authority: Arc<str>,
    reading: Reading,
    keep_alive: bool,
}

impl Returning {
    /// Reads past what carries no data while it is buffered (see [`advance`]), so that the
    /// end of a body is known, and its connection given back, with its last data.
    fn settle(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            // A malformed body is reported by the next read.
            && advance(&mut self.reading, &mut conn.buf).is_ok()
            && self.reading == Reading::Done
        {
            self.give_back();
        }
    }

    fn give_back(&mut self) {
        if let Some(conn) = self.conn.take()
            // Bytes after the end of a response: the connection is not in step; dropped.
            && self.keep_alive
            && conn.buf.is_empty()
        {
            put_idle(&self.authority, conn);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match step(&mut this.reading, &mut conn.buf) {
                Ok(Step::Data(data)) => {
                    this.settle();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::Done) => {
                    this.give_back();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(poll_fill(&mut conn.io, &mut conn.buf, cx)) {
                Ok(0) if this.reading == Reading::Close => {
                    this.reading = Reading::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the body was cut short");
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.reading == Reading::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.reading {
            Reading::Length(n) => SizeHint::with_exact(n),
            Reading::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step over `wire` fed in pieces of `piece` bytes: the body, and whether it ended.
    fn read_all(mut reading: Reading, wire: &[u8], piece: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match step(&mut reading, &mut buf)? {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::Done => return Ok((body, true)),
                Step::More if fed == wire.len() => return Ok((body, false)),
                Step::More => {
                    let end = (fed + piece).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn lengths_are_digits_only() {
        assert_eq!(length("0"), Ok(0));
        assert_eq!(length("11327"), Ok(11327));
        for bad in [
            "",
            "+5",
            "-5",
            " 5",
            "5 ",
            "0x10",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(length(bad), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn a_heads_end_is_found_in_what_is_new() {
        let head = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
        assert!(head_end(head, 0));
        assert!(head_end(b"GET / HTTP/1.1\nhost: a\n\n", 0), "bare LF");
        assert!(!head_end(&head[..head.len() - 1], 0));
        // The end straddling what was scanned and what came after.
        for scanned in 0..head.len() {
            assert!(head_end(head, scanned), "scanned {scanned}");
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_reads() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n";
        for piece in [1, 2, 3, 7, wire.len()] {
            let (body, ended) = read_all(Reading::Chunked(Chunk::Size), wire, piece).unwrap();
            assert_eq!(body, b"hello, world", "pieces of {piece}");
            assert!(ended, "pieces of {piece}");
        }
        // Bare LF line ends, and upper-case hex.
        let (body, ended) =
            read_all(Reading::Chunked(Chunk::Size), b"A\nabcdefghij\n0\n\n", 4).unwrap();
        assert_eq!((body.as_slice(), ended), (&b"abcdefghij"[..], true));
    }

    #[test]
    fn bad_chunked_bodies_are_errors_not_guesses() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"\r\nhello\r\n",
            b"3\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffff\r\n",
        ] {
            assert!(
                read_all(Reading::Chunked(Chunk::Size), wire, 4).is_err(),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'1'; MAX_LINE + 10];
        assert!(read_all(Reading::Chunked(Chunk::Size), &long, 1000).is_err());
        // Cut short: no error from the bytes, but no end either.
        let (body, ended) = read_all(Reading::Chunked(Chunk::Size), b"5\r\nhel", 2).unwrap();
        assert_eq!((body.as_slice(), ended), (&b"hel"[..], false));
    }

    #[test]
    fn lengths_stop_at_the_length_and_leave_the_rest() {
        let mut buf = BytesMut::from(&b"helloHTTP/1.1"[..]);
        let mut reading = Reading::Length(5);
        assert!(
            matches!(step(&mut reading, &mut buf).unwrap(), Step::Data(d) if &d[..] == b"hello")
        );
        assert!(matches!(step(&mut reading, &mut buf).unwrap(), Step::Done));
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    fn parsed(wire: &[u8], method: &Method) -> io::Result<Head> {
        let mut buf = BytesMut::from(wire);
        loop {
            match parse_head(&mut buf, method)? {
                Parsed::Final(head) => return Ok(head),
                Parsed::Informational => {}
                Parsed::Partial => return Err(bad("partial")),
            }
        }
    }

    #[test]
    fn response_heads_say_how_their_body_is_read() {
        let get = Method::GET;
        let h = parsed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Up: a\r\n\r\n",
            &get,
        )
        .unwrap();
        assert_eq!((h.reading, h.keep_alive), (Reading::Length(12), true));
        assert_eq!(h.headers["x-up"], "a");
        let h = parsed(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            &get,
        )
        .unwrap();
        assert_eq!(h.status, StatusCode::CREATED);
        assert_eq!(h.reading, Reading::Chunked(Chunk::Size));
        assert!(
            !h.headers.contains_key(header::CONTENT_LENGTH),
            "Transfer-Encoding wins"
        );
        let h = parsed(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            &get,
        )
        .unwrap();
        assert!(!h.keep_alive);
        let h = parsed(b"HTTP/1.1 200 OK\r\n\r\n", &get).unwrap();
        assert_eq!((h.reading, h.keep_alive), (Reading::Close, false));
        let h = parsed(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &get).unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 without keep-alive");
        let h = parsed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap();
        assert_eq!(h.reading, Reading::Length(0));
        let h = parsed(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 40\r\n\r\n",
            &get,
        )
        .unwrap();
        assert_eq!(h.reading, Reading::Length(0));
        for wire in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
            b"SMTP ready\r\n\r\n",
        ] {
            assert!(
                parsed(wire, &get).is_err(),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let h = parsed(b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n", &get).unwrap();
        assert_eq!(h.reading, Reading::Length(7));
    }

    #[test]
    fn request_heads_carry_the_gateways_framing() {
        let mut request = Request::builder()
            .method("POST")
            .uri("/api/v1/tickets?x=1")
            .header("host", "tickets:8082")
            .header("content-length", "99")
            .body(())
            .unwrap();
        let (parts, ()) = std::mem::replace(&mut request, Request::new(())).into_parts();
        let fields = Fields {
            host: Some(HeaderValue::from_static("tickets:8082")),
            ..Fields::default()
        };
        let text = |s| String::from_utf8(encode_head(&parts, &fields, s)).unwrap();
        assert_eq!(
            text(Sending::Length(5)),
            "POST /api/v1/tickets?x=1 HTTP/1.1\r\nhost: tickets:8082\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            text(Sending::Chunked),
            "POST /api/v1/tickets?x=1 HTTP/1.1\r\nhost: tickets:8082\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn forwarding_fields_take_the_place_of_the_clients_own() {
        let request = Request::builder()
            .method("GET")
            .uri("/api/v1/me")
            .header("host", "gateway.example")
            .header("authorization", "Bearer client")
            .header("x-request-id", "client-id")
            .header("traceparent", "00-client")
            .header("x-forwarded-for", "6.6.6.6")
            .header("accept", "application/json")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let fields = Fields {
            host: Some(HeaderValue::from_static("identity:8081")),
            forwarded_for: Some(HeaderValue::from_static("10.0.0.7")),
            forwarded_proto: Some(HeaderValue::from_static("http")),
            forwarded_host: Some(HeaderValue::from_static("gateway.example")),
            request_id: Some(HeaderValue::from_static("gw-id")),
            ..Fields::default()
        };
        assert_eq!(
            String::from_utf8(encode_head(&parts, &fields, Sending::Nothing)).unwrap(),
            "GET /api/v1/me HTTP/1.1\r\nhost: identity:8081\r\nauthorization: Bearer client\r\n\
             accept: application/json\r\nx-forwarded-for: 10.0.0.7\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: gateway.example\r\nx-request-id: gw-id\r\n\r\n"
        );
        // An exchanged API key's token takes the place of the client's credentials.
        let fields = Fields {
            authorization: Some(HeaderValue::from_static("Bearer exchanged")),
            ..Fields::default()
        };
        assert_eq!(
            String::from_utf8(encode_head(&parts, &fields, Sending::Nothing)).unwrap(),
            "GET /api/v1/me HTTP/1.1\r\naccept: application/json\r\n\
             authorization: Bearer exchanged\r\n\r\n"
        );
    }
}
