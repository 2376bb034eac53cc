//! The gateway's HTTP/1.1 as bytes on a socket: what ordinary clients never show (pipelining,
//! HTTP/1.0, `100 Continue`, heads that must be refused).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rig::{Rig, rig};

/// A response as read from the wire.
struct Wire {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads more into `buf`; false when the connection is closed.
async fn more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
        .await
        .expect("the gateway answered within 5 s")
        .unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n > 0
}

/// Reads one response (to a request of `method`) from `stream`, leaving what follows it in
/// `buf`.
async fn response(stream: &mut TcpStream, buf: &mut Vec<u8>, method: &str) -> Wire {
    let (status, headers, len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(len) = parsed.parse(buf).unwrap() {
            let headers = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect::<Vec<_>>();
            break (parsed.code.unwrap(), headers, len);
        }
        assert!(more(stream, buf).await, "closed before a whole head");
    };
    buf.drain(..len);
    let mut wire = Wire {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" || status == 100 || status == 204 || status == 304 {
        return wire;
    }
    if let Some(length) = wire.header("content-length") {
        let length: usize = length.parse().unwrap();
        while buf.len() < length {
            assert!(more(stream, buf).await, "closed before the whole body");
        }
        wire.body = buf.drain(..length).collect();
    } else if wire.header("transfer-encoding") == Some("chunked") {
        loop {
            while !buf.windows(2).any(|w| w == b"\r\n") {
                assert!(more(stream, buf).await, "closed inside a chunked body");
            }
            let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < line_end + 2 + size + 2 {
                assert!(more(stream, buf).await, "closed inside a chunk");
            }
            wire.body
                .extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        while more(stream, buf).await {}
        wire.body = std::mem::take(buf);
    }
    wire
}

/// Whether the gateway closes `stream` (within 3 s) without sending anything more.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A connection to the rig's gateway.
async fn connect(r: &Rig) -> TcpStream {
    TcpStream::connect(r.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let r = rig(&[]).await;
    let mut stream = connect(&r).await;
    let token = &r.admin_token;
    // Three requests in one write, the second with a body.
    let requests = format!(
        "GET /health HTTP/1.1\r\nhost: gw\r\n\r\n\
         POST /api/v1/tickets?n=2 HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
         content-type: text/plain\r\ncontent-length: 5\r\n\r\nhello\
         HEAD /health HTTP/1.1\r\nhost: gw\r\n\r\n"
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let first = response(&mut stream, &mut buf, "GET").await;
    assert_eq!(first.status, 200);
    assert_eq!(json(&first.body)["status"], "ok");
    let second = response(&mut stream, &mut buf, "POST").await;
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    let echoed = json(&second.body);
    assert_eq!(echoed["query"], "n=2");
    assert_eq!(echoed["body"], "hello");
    let third = response(&mut stream, &mut buf, "HEAD").await;
    assert_eq!(third.status, 200);
    assert!(third.header("content-length").is_some());
    assert!(buf.is_empty(), "no body after the HEAD answer");
    assert!(third.header("date").is_some());
    assert_eq!(third.header("connection"), None, "kept alive");
    // A chunked body, then the client asks for the connection to be closed.
    let chunked = format!(
        "PUT /api/v1/tickets/7 HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         3\r\nabc\r\n4;ext=x\r\ndefg\r\n0\r\ntrailer: t\r\n\r\n"
    );
    stream.write_all(chunked.as_bytes()).await.unwrap();
    let fourth = response(&mut stream, &mut buf, "PUT").await;
    assert_eq!(fourth.status, 200);
    assert_eq!(json(&fourth.body)["body"], "abcdefg");
    assert_eq!(fourth.header("connection"), Some("close"));
    assert!(closed(&mut stream).await);
}

#[tokio::test]
async fn http_1_0_clients_get_keep_alive_only_when_they_ask() {
    let r = rig(&[]).await;
    let mut plain = connect(&r).await;
    plain
        .write_all(b"GET /health HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let answer = response(&mut plain, &mut buf, "GET").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(closed(&mut plain).await);

    let mut kept = connect(&r).await;
    for _ in 0..2 {
        kept.write_all(b"GET /health HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let answer = response(&mut kept, &mut buf, "GET").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("connection"), Some("keep-alive"));
    }

    // A streamed answer of unknown length: no chunking for HTTP/1.0, the close ends it.
    let mut streamed = connect(&r).await;
    let request = format!(
        "GET /api/v1/tickets/stream HTTP/1.0\r\nconnection: keep-alive\r\n\
         authorization: Bearer {}\r\n\r\n",
        r.admin_token
    );
    streamed.write_all(request.as_bytes()).await.unwrap();
    let answer = response(&mut streamed, &mut buf, "GET").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("transfer-encoding"), None);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.body, b"data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted() {
    let r = rig(&[]).await;
    let mut stream = connect(&r).await;
    let head = format!(
        "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {}\r\n\
         content-type: text/plain\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n",
        r.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let interim = response(&mut stream, &mut buf, "POST").await;
    assert_eq!(interim.status, 100);
    stream.write_all(b"body").await.unwrap();
    let answer = response(&mut stream, &mut buf, "POST").await;
    assert_eq!(answer.status, 200);
    assert_eq!(json(&answer.body)["body"], "body");

    // Refused before the body is wanted: no 100, and the connection is not used again.
    let before = r.hits();
    let mut refused = connect(&r).await;
    refused
        .write_all(
            b"POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\ncontent-length: 4\r\n\
              expect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let answer = response(&mut refused, &mut buf, "POST").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(closed(&mut refused).await);
    assert_eq!(r.hits(), before);
}

#[tokio::test]
async fn heads_that_could_be_read_two_ways_are_refused_and_the_connection_closed() {
    let r = rig(&[]).await;
    let token = &r.admin_token;
    let before = r.hits();
    let mut many = String::from("GET /health HTTP/1.1\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let cases = [
        // Request smuggling: two lengths, or a coding an upstream could read differently.
        (
            format!(
                "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
                 content-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
            "bad_request",
        ),
        (
            format!(
                "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
                 transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
            "bad_request",
        ),
        (
            format!(
                "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
                 content-length: 3, 4\r\n\r\nabc"
            ),
            400,
            "bad_request",
        ),
        (
            format!(
                "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
                 content-length: +3\r\n\r\nabc"
            ),
            400,
            "bad_request",
        ),
        ("NOT HTTP AT ALL\r\n\r\n".to_owned(), 400, "bad_request"),
        (
            "GET /health HTTP/1.1\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        (
            "GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        (many, 431, "headers_too_large"),
    ];
    for (request, status, code) in cases {
        let mut stream = connect(&r).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let answer = response(&mut stream, &mut buf, "POST").await;
        assert_eq!(answer.status, status, "{request}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(json(&answer.body)["code"], code, "{request}");
        assert_eq!(answer.header("connection"), Some("close"));
        assert!(closed(&mut stream).await, "{request}");
    }
    assert_eq!(r.hits(), before, "none reached the upstream");
}

/// An upstream answering every request with `size` bytes; the flag is set once a write of them
/// fails (the gateway let the connection go).
async fn big_upstream(size: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let flag = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    if !more(&mut socket, &mut head).await {
                        return;
                    }
                }
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                socket.write_all(answer.as_bytes()).await.unwrap();
                let block = vec![b'x'; 1 << 20];
                for _ in 0..size / block.len() {
                    if socket.write_all(&block).await.is_err() {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (url, cut)
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_is_let_go() {
    use std::sync::atomic::Ordering;
    const SIZE: usize = 256 << 20;
    let (url, cut) = big_upstream(SIZE).await;
    let r = rig(&[
        ("FLEETDESK_GATEWAY_UPSTREAM_KNOWLEDGE", url.as_str()),
        ("FLEETDESK_GATEWAY_SEND_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let mut stream = connect(&r).await;
    let request = format!(
        "GET /api/v1/knowledge/big HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {}\r\n\r\n",
        r.admin_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Not read: the gateway's writes stall, and after a second it lets both connections go.
    let started = std::time::Instant::now();
    while !cut.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the upstream was still being read after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut got = 0usize;
    let mut chunk = vec![0u8; 1 << 20];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await
        && n > 0
    {
        got += n;
    }
    assert!(
        got > 0 && got < SIZE,
        "{got} bytes of {SIZE}, then the close"
    );
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_served() {
    let r = rig(&[]).await;
    let mut stream = connect(&r).await;
    stream.set_nodelay(true).unwrap();
    let request = format!(
        "GET /api/v1/tickets?slow=1 HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {}\r\n\r\n",
        r.admin_token
    );
    for byte in request.as_bytes() {
        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
    }
    let mut buf = Vec::new();
    let answer = response(&mut stream, &mut buf, "GET").await;
    assert_eq!(answer.status, 200);
    assert_eq!(json(&answer.body)["query"], "slow=1");
}

#[tokio::test]
async fn a_stop_answers_the_requests_in_flight_and_closes_the_rest() {
    let r = rig(&[("FLEETDESK_GATEWAY_TIMEOUT_TICKETS_SECONDS", "10")]).await;
    let address = r.base.trim_start_matches("http://").to_owned();
    // A keep-alive connection between requests, and one whose request takes 3 s.
    let mut idle = connect(&r).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(response(&mut idle, &mut buf, "GET").await.status, 200);
    let mut slow = connect(&r).await;
    let request = format!(
        "GET /api/v1/tickets/slow HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {}\r\n\r\n",
        r.admin_token
    );
    slow.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    r.stopper.stop();
    // The idle connection is closed at once; the request in flight is answered, and is the
    // last on its connection.
    assert!(closed(&mut idle).await);
    let mut buf = Vec::new();
    let answer = response(&mut slow, &mut buf, "GET").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(closed(&mut slow).await);
    // Nothing new is accepted.
    let refused = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&address)).await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a connection was accepted after the stop"
    );
}

#[tokio::test]
async fn a_clients_bad_or_slow_body_is_its_fault_and_never_opens_the_upstreams_circuit() {
    // Two upstream failures would open the circuit: each case below comes three times.
    let r = rig(&[("FLEETDESK_GATEWAY_BREAKER_FAILURES", "2")]).await;
    let token = &r.admin_token;
    let head = |framing: &str| {
        format!(
            "POST /api/v1/tickets HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {token}\r\n\
             {framing}\r\n\r\n"
        )
    };
    let cases = [
        // Chunked framing that breaks off into something that is not a chunk size.
        (
            head("transfer-encoding: chunked") + "5\r\nhello\r\nzz\r\n",
            false,
            400,
            "bad_request_body",
        ),
        // A chunk longer than its size says.
        (
            head("transfer-encoding: chunked") + "2\r\nhello\r\n",
            false,
            400,
            "bad_request_body",
        ),
        // A body cut short: the client stops sending and closes its side.
        (
            head("content-length: 10") + "abcd",
            true,
            400,
            "bad_request_body",
        ),
        // A body that stalls past the route's timeout (1 s): the client is slow, not the
        // upstream.
        (
            head("content-length: 10") + "abcd",
            false,
            408,
            "request_timeout",
        ),
    ];
    for (request, half_close, status, code) in cases {
        for _ in 0..3 {
            let mut stream = connect(&r).await;
            stream.write_all(request.as_bytes()).await.unwrap();
            if half_close {
                stream.shutdown().await.unwrap();
            }
            let mut buf = Vec::new();
            let answer = response(&mut stream, &mut buf, "POST").await;
            assert_eq!(answer.status, status, "{request}");
            assert_eq!(json(&answer.body)["code"], code, "{request}");
            assert_eq!(answer.header("connection"), Some("close"), "{request}");
            assert!(closed(&mut stream).await, "{request}");
        }
    }
    // The upstream is not blamed: its circuit is closed, and the next request goes through.
    let ok = r
        .http
        .post("/api/v1/tickets")
        .bearer(token)
        .json(&serde_json::json!({"subject": "after"}))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["body"], r#"{"subject":"after"}"#);
}
