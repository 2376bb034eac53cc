//! Forwarding: methods, paths, queries, headers, bodies, streams, limits, upstream failures.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::rig::*;

#[tokio::test]
async fn methods_paths_queries_and_bodies_pass_unchanged() {
    let r = rig(&[]).await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let a = r
            .http
            .call(method, "/api/v1/tickets/42/comments?page=2&q=a%20b")
            .bearer(&r.admin_token)
            .json(&json!({"text": "héllo"}))
            .send()
            .await;
        assert_eq!(a.status, 200, "{method}: {}", a.text);
        assert_eq!(a.body["method"], method);
        assert_eq!(a.body["path"], "/api/v1/tickets/42/comments");
        assert_eq!(a.body["query"], "page=2&q=a%20b");
        assert_eq!(a.body["body"], r#"{"text":"héllo"}"#);
        assert_eq!(
            a.body["headers"]["authorization"],
            format!("Bearer {}", r.admin_token)
        );
        assert_eq!(a.header("x-upstream"), Some("echo"));
    }
}

#[tokio::test]
async fn forwarding_headers_are_set_and_hop_by_hop_ones_dropped() {
    let r = rig(&[]).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let a = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("x-request-id", "client-req-1")
        .header("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "gopher")
        .header("forwarded", "for=6.6.6.6;proto=https;host=evil.test")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("x-custom", "kept")
        .send()
        .await;
    let h = &a.body["headers"];
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "client-sent X-Forwarded-For is not trusted"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(
        h["x-forwarded-host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(h["x-request-id"], "client-req-1");
    let tp = h["traceparent"].as_str().unwrap();
    assert!(tp.starts_with(&format!("00-{trace}-")), "{tp}");
    assert_ne!(
        tp,
        format!("00-{trace}-00f067aa0ba902b7-01"),
        "the gateway adds its own span"
    );
    assert!(
        h.get("x-private").is_none(),
        "a header named in Connection is hop-by-hop"
    );
    assert_eq!(h["x-custom"], "kept");
    // Response side: the upstream's hop-by-hop headers do not reach the client.
    assert!(a.header("proxy-authenticate").is_none());
    assert_eq!(a.header("x-request-id"), Some("client-req-1"));

    let insane = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("x-request-id", "bad id with spaces")
        .send()
        .await;
    assert_ne!(insane.body["headers"]["x-request-id"], "bad id with spaces");
}

#[tokio::test]
async fn server_sent_events_stream_through_live() {
    let r = rig(&[]).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let response = client
        .get(format!("{}/api/v1/tickets/stream", r.base))
        .bearer_auth(&r.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(&first[..], b"data: 0\n\n");
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let all_at = started.elapsed();
    assert_eq!(rest, b"data: 1\n\ndata: 2\n\n");
    assert!(
        first_at < Duration::from_millis(250) && all_at >= Duration::from_millis(550),
        "the first event came after {first_at:?}, the last after {all_at:?}"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let r = rig(&[]).await;
    let before = r.hits();
    let big = "x".repeat(70_000);
    let a = r
        .http
        .post("/api/v1/tickets")
        .bearer(&r.admin_token)
        .body("text/plain", big.clone())
        .send()
        .await;
    assert_problem(&a, 413, "payload_too_large");
    assert_eq!(r.hits(), before, "refused before reaching the upstream");
    // Chunked, without Content-Length.
    let chunks = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes_of(&"y".repeat(8192)))),
    );
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/tickets", r.base))
        .bearer_auth(&r.admin_token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Just under the limit passes.
    let ok = r
        .http
        .post("/api/v1/tickets")
        .bearer(&r.admin_token)
        .body("text/plain", "z".repeat(60_000))
        .send()
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["body"].as_str().unwrap().len(), 60_000);
}

#[tokio::test]
async fn oversized_targets_and_headers_are_refused_before_the_token_or_upstream() {
    let r = rig(&[]).await;
    let before = r.hits();
    let long = format!("/api/v1/tickets?q={}", "a".repeat(17_000));
    let a = r.http.get(&long).bearer(&r.admin_token).send().await;
    assert_problem(&a, 414, "uri_too_long");
    // Many headers that are each fine but add up to more than 16 KiB.
    let mut many = r.http.get("/api/v1/tickets").bearer(&r.admin_token);
    for i in 0..20 {
        many = many.header(&format!("x-filler-{i}"), &"f".repeat(900));
    }
    assert_problem(&many.send().await, 431, "headers_too_large");
    // One oversized token is refused by size, before the JWT check.
    let huge_token = "e".repeat(20_000);
    let a = r
        .http
        .get("/api/v1/tickets")
        .bearer(&huge_token)
        .send()
        .await;
    assert_problem(&a, 431, "headers_too_large");
    assert_eq!(r.hits(), before, "none of them reached the upstream");
    // Just under the cap passes.
    let mut fine = r.http.get("/api/v1/tickets").bearer(&r.admin_token);
    for i in 0..12 {
        fine = fine.header(&format!("x-filler-{i}"), &"f".repeat(900));
    }
    let a = fine.send().await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body["headers"]["x-filler-11"].as_str().unwrap().len(),
        900
    );
}

fn bytes_of(s: &str) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(s.to_owned())
}

#[tokio::test]
async fn a_down_upstream_is_a_fast_503_and_opens_the_circuit() {
    let r = rig(&[]).await;
    let started = Instant::now();
    let a = r
        .http
        .get("/api/v1/knowledge/articles")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_problem(&a, 503, "upstream_unavailable");
    assert!(a.header("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    for _ in 0..5 {
        r.http
            .get("/api/v1/knowledge/articles")
            .bearer(&r.admin_token)
            .send()
            .await;
    }
    // Open: answered without trying the upstream, with the time left as Retry-After.
    let open = r
        .http
        .get("/api/v1/knowledge/articles")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_problem(&open, 503, "upstream_unavailable");
    let wait: u64 = open.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    let ready = r.http.get("/health/ready").send().await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["upstreams"]["identity"], "ok");
    assert_eq!(ready.body["upstreams"]["knowledge"], "unavailable");
    assert!(
        ready.body["upstreams"].get("vault").is_none(),
        "only deployed services"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_within_its_timeout() {
    let r = rig(&[]).await;
    let started = Instant::now();
    let a = r
        .http
        .get("/api/v1/tickets/slow")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_problem(&a, 504, "upstream_timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}

#[tokio::test]
async fn unknown_paths_and_undeployed_services_are_404_and_health_is_public() {
    let r = rig(&[]).await;
    for path in [
        "/api/v1/nothing",
        "/api/v2/tickets",
        "/elsewhere",
        "/api/v1/credentials",
    ] {
        let a = r.http.get(path).bearer(&r.admin_token).send().await;
        assert_problem(&a, 404, "route_not_found");
    }
    let health = r.http.get("/health").send().await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    assert!(health.header("x-request-id").is_some());
    // The gateway's own routes answer GET only, and say so.
    let post = r.http.post("/health").send().await;
    assert_problem(&post, 405, "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let docs = r.http.get("/api/docs").send().await;
    assert_eq!(docs.status, 301);
    assert_eq!(docs.header("location"), Some("/api/docs/"));
    let missing = r.http.get("/api/docs/nothing.js").send().await;
    assert_problem(&missing, 404, "route_not_found");
    let jwks = r.http.get("/.well-known/jwks.json").send().await;
    assert_eq!(jwks.status, 200);
    assert!(!jwks.body["keys"].as_array().unwrap().is_empty());
}

/// What a raw upstream does with the `n`th request head (from 0) on a connection.
enum Reply {
    /// Writes these bytes and reads the next request.
    Keep(Vec<u8>),
    /// Writes these bytes and closes the connection.
    Last(Vec<u8>),
    /// Closes the connection without an answer.
    Hang,
}

/// A plain-TCP HTTP/1.1 upstream (requests without bodies) answering each request head as
/// `answer` says. Returns its URL and how many connections it accepted.
async fn raw_upstream(
    answer: fn(usize, &[u8]) -> Reply,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for n in 0.. {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        let mut chunk = [0u8; 4096];
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head: Vec<u8> = buf.drain(..end).collect();
                    match answer(n, &head) {
                        Reply::Keep(reply) => {
                            if socket.write_all(&reply).await.is_err() {
                                return;
                            }
                        }
                        Reply::Last(reply) => {
                            let _ = socket.write_all(&reply).await;
                            return;
                        }
                        Reply::Hang => return,
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// An upstream that answers three requests per connection and closes the connection when the
/// fourth arrives, unanswered (as a server does that closes idle keep-alive connections just
/// as a request is sent).
async fn closing_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    raw_upstream(|n, _| match n {
        3 => Reply::Hang,
        _ => Reply::Keep(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok".to_vec(),
        ),
    })
    .await
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_a_closed_one_costs_no_request() {
    let (url, accepted) = closing_upstream().await;
    let r = rig(&[("FLEETDESK_GATEWAY_UPSTREAM_KNOWLEDGE", url.as_str())]).await;
    for i in 0..10 {
        let a = r
            .http
            .get("/api/v1/knowledge/articles")
            .bearer(&r.admin_token)
            .send()
            .await;
        assert_eq!(a.status, 200, "request {i}: {}", a.text);
        assert_eq!(a.text, "ok");
    }
    // Three answers a connection: four connections for ten requests (a fresh one per
    // request would be ten), each fourth request sent again on a new connection.
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((4..=5).contains(&n), "{n} connections");
}

/// A gateway that trusts the proxies at 127.0.0.1 and in 10.0.0.0/8, with one request a minute
/// per client address to tickets.
async fn behind_trusted_proxies() -> Rig {
    rig(&[
        ("FLEETDESK_GATEWAY_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ("FLEETDESK_GATEWAY_RATE_LIMITS", "tickets ip 1/1m burst 1"),
    ])
    .await
}

/// A call to tickets through a trusted proxy that names the client chain `xff` and says the
/// client used `https://support.example.com`.
async fn via_proxy(r: &Rig, xff: &str) -> fleetdesk_testkit::Answer {
    r.http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("x-forwarded-for", xff)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "support.example.com")
        .send()
        .await
}

/// Behind a trusted proxy (an ingress controller), the client is the nearest untrusted address
/// in `X-Forwarded-For`: it is what the upstream is told (alone, so a service reading the last
/// entry finds the client), and what per-address limits count.
/// A client that is not a trusted proxy cannot claim another address.
#[tokio::test]
async fn trusted_proxies_pass_on_the_client_and_limits_count_it() {
    let r = behind_trusted_proxies().await;
    let from = |xff| via_proxy(&r, xff);
    let a = from("203.0.113.7, 10.1.2.3").await;
    assert_eq!(a.status, 200, "{}", a.text);
    let h = &a.body["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "support.example.com");
    // The same client again: its own budget is spent.
    let again = from("203.0.113.7, 10.1.2.3").await;
    assert_problem(&again, 429, "rate_limited");
    // Another client through the same proxies has its own.
    let other = from("198.51.100.9, 10.1.2.3").await;
    assert_eq!(other.status, 200, "{}", other.text);

    // Without trust, what the client says is ignored and the connection's address counts.
    let r = rig(&[("FLEETDESK_GATEWAY_RATE_LIMITS", "tickets ip 1/1m burst 1")]).await;
    let first = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["headers"]["x-forwarded-for"], "127.0.0.1");
    let spoofed = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("x-forwarded-for", "198.51.100.9")
        .send()
        .await;
    assert_problem(&spoofed, 429, "rate_limited");
}

/// Reads until the gateway closes the connection, which it must do within 4 s.
async fn assert_closed_soon(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(4), async {
        while let Ok(n) = stream.read(&mut buf).await
            && n > 0
        {}
    })
    .await;
    assert!(closed.is_ok(), "the connection was left open");
}

#[tokio::test]
async fn idle_and_slow_clients_are_closed_but_slow_answers_are_not() {
    use tokio::io::AsyncWriteExt;
    let r = rig(&[
        ("FLEETDESK_GATEWAY_IDLE_TIMEOUT_SECONDS", "1"),
        ("FLEETDESK_GATEWAY_TIMEOUT_TICKETS_SECONDS", "10"),
    ])
    .await;
    let address = r.base.trim_start_matches("http://").to_owned();

    // A head that never ends (slowloris), and a connection that never sends anything: closed
    // after one to two idle periods.
    let mut partial = tokio::net::TcpStream::connect(&address).await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nhost: gateway\r\n")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert_closed_soon(&mut partial).await;
    assert_closed_soon(&mut silent).await;

    // A keep-alive connection is closed once idle, not while it is used.
    let mut kept = tokio::net::TcpStream::connect(&address).await.unwrap();
    for _ in 0..3 {
        kept.write_all(b"GET /health HTTP/1.1\r\nhost: gateway\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"}") {
            let mut buf = [0u8; 4096];
            let n = tokio::io::AsyncReadExt::read(&mut kept, &mut buf)
                .await
                .unwrap();
            assert!(n > 0, "closed while in use");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_closed_soon(&mut kept).await;

    // An answer that takes three idle periods still arrives.
    let a = r
        .http
        .get("/api/v1/tickets/slow")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

/// An upstream that answers `HEAD` with a length and no body, and anything else with 100,000
/// bytes of neither length nor chunking: read until it closes the connection.
async fn close_delimited_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    raw_upstream(|_, head| {
        if head.starts_with(b"HEAD ") {
            return Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n".to_vec());
        }
        let mut reply = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n".to_vec();
        reply.extend_from_slice(&[b'x'; 100_000]);
        Reply::Last(reply) // the close ends the body
    })
    .await
}

/// A request body of unknown length goes up chunked and whole. An answer to `HEAD` has no body
/// whatever its length says, and its connection serves the next request; an answer with
/// neither length nor chunking is read until the upstream closes, and reaches the client whole.
#[tokio::test]
async fn chunked_requests_head_answers_and_close_delimited_answers_pass_whole() {
    let (url, accepted) = close_delimited_upstream().await;
    let r = rig(&[("FLEETDESK_GATEWAY_UPSTREAM_KNOWLEDGE", url.as_str())]).await;
    let client = reqwest::Client::new();
    let parts = futures_util::stream::iter(
        (0..5).map(|i| Ok::<_, std::io::Error>(bytes_of(&format!("part{i};")))),
    );
    let response = client
        .post(format!("{}/api/v1/tickets", r.base))
        .bearer_auth(&r.admin_token)
        .body(reqwest::Body::wrap_stream(parts))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let echoed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echoed["body"], "part0;part1;part2;part3;part4;");
    assert_eq!(echoed["headers"]["transfer-encoding"], "chunked");
    assert!(echoed["headers"].get("content-length").is_none());

    let articles = format!("{}/api/v1/knowledge/articles", r.base);
    let head = client
        .head(&articles)
        .bearer_auth(&r.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], "11");
    let get = client
        .get(&articles)
        .bearer_auth(&r.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 200);
    let body = get.bytes().await.unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().all(|&b| b == b'x'));
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the HEAD's connection served the GET"
    );
}

#[tokio::test]
async fn a_failed_trial_after_the_pause_opens_the_circuit_again_at_once() {
    let r = rig(&[
        ("FLEETDESK_GATEWAY_BREAKER_FAILURES", "3"),
        ("FLEETDESK_GATEWAY_BREAKER_OPEN_SECONDS", "1"),
    ])
    .await;
    let call = || async {
        let a = r
            .http
            .get("/api/v1/knowledge/articles")
            .bearer(&r.admin_token)
            .send()
            .await;
        assert_problem(&a, 503, "upstream_unavailable");
        // A refused connection says 5 s; the open circuit the time it has left (1 s).
        a.header("retry-after").unwrap_or_default().to_owned()
    };
    for _ in 0..3 {
        assert_eq!(call().await, "5", "tried");
    }
    assert_eq!(call().await, "1", "open");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call().await, "5", "the trial is tried");
    assert_eq!(call().await, "1", "and its failure opens the circuit again");
}

#[tokio::test]
async fn ipv6_clients_are_limited_by_their_64_and_forwarded_addresses_are_written_one_way() {
    let r = behind_trusted_proxies().await;
    let from = |xff| via_proxy(&r, xff);
    let a = from("2001:DB8:1:2::1").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["headers"]["x-forwarded-for"], "2001:db8:1:2::1");
    // Another address of the same /64 is the same client.
    let same = from("2001:db8:1:2:ffff::9").await;
    assert_problem(&same, 429, "rate_limited");
    // Another /64 is another client.
    let other = from("2001:db8:1:3::1").await;
    assert_eq!(other.status, 200, "{}", other.text);
    // An IPv4 address written as IPv6 is the IPv4 client.
    let mapped = from("::ffff:203.0.113.7").await;
    assert_eq!(mapped.status, 200, "{}", mapped.text);
    assert_eq!(mapped.body["headers"]["x-forwarded-for"], "203.0.113.7");
    let plain = from("203.0.113.7").await;
    assert_problem(&plain, 429, "rate_limited");
}
