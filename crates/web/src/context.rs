//! Per-request context: request id, W3C trace context, the request span, access log, metrics.
//!
//! The [`observe`] middleware wraps every request. It keeps a sane client `X-Request-Id` (or
//! makes one), continues an incoming `traceparent` (or starts a trace), runs the rest of the
//! request inside a span and a task-local [`RequestContext`] (so an error can quote its trace
//! id), echoes `X-Request-Id`, logs one line and records request metrics per route pattern.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use rand::RngCore;
use tracing::Instrument;

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// `X-Request-Id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What identifies the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The client's `X-Request-Id` when sane, otherwise a new one.
    pub request_id: String,
    /// 32 lowercase hex digits, continued from `traceparent` or new.
    pub trace_id: String,
    /// 16 hex digits naming this service's part of the trace.
    pub span_id: String,
}

impl RequestContext {
    /// The request id as a header value, given the `X-Request-Id` the request came with: that
    /// value itself when it was kept (a cheap copy), else the new id's.
    pub fn request_id_header(&self, sent: Option<&HeaderValue>) -> Option<HeaderValue> {
        match sent {
            Some(sent) if sent.as_bytes() == self.request_id.as_bytes() => Some(sent.clone()),
            _ => HeaderValue::from_str(&self.request_id).ok(),
        }
    }

    /// The `traceparent` to send downstream (HTTP calls, events).
    pub fn traceparent(&self) -> String {
        let mut t = String::with_capacity(55);
        for part in ["00-", &self.trace_id, "-", &self.span_id, "-01"] {
            t.push_str(part);
        }
        t
    }
}

/// The service name that labels metrics and logs; put it in `app_data`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceName(pub &'static str);

/// The context of the request being served, if any.
pub fn current() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// The trace id of the request being served, or `-` outside a request.
pub fn trace_id() -> String {
    CONTEXT
        .try_with(|c| c.trace_id.clone())
        .unwrap_or_else(|_| "-".into())
}

/// `bytes` in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = vec![0u8; 2 * bytes.len()];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    // Only hex digits were written.
    String::from_utf8(hex).unwrap_or_default()
}

/// Whether `s` is lower-case hex digits only.
fn is_hex(s: &[u8]) -> bool {
    s.iter().all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The trace id of a valid `traceparent` (version 00, non-zero ids), else `None`.
///
/// Version 00 is exactly `00-<32 hex>-<16 hex>-<2 hex>`, so the fields are read at their
/// places in the value's bytes rather than split out of a string: every request through a
/// proxy carries one, and this runs on each.
pub fn parse_traceparent(value: &[u8]) -> Option<String> {
    let value = value.trim_ascii();
    if value.len() != 55 || !value.starts_with(b"00-") || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..]);
    let valid = is_hex(trace)
        && is_hex(parent)
        && is_hex(flags)
        && trace.iter().any(|&b| b != b'0')
        && parent.iter().any(|&b| b != b'0');
    valid.then(|| ascii(trace))
}

/// Whether a client-sent request id is safe to keep and echo.
pub fn is_sane_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Checked ASCII bytes as a string (empty for anything else, which callers rule out first).
fn ascii(bytes: &[u8]) -> String {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .unwrap_or_default()
}

impl RequestContext {
    /// The context for a request that sent these `X-Request-Id` and `traceparent` values
    /// (the header values' bytes: neither is kept unless it is plain ASCII).
    pub fn for_request(request_id: Option<&[u8]>, traceparent: Option<&[u8]>) -> Self {
        let request_id = request_id.filter(|v| is_sane_request_id(v)).map_or_else(
            // Encoded into a buffer: `to_string` goes through the formatting machinery.
            || {
                let mut buf = uuid::Uuid::encode_buffer();
                uuid::Uuid::now_v7()
                    .hyphenated()
                    .encode_lower(&mut buf)
                    .to_owned()
            },
            ascii,
        );
        // The span id and, unless the trace continues, the trace id: one draw for both.
        let mut random = [0u8; 24];
        rand::rng().fill_bytes(&mut random);
        let (trace, span) = random.split_at(16);
        let trace_id = traceparent
            .and_then(parse_traceparent)
            .unwrap_or_else(|| hex(trace));
        RequestContext {
            request_id,
            trace_id,
            span_id: hex(span),
        }
    }
}

/// Runs `work` as the request `ctx` names: [`current`] and [`trace_id`] see it.
pub async fn within<F: std::future::Future>(ctx: RequestContext, work: F) -> F::Output {
    CONTEXT.scope(ctx, work).await
}

fn context_for(req: &ServiceRequest) -> RequestContext {
    let header = |name: &HeaderName| req.headers().get(name).map(HeaderValue::as_bytes);
    RequestContext::for_request(header(&REQUEST_ID), header(&TRACEPARENT))
}

/// The middleware; install with `actix_web::middleware::from_fn(observe)`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let ctx = context_for(&req);
    let service = req
        .app_data::<ServiceName>()
        .map(|s| s.0)
        .unwrap_or("fleetdesk");
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        service,
        method = %method,
        path = %req.path(),
        request_id = %ctx.request_id,
        trace_id = %ctx.trace_id,
    );
    let request_id = ctx.request_id_header(req.headers().get(REQUEST_ID));
    let result = CONTEXT
        .scope(ctx, next.call(req))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let (code, route) = match &result {
        Ok(res) => (
            res.status(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
        ),
        Err(e) => (e.as_response_error().status_code(), "unmatched".into()),
    };
    let status = code.as_u16();
    let _entered = span.enter();
    if route.starts_with("/health") || route == "/metrics" {
        tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    } else {
        tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    }
    record_request(service, method.as_str(), &route, code.as_str(), elapsed);
    let mut res = result?;
    if let Some(value) = request_id {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// Counts a served request in `http_requests_total` and `http_request_duration_seconds`.
pub fn record_request(
    service: &str,
    method: &str,
    route: &str,
    status: &str,
    elapsed: std::time::Duration,
) {
    fleetdesk_telemetry::counter(
        "http_requests_total",
        &[
            ("service", service),
            ("method", method),
            ("route", route),
            ("status", status),
        ],
    )
    .increment(1);
    fleetdesk_telemetry::histogram(
        "http_request_duration_seconds",
        &[("service", service), ("method", method), ("route", route)],
    )
    .record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_lower_hex_uuids_and_differ_every_time() {
        let a = RequestContext::for_request(None, None);
        let b = RequestContext::for_request(None, None);
        for c in [&a, &b] {
            assert!(
                c.trace_id.len() == 32 && is_hex(c.trace_id.as_bytes()),
                "{c:?}"
            );
            assert!(
                c.span_id.len() == 16 && is_hex(c.span_id.as_bytes()),
                "{c:?}"
            );
            let id = uuid::Uuid::parse_str(&c.request_id).unwrap();
            assert_eq!(id.hyphenated().to_string(), c.request_id);
            assert_eq!(id.get_version_num(), 7);
        }
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
        assert_ne!(a.request_id, b.request_id);
        assert_eq!(
            a.traceparent(),
            format!("00-{}-{}-01", a.trace_id, a.span_id)
        );
        let kept = RequestContext::for_request(
            Some(b"req-1"),
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(kept.request_id, "req-1");
        assert_eq!(kept.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(kept.span_id, "00f067aa0ba902b7");
    }

    #[test]
    fn a_valid_traceparent_is_continued_and_a_bad_one_is_not() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(good.as_bytes()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // Surrounding white space is not part of the value.
        assert_eq!(
            parse_traceparent(format!(" {good}\t").as_bytes()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1F",
            // The right length, with a separator out of place.
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90\u{e9}7-01",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b\xff-01"),
            None
        );
    }

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        assert!(is_sane_request_id(b"abc-123_x.y:z"));
        assert!(is_sane_request_id("a".repeat(128).as_bytes()));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"with space"));
        assert!(!is_sane_request_id("a".repeat(129).as_bytes()));
        assert!(!is_sane_request_id(b"inject\r\nheader"));
        assert!(!is_sane_request_id("caf\u{e9}".as_bytes()));
        assert!(!is_sane_request_id(b"bin\xff"));
        let kept = RequestContext::for_request(Some(b"bin\xff"), None);
        assert_eq!(
            uuid::Uuid::parse_str(&kept.request_id)
                .unwrap()
                .get_version_num(),
            7
        );
        // The answer's X-Request-Id: the one sent when kept, else the new one.
        let sent = HeaderValue::from_static("req-1");
        let ctx = RequestContext::for_request(Some(sent.as_bytes()), None);
        assert_eq!(ctx.request_id_header(Some(&sent)), Some(sent));
        let bad = HeaderValue::from_static("with space");
        let ctx = RequestContext::for_request(Some(bad.as_bytes()), None);
        let echoed = ctx.request_id_header(Some(&bad)).unwrap();
        assert_eq!(echoed.to_str().unwrap(), ctx.request_id);
        assert_ne!(echoed, bad);
    }
}
