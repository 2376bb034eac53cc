//! The client side of the gateway's HTTP/1.1: request heads parsed, request bodies read as
//! they are asked for, responses written, one request after another on a connection.
//!
//! It is the server half of what [`crate::upstream`] is for the upstreams, and shares its body
//! decoding. One task serves a connection: it reads a head, hands the request to
//! [`crate::handle`], whose body reads the same socket when it is polled, and writes the
//! response head together with as much of the body as is at hand (one `writev` for an answer
//! that has arrived whole). There is no channel between a reading task and the handler, as
//! hyper's server had, and a response head is encoded once, straight from its header map and
//! the fields the gateway adds (see [`crate::edge::Added`]).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fleetdesk_web::ApiError;
use fleetdesk_web::error::ErrorKind;
use futures_util::FutureExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::Gateway;
use crate::body::{self, GwBody};
use crate::edge::Added;
use crate::proxy::list;
use crate::server::Peer;
use crate::upstream::{Chunk, Reading, Step, bad, content_length, head_end, make_room, step};

/// The most header fields in a request head (hyper's limit was 100).
const MAX_HEADERS: usize = 128;

/// Room made in a connection's read buffer before a read.
const READ_SIZE: usize = 8 * 1024;

/// Pieces gathered before they are sent (a response whose body comes in many small frames at
/// once).
const MAX_PARTS: usize = 16;

/// Pieces given to one `writev`.
const WRITE_PARTS: usize = 20;

/// A client's connection: its socket, and what has been read from it and not yet used. Shared
/// by the connection's serving loop and the body of the request being served.
pub struct ClientIo {
    stream: TcpStream,
    /// A request head, then its body, then the next head (pipelining).
    buf: RefCell<BytesMut>,
    /// Where the current request's body is.
    reading: Cell<Reading>,
    /// `100 Continue` is owed before the body is first read.
    continue_due: Cell<bool>,
    /// How long the client may take to make room for more of an answer.
    send_timeout: Duration,
}

impl ClientIo {
    pub fn new(stream: TcpStream, send_timeout: Duration) -> Self {
        Self {
            stream,
            send_timeout,
            buf: RefCell::new(BytesMut::with_capacity(READ_SIZE)),
            reading: Cell::new(Reading::Done),
            continue_due: Cell::new(false),
        }
    }

    /// The socket, once nothing else holds the connection.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Reads into the buffer's spare room, made first if there is little. A read that leaves
    /// the socket empty (it filled less than the room) clears the socket's readiness, as
    /// tokio's own `poll_read` does: the next read waits for epoll rather than costing a
    /// system call that finds nothing.
    fn poll_fill(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut buf = self.buf.borrow_mut();
        make_room(&mut buf, READ_SIZE);
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            let room = buf.capacity() - buf.len();
            match self.stream.try_read_buf(&mut *buf) {
                Ok(n) => {
                    if n > 0 && n < room {
                        let _ = self
                            .stream
                            .try_io(Interest::READABLE, || Err::<(), _>(would_block()));
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes all of `parts`, in as few system calls as the socket takes.
    async fn write_all(&self, parts: &[Bytes]) -> io::Result<()> {
        for group in parts.chunks(WRITE_PARTS) {
            let mut slices = [IoSlice::new(&[]); WRITE_PARTS];
            for (slice, part) in slices.iter_mut().zip(group) {
                *slice = IoSlice::new(part);
            }
            let mut left = &mut slices[..group.len()];
            IoSlice::advance_slices(&mut left, 0);
            while !left.is_empty() {
                match self.stream.try_write_vectored(left) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => IoSlice::advance_slices(&mut left, written),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // A client that stops reading its answer is let go (a timer only
                        // when the socket's buffer is full).
                        tokio::time::timeout(self.send_timeout, self.stream.writable())
                            .await
                            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Writes the `100 Continue` a request asked for, if it is still owed.
    fn poll_continue(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        while self.continue_due.get() {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(CONTINUE) {
                Ok(n) if n == CONTINUE.len() => self.continue_due.set(false),
                // A fresh connection's send buffer takes 25 bytes whole; if not, give up on it.
                Ok(_) => return Poll::Ready(Err(bad("the 100 Continue was cut short"))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

/// A request's body, read from the client's connection as it is polled: `Content-Length`
/// bytes, or chunked (decoded). Trailer fields are read and dropped.
pub struct ClientBody(Rc<ClientIo>);

impl Body for ClientBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let io = &self.0;
        if io.reading.get() == Reading::Done {
            return Poll::Ready(None);
        }
        if let Err(e) = ready!(io.poll_continue(cx)) {
            io.reading.set(Reading::Failed);
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let mut reading = io.reading.get();
            let stepped = step(&mut reading, &mut io.buf.borrow_mut());
            io.reading.set(reading);
            match stepped {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Step::Done) => return Poll::Ready(None),
                Ok(Step::More) => {}
                Err(e) => {
                    io.reading.set(Reading::Failed);
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match ready!(io.poll_fill(cx)) {
                Ok(0) => {
                    io.reading.set(Reading::Failed);
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "the body was cut short");
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(_) => {}
                Err(e) => {
                    io.reading.set(Reading::Failed);
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.reading.get() == Reading::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.0.reading.get() {
            Reading::Done => SizeHint::with_exact(0),
            Reading::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

fn bad_head(detail: &'static str) -> ApiError {
    ApiError::bad_request("bad_request", detail)
}

/// A request read from a head, and whether the client will take another answer on this
/// connection after its own.
struct Head {
    request: Request<ClientBody>,
    keep_alive: bool,
}

/// Parses a request head at the start of the buffer; `Ok(None)` while it is not whole.
fn parse_head(io: &Rc<ClientIo>) -> Result<Option<Head>, ApiError> {
    let mut buf = io.buf.borrow_mut();
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(&buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                ErrorKind::HeadersTooLarge,
                "headers_too_large",
                format!("the request has more than {MAX_HEADERS} header fields"),
            ));
        }
        Err(_) => return Err(bad_head("the request head is not valid HTTP/1.1")),
    };
    let version = if parsed.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad_head("the request method is not valid"))?;
    // Where the target and each field are in the buffer: they are then shared with it, not
    // copied.
    let start = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - start;
    let path = parsed.path.unwrap_or_default();
    let target = (offset(path.as_bytes()), path.len());
    let spans: Vec<(usize, usize, usize, usize)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                offset(h.name.as_bytes()),
                h.name.len(),
                offset(h.value),
                h.value.len(),
            )
        })
        .collect();
    let head = buf.split_to(len).freeze();
    drop(buf);
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1))
        .map_err(|_| bad_head("the request target is not a valid URI"))?;
    let mut headers = HeaderMap::with_capacity(spans.len() + 8);
    for &(name, name_len, value, value_len) in &spans {
        let name = crate::proxy::header_name(&head[name..name + name_len])
            .map_err(|_| bad_head("a header field's name is not valid"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|_| bad_head("a header field's value is not valid"))?;
        headers.append(name, value);
    }

    // RFC 9112 §3.2: one `Host`, and in HTTP/1.1 always one (two could name different hosts
    // to the gateway and to an upstream or a cache).
    let hosts = headers.get_all(header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
        return Err(bad_head(
            "an HTTP/1.1 request needs exactly one Host header field",
        ));
    }
    let mut keep_alive = version == Version::HTTP_11;
    for token in list(&headers, &header::CONNECTION) {
        if token.eq_ignore_ascii_case("close") {
            keep_alive = false;
            break;
        }
        if token.eq_ignore_ascii_case("keep-alive") {
            keep_alive = true;
        }
    }
    // The body's length (RFC 9112 §6.3). A request that says it two ways, or in a way the
    // gateway and an upstream could read differently, is refused (request smuggling).
    let reading = if headers.contains_key(header::TRANSFER_ENCODING) {
        let mut codings = list(&headers, &header::TRANSFER_ENCODING);
        let only_chunked = codings
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
            && codings.next().is_none();
        if version != Version::HTTP_11
            || headers.contains_key(header::CONTENT_LENGTH)
            || !only_chunked
        {
            return Err(bad_head(
                "Transfer-Encoding must be `chunked` alone, without Content-Length, in HTTP/1.1",
            ));
        }
        Reading::Chunked(Chunk::Size)
    } else {
        match content_length(&headers) {
            Some(Ok(n)) => Reading::Length(n),
            Some(Err(())) => return Err(bad_head("Content-Length is not one number")),
            None => Reading::Done,
        }
    };
    let reading = if reading == Reading::Length(0) {
        Reading::Done
    } else {
        reading
    };
    io.reading.set(reading);
    io.continue_due.set(
        reading != Reading::Done
            && version == Version::HTTP_11
            && headers
                .get(header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")),
    );

    let mut request = Request::new(ClientBody(io.clone()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Head {
        request,
        keep_alive,
    }))
}

/// The next request head: `Ok(None)` when the client closed the connection (or it failed)
/// before sending one whole.
async fn read_head(io: &Rc<ClientIo>, max_head: usize) -> Result<Option<Head>, ApiError> {
    // Bytes already looked at for the head's end: it is parsed once it has come.
    let mut scanned = 0;
    loop {
        let buffered = io.buf.borrow().len();
        if buffered > 0 {
            let whole = head_end(&io.buf.borrow(), scanned);
            scanned = buffered;
            if whole && let Some(head) = parse_head(io)? {
                return Ok(Some(head));
            }
            if buffered > max_head {
                return Err(ApiError::new(
                    ErrorKind::HeadersTooLarge,
                    "headers_too_large",
                    format!("the request head is over {max_head} bytes"),
                ));
            }
        }
        match poll_fn(|cx| io.poll_fill(cx)).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Serves requests on a connection until the client closes it, asks for it to be closed, or
/// a request ends in a way that leaves it out of step; or, once the gateway is stopping,
/// after the request in flight.
pub(crate) async fn serve(gw: &Gateway, peer: &Rc<Peer>, io: &Rc<ClientIo>, max_head: usize) {
    loop {
        let head = match read_head(io, max_head).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refused) => {
                let _serving = peer.begin();
                // The answer to a head that cannot be served; the connection is closed after it.
                let answer = body::problem(&refused);
                let added = Added::default();
                let _ = write_response(io, answer, &added, false, Version::HTTP_11, false).await;
                return;
            }
        };
        let serving = peer.begin();
        let Head {
            request,
            keep_alive,
        } = head;
        let head_request = request.method() == Method::HEAD;
        let version = request.version();
        let (response, added) = crate::handle(gw, peer, request).await;
        // A body left unread (refused before it was read, or cut short) leaves the
        // connection out of step: it is closed after the answer.
        let keep = keep_alive && io.reading.get() == Reading::Done && !peer.stopping();
        let kept = write_response(io, response, &added, head_request, version, keep).await;
        drop(serving);
        if !matches!(kept, Ok(true)) {
            return;
        }
    }
}

/// How a response body is framed on the way to the client.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// None is sent (`HEAD`, 1xx, 204, 304).
    Bodiless,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (an HTTP/1.1 client, a length not known).
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, a length not known).
    Close,
}

/// Writes `response`, with the fields the gateway adds; `Ok(true)` when the connection can
/// serve another request.
async fn write_response(
    io: &ClientIo,
    response: Response<GwBody>,
    added: &Added<'_>,
    head_request: bool,
    version: Version,
    keep: bool,
) -> io::Result<bool> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let size = body.size_hint().exact();
    let framing = if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Bodiless
    } else {
        match size {
            Some(n) => Framing::Length(n),
            None if version == Version::HTTP_11 => Framing::Chunked,
            None => Framing::Close,
        }
    };
    let keep = keep && framing != Framing::Close;
    let head = encode_head(
        status,
        &parts.headers,
        added,
        framing,
        size,
        head_request,
        version,
        keep,
    );
    if framing == Framing::Bodiless {
        io.write_all(&[head]).await?;
        return Ok(keep);
    }

    // The head goes with the body's frames that are at hand, in one write; a frame that is
    // not at hand yet sends what is gathered first (server-sent events pass through live).
    let mut parts: Vec<Bytes> = Vec::with_capacity(4);
    parts.push(head);
    let mut sent: u64 = 0;
    loop {
        let frame = match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).now_or_never() {
            Some(frame) => frame,
            None => {
                io.write_all(&parts).await?;
                parts.clear();
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                // Cut short: the client must not take what it got for the whole answer.
                let _ = io.write_all(&parts).await;
                return Err(e);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        sent += data.len() as u64;
        match framing {
            Framing::Length(n) if sent > n => {
                let _ = io.write_all(&parts).await;
                return Err(bad("the body is longer than its length"));
            }
            Framing::Chunked => {
                let mut line = itoa_hex(data.len());
                line.extend_from_slice(b"\r\n");
                parts.push(Bytes::from(line));
                parts.push(data);
                parts.push(Bytes::from_static(b"\r\n"));
            }
            _ => parts.push(data),
        }
        if parts.len() >= MAX_PARTS {
            io.write_all(&parts).await?;
            parts.clear();
        }
    }
    if framing == Framing::Chunked {
        parts.push(Bytes::from_static(b"0\r\n\r\n"));
    }
    io.write_all(&parts).await?;
    if let Framing::Length(n) = framing
        && sent != n
    {
        return Err(bad("the body is shorter than its length"));
    }
    Ok(keep)
}

/// `n` in hexadecimal.
fn itoa_hex(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    let digits = usize::BITS as usize / 4 - (n.leading_zeros() as usize / 4);
    for i in (0..digits.max(1)).rev() {
        out.push(b"0123456789abcdef"[(n >> (i * 4)) & 0xf]);
    }
    out
}

/// The status line and header fields, the gateway's own among them (in place of the
/// response's of the same names). The framing is the gateway's to say, whatever the
/// response's own headers hold; `Date` is added when it has none (RFC 9110 §6.6.1).
#[allow(clippy::too_many_arguments)]
fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    added: &Added<'_>,
    framing: Framing,
    size: Option<u64>,
    head_request: bool,
    version: Version,
    keep: bool,
) -> Bytes {
    let fields: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    // The gateway's own fields are about 450 bytes with rate-limit fields, 700 with CORS.
    let mut out = Vec::with_capacity(fields + 1024);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    let mut has_date = false;
    let mut has_policy = false;
    for (name, value) in headers {
        if added.replaces(name) {
            continue;
        }
        has_date |= name == header::DATE;
        has_policy |= name == header::CONTENT_SECURITY_POLICY;
        if name == header::CONTENT_LENGTH {
            // A `HEAD` or 304 answer keeps the length of what a `GET` would get.
            if framing != Framing::Bodiless || status == StatusCode::NO_CONTENT {
                continue;
            }
            has_length = true;
        } else if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    added.write(&mut out, has_policy);
    if !has_date {
        out.extend_from_slice(b"date: ");
        date::now(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    let length = match framing {
        Framing::Length(n) => Some(n),
        Framing::Bodiless if head_request && !has_length => size,
        _ => None,
    };
    if let Some(n) = length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep {
        out.extend_from_slice(b"connection: close\r\n");
    } else if version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The `Date` header's value, made once a second per worker thread.
mod date {
    use std::cell::RefCell;

    thread_local! {
        static NOW: RefCell<(i64, [u8; 29])> = const { RefCell::new((i64::MIN, [0; 29])) };
    }

    pub fn now(with: impl FnOnce(&[u8])) {
        NOW.with(|now| {
            let mut now = now.borrow_mut();
            let time = chrono::Utc::now();
            if time.timestamp() != now.0 {
                let text = time.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
                if text.len() == 29 {
                    now.1.copy_from_slice(text.as_bytes());
                }
                now.0 = time.timestamp();
            }
            with(&now.1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_lower_case_hexadecimal() {
        for (n, text) in [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000")] {
            assert_eq!(itoa_hex(n), text.as_bytes(), "{n}");
        }
        assert_eq!(itoa_hex(usize::MAX).len(), usize::BITS as usize / 4);
    }

    #[test]
    fn the_gateways_fields_take_the_place_of_the_answers_own_once_each() {
        let policy = crate::limits::Policy::parse("* subject 100/1m burst 10").unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("x-request-id", "from-upstream"),
            ("x-frame-options", "ALLOWALL"),
            ("vary", "Accept"),
            ("ratelimit", "upstream's own"),
            ("content-security-policy", "default-src 'self'"),
            ("date", "Mon, 07 Dec 2026 10:00:00 GMT"),
        ] {
            headers.append(
                hyper::header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let added = Added {
            request_id: Some(HeaderValue::from_static("req-1")),
            origin: Some(HeaderValue::from_static("https://app.example")),
            docs: false,
            rate: Some(crate::limits::Decision {
                policy: &policy,
                allowed: true,
                remaining: 41,
                reset: 7,
                retry_after: 0,
            }),
        };
        let head = encode_head(
            StatusCode::OK,
            &headers,
            &added,
            Framing::Length(2),
            Some(2),
            false,
            Version::HTTP_11,
            true,
        );
        let text = std::str::from_utf8(&head).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        let field = |name: &str| -> Vec<&str> {
            lines
                .iter()
                .filter_map(|l| l.split_once(": "))
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .collect()
        };
        assert_eq!(lines[0], "HTTP/1.1 200 OK");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        assert_eq!(field("x-request-id"), ["req-1"]);
        assert_eq!(field("x-frame-options"), ["DENY"]);
        assert_eq!(field("vary"), ["Origin"]);
        assert_eq!(
            field("access-control-allow-origin"),
            ["https://app.example"]
        );
        assert_eq!(field("ratelimit"), ["\"all-subject\";r=41;t=7"]);
        assert_eq!(field("ratelimit-policy"), ["\"all-subject\";q=100;w=60"]);
        assert_eq!(field("x-ratelimit-limit"), ["100"]);
        assert_eq!(field("x-ratelimit-remaining"), ["41"]);
        assert_eq!(field("x-ratelimit-reset"), ["7"]);
        // The answer's own policy and date are kept; no second one is added.
        assert_eq!(field("content-security-policy"), ["default-src 'self'"]);
        assert_eq!(field("date"), ["Mon, 07 Dec 2026 10:00:00 GMT"]);
        assert_eq!(field("content-type"), ["application/json"]);
        assert_eq!(field("content-length"), ["2"]);
        assert_eq!(field("x-content-type-options"), ["nosniff"]);

        // Without a policy of its own or a date, the answer gets the gateway's; with no
        // origin, rate decision or id, the answer's own fields of those names stay.
        let mut bare = HeaderMap::new();
        bare.insert(
            hyper::header::HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("from-upstream"),
        );
        bare.insert(hyper::header::VARY, HeaderValue::from_static("Accept"));
        let head = encode_head(
            StatusCode::NOT_FOUND,
            &bare,
            &Added::default(),
            Framing::Length(0),
            Some(0),
            false,
            Version::HTTP_11,
            false,
        );
        let text = std::str::from_utf8(&head).unwrap();
        for line in [
            "x-request-id: from-upstream",
            "vary: Accept",
            "content-security-policy: default-src 'none'; frame-ancestors 'none'",
            "connection: close",
            "date: ",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("ratelimit"), "{text}");
    }

    #[test]
    fn the_date_is_an_http_date() {
        let mut text = Vec::new();
        date::now(|d| text.extend_from_slice(d));
        let text = String::from_utf8(text).unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc2822(&text.replace("GMT", "+0000")).is_ok(),
            "{text}"
        );
    }
}
