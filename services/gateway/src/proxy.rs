//! Forwarding: route, authenticate, stream the request up and the response back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use fleetdesk_auth::TokenError;
use fleetdesk_web::ApiError;
use fleetdesk_web::context;
use fleetdesk_web::error::ErrorKind;
use futures_util::StreamExt;
use hyper::header::{HeaderName as UpName, HeaderValue as UpValue};

use crate::Gateway;
use crate::auth::Exchange;
use crate::config::UpstreamConfig;
use crate::limits::{Decision, KeyKind};
use crate::upstream::{self as client, SendError, UpBody};

/// An upstream with its circuit breaker.
pub struct Upstream {
    /// Where it is.
    pub config: UpstreamConfig,
    /// `host:port` of its base URL: where to connect.
    authority: String,
    /// The same, as the `Host` header it is sent.
    host: Option<UpValue>,
    failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
}

impl Upstream {
    /// A closed circuit to `config`.
    pub fn new(config: UpstreamConfig) -> Self {
        let authority = format!(
            "{}:{}",
            config.base.host_str().unwrap_or("localhost"),
            config.base.port_or_known_default().unwrap_or(80)
        );
        Self {
            config,
            host: UpValue::from_str(&authority).ok(),
            authority,
            failures: AtomicU32::new(0),
            open_until: Mutex::new(None),
        }
    }

    /// Seconds the circuit stays open, or `None` when requests may pass (closed, or half-open
    /// after the pause: the next request is the trial).
    fn open_for(&self) -> Option<u64> {
        let mut open = self.open_until.lock().ok()?;
        match *open {
            Some(until) if until > Instant::now() => {
                Some((until - Instant::now()).as_secs().max(1))
            }
            Some(_) => {
                *open = None;
                None
            }
            None => None,
        }
    }

    fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    fn failed(&self, threshold: u32, pause: Duration) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= threshold
            && let Ok(mut open) = self.open_until.lock()
        {
            if open.is_none() {
                tracing::warn!(upstream = %self.config.name, failures = n, "circuit opened");
                metrics::counter!("gateway_circuit_opened_total", "service" => self.config.name.clone())
                    .increment(1);
            }
            *open = Some(Instant::now() + pause);
            self.failures.store(0, Ordering::Relaxed);
        }
    }
}

// RFC 9110 §7.6.1 hop-by-hop headers, never forwarded either way.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers of one message that must not be forwarded: the fixed hop-by-hop set and
/// whatever its `Connection` headers name. Built from raw values, so it serves both the
/// request (actix's header types) and the response (hyper's).
struct HopByHop(Vec<String>);

impl HopByHop {
    fn new<'a>(connection: impl Iterator<Item = &'a [u8]>) -> Self {
        let listed = connection
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        Self(listed)
    }

    fn contains(&self, name: &str) -> bool {
        HOP_BY_HOP.contains(&name) || self.0.iter().any(|n| n == name)
    }
}

/// The upstream for a path: the first segment under `/api/v1/`, or the JWKS.
fn route<'a>(gw: &'a Gateway, path: &str) -> Option<&'a Upstream> {
    let name = if path == "/.well-known/jwks.json" {
        "identity"
    } else {
        let rest = path.strip_prefix("/api/v1/")?;
        let segment = rest.split('/').next().unwrap_or("");
        gw.routes.get(segment)?.as_str()
    };
    gw.upstreams.iter().find(|u| u.config.name == name)
}

fn token_problem(e: &TokenError) -> ApiError {
    let code = match e {
        TokenError::Expired => "token_expired",
        TokenError::NotYetValid => "token_not_yet_valid",
        TokenError::Algorithm => "token_algorithm_refused",
        TokenError::UnknownKey => "token_unknown_key",
        TokenError::WrongAudience => "token_wrong_audience",
        TokenError::Invalid => "invalid_token",
    };
    ApiError::unauthorized(code, e.to_string())
}

/// The `Authorization` header as scheme and credentials, read once per request.
fn authorization(req: &HttpRequest) -> Option<(&str, &str)> {
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    Some((scheme, rest.trim()))
}

/// The API key a request presents: `X-API-Key`, or `Authorization: ApiKey <key>`.
fn api_key(req: &HttpRequest, auth: Option<(&str, &str)>) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let (scheme, key) = auth?;
    scheme
        .eq_ignore_ascii_case("apikey")
        .then(|| key.to_owned())
}

/// Who a request is from.
#[derive(Default)]
struct Who {
    /// Replaces the `Authorization` header (an exchanged API key).
    replacement: Option<String>,
    /// The token's subject, or `key:<hash>` for an API key.
    subject: Option<String>,
    /// The caller's tenant.
    tenant: Option<String>,
}

fn key_id(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!(
        "key:{}",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Checks the caller's credentials.
async fn authenticate(gw: &Gateway, req: &HttpRequest, request_id: &str) -> Result<Who, ApiError> {
    let auth = authorization(req);
    if let Some(key) = api_key(req, auth) {
        if key.is_empty() || key.len() > 512 {
            return Err(ApiError::unauthorized(
                "invalid_api_key",
                "the API key is unknown, revoked or expired",
            ));
        }
        return match gw.api_keys.token_for(&key, request_id).await {
            Exchange::Token(t) => {
                let tenant = gw.keys.check(&t).await.ok().map(|v| v.tenant);
                Ok(Who {
                    replacement: Some(t),
                    subject: Some(key_id(&key)),
                    tenant,
                })
            }
            Exchange::Refused => Err(ApiError::unauthorized(
                "invalid_api_key",
                "the API key is unknown, revoked or expired",
            )),
            Exchange::Unavailable(e) => {
                tracing::warn!(error = %e, "API-key exchange failed");
                Err(ApiError::unavailable(
                    "identity_unavailable",
                    "API keys cannot be checked right now",
                    5,
                ))
            }
        };
    }
    let Some(token) = auth
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
    else {
        return Err(ApiError::unauthorized(
            "missing_token",
            "this route needs `Authorization: Bearer <token>` or an API key",
        ));
    };
    gw.keys
        .check(token)
        .await
        .map(|v| Who {
            replacement: None,
            subject: Some(v.subject),
            tenant: Some(v.tenant),
        })
        .map_err(|e| token_problem(&e))
}

/// Applies every matching policy; `Err` is the 429 answer.
async fn limit(
    gw: &Gateway,
    service: &str,
    group: &str,
    path: &str,
    ip: &str,
    who: &Who,
) -> Result<Option<Decision>, HttpResponse> {
    let mut tightest: Option<Decision> = None;
    for policy in gw
        .limiter
        .policies
        .iter()
        .filter(|p| p.applies(service, path))
    {
        let value = match policy.key {
            KeyKind::Ip => format!("ip:{ip}"),
            KeyKind::Subject => who
                .subject
                .as_ref()
                .map(|s| format!("sub:{s}"))
                .unwrap_or_else(|| format!("ip:{ip}")),
            KeyKind::Tenant => match &who.tenant {
                Some(t) => format!("tenant:{t}"),
                None => continue,
            },
        };
        let key = format!("fdrl:{}:{service}:{value}", policy.name);
        let decision = match gw.limiter.check(policy, &key).await {
            Ok(d) => d,
            Err(e) => {
                // Fail open: an unreachable Redis must not take the API down.
                tracing::warn!(error = %e, "rate limiter unavailable; request let through");
                metrics::counter!("gateway_limiter_errors_total").increment(1);
                continue;
            }
        };
        if !decision.allowed {
            metrics::counter!("gateway_rejected_total", "service" => service.to_owned(), "group" => group.to_owned(), "reason" => "rate_limited")
                .increment(1);
            let error = ApiError::too_many(
                "rate_limited",
                format!(
                    "too many requests ({} per {} s); retry in {} s",
                    decision.limit,
                    decision.window.as_secs(),
                    decision.retry_after
                ),
                decision.retry_after,
            );
            let mut response = actix_web::ResponseError::error_response(&error);
            rate_headers(response.headers_mut(), &decision);
            return Err(response);
        }
        if tightest
            .as_ref()
            .is_none_or(|t| decision.remaining < t.remaining)
        {
            tightest = Some(decision);
        }
    }
    Ok(tightest)
}

/// `RateLimit-Policy` and `RateLimit` (IETF httpapi draft) and the `X-RateLimit-*` trio.
fn rate_headers(headers: &mut HeaderMap, d: &Decision) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put(
        "ratelimit-policy",
        format!("\"{}\";q={};w={}", d.policy, d.limit, d.window.as_secs()),
    );
    put(
        "ratelimit",
        format!("\"{}\";r={};t={}", d.policy, d.remaining, d.reset),
    );
    put("x-ratelimit-limit", d.limit.to_string());
    put("x-ratelimit-remaining", d.remaining.to_string());
    put("x-ratelimit-reset", d.reset.to_string());
}

fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The catch-all handler: every request that is not the gateway's own.
pub async fn forward(
    req: HttpRequest,
    payload: Payload,
    gw: Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    oversized_head(&req, gw.max_header)?;
    let path = req.path().to_owned();
    let method = req.method().as_str().to_owned();
    let Some(upstream) = route(&gw, &path) else {
        return Err(ApiError::not_found(
            "route_not_found",
            "no service serves this path",
        ));
    };
    let service = upstream.config.name.clone();
    let ctx = context::current();
    let request_id = ctx
        .as_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let public = gw.public.iter().any(|p| p.matches(&method, &path));
    let who = if public {
        Who::default()
    } else {
        authenticate(&gw, &req, &request_id).await?
    };
    let group = path
        .strip_prefix("/api/v1/")
        .and_then(|r| r.split('/').next())
        .unwrap_or("jwks")
        .to_owned();
    let ip = client_ip(&req);
    let verdict = match limit(&gw, &service, &group, &path, &ip, &who).await {
        Ok(v) => v,
        Err(too_many) => return Ok(too_many),
    };
    let replacement = who.replacement;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > gw.max_body
    {
        return Err(too_large(gw.max_body));
    }
    if let Some(wait) = upstream.open_for() {
        metrics::counter!("gateway_rejected_total", "service" => service.clone(), "reason" => "circuit_open")
            .increment(1);
        return Err(ApiError::unavailable(
            "upstream_unavailable",
            format!("the {service} service is unavailable; retry later"),
            wait,
        ));
    }

    let skip = HopByHop::new(
        req.headers()
            .get_all(header::CONNECTION)
            .map(HeaderValue::as_bytes),
    );
    let mut headers = hyper::HeaderMap::new();
    for (name, value) in req.headers() {
        let n = name.as_str();
        if skip.contains(n)
            || n == "host"
            || n == "x-api-key"
            || n == "x-request-id"
            || n == "traceparent"
            || n.starts_with("x-forwarded-")
            || n == "forwarded"
            || (replacement.is_some() && name == header::AUTHORIZATION)
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            UpName::from_bytes(n.as_bytes()),
            UpValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    if let Some(host) = &upstream.host {
        headers.insert(hyper::header::HOST, host.clone());
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = UpValue::from_str(value) {
            headers.insert(UpName::from_static(name), v);
        }
    };
    if let Some(token) = &replacement {
        set("authorization", &format!("Bearer {token}"));
    }
    // The gateway is the edge: forwarded headers from clients are not trusted.
    set("x-forwarded-for", &ip);
    // From the connection itself: `connection_info()` would believe client-sent
    // `Forwarded`/`X-Forwarded-*` headers.
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| req.app_config().host().to_owned());
    set("x-forwarded-proto", scheme);
    set("x-forwarded-host", &host);
    if let Some(c) = &ctx {
        set("x-request-id", &c.request_id);
        set("traceparent", &c.traceparent());
    }

    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let Ok(up_method) = hyper::Method::from_bytes(req.method().as_str().as_bytes()) else {
        return Err(ApiError::bad_request(
            "bad_method",
            "unsupported HTTP method",
        ));
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or(path.as_str(), |p| p.as_str());
    let Ok(target) = hyper::Uri::try_from(target) else {
        return Err(ApiError::bad_request(
            "bad_target",
            "the request target is not a valid URI path",
        ));
    };
    let limit = gw.max_body;
    let seen = std::sync::Arc::new(AtomicU64::new(0));
    let body = if has_body {
        // Streamed as it arrives (back-pressure both ways), counted against the limit.
        let counted = seen.clone();
        UpBody::stream(payload.scan(false, move |over, chunk| {
            if *over {
                return std::future::ready(None);
            }
            let item = match chunk {
                Ok(chunk) => {
                    let total = counted.fetch_add(chunk.len() as u64, Ordering::Relaxed)
                        + chunk.len() as u64;
                    if total > limit {
                        *over = true;
                        Err(std::io::Error::other("request body over the limit"))
                    } else {
                        Ok(chunk)
                    }
                }
                Err(e) => {
                    *over = true;
                    Err(std::io::Error::other(e.to_string()))
                }
            };
            std::future::ready(Some(item))
        }))
    } else {
        UpBody::empty()
    };
    let mut request = hyper::Request::new(body);
    *request.method_mut() = up_method;
    *request.uri_mut() = target;
    *request.headers_mut() = headers;

    let started = Instant::now();
    let sent = tokio::time::timeout(
        upstream.config.timeout,
        client::send(&upstream.authority, request),
    )
    .await;
    let response = match sent {
        Err(_) => {
            upstream.failed(gw.breaker_failures, gw.breaker_open);
            record(&service, &group, 504, started);
            return Err(ApiError::new(
                ErrorKind::GatewayTimeout,
                "upstream_timeout",
                format!("the {service} service did not answer in time"),
            ));
        }
        Ok(Err(e)) => {
            if seen.load(Ordering::Relaxed) > limit {
                return Err(too_large(limit));
            }
            upstream.failed(gw.breaker_failures, gw.breaker_open);
            if let SendError::Connect(_) = e {
                record(&service, &group, 503, started);
                tracing::warn!(service = %service, error = %e, "upstream unreachable");
                return Err(ApiError::unavailable(
                    "upstream_unavailable",
                    format!("the {service} service is unavailable; retry later"),
                    5,
                ));
            }
            record(&service, &group, 502, started);
            tracing::warn!(service = %service, error = %e, "upstream failed");
            return Err(ApiError::new(
                ErrorKind::BadGateway,
                "upstream_failed",
                format!("the {service} service failed to answer"),
            ));
        }
        Ok(Ok(r)) => r,
    };
    upstream.succeeded();
    let status = response.status().as_u16();
    record(&service, &group, status, started);
    let mut out =
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY));
    let skip = HopByHop::new(
        response
            .headers()
            .get_all("connection")
            .iter()
            .map(UpValue::as_bytes),
    );
    for (name, value) in response.headers() {
        if skip.contains(name.as_str()) || name.as_str() == "content-length" {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append_header((n, v));
        }
    }
    let stream = response.into_body();
    let length = stream.length();
    let mut answer = match length {
        Some(n) => out.body(actix_web::body::SizedStream::new(n, stream)),
        None => out.streaming(stream),
    };
    if let Some(d) = &verdict {
        rate_headers(answer.headers_mut(), d);
    }
    Ok(answer)
}

/// 414 for a request target over `limit` bytes, 431 for header lines that add up to more:
/// checked first in forwarding, so an oversized token or cookie never reaches the JWT check,
/// the limiter or an upstream.
fn oversized_head(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > limit {
        return Err(ApiError::new(
            ErrorKind::UriTooLong,
            "uri_too_long",
            format!("the request target is over {limit} bytes"),
        ));
    }
    // `name: value\r\n` per line, as on the wire.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limit {
        return Err(ApiError::new(
            ErrorKind::HeadersTooLarge,
            "headers_too_large",
            format!("the request's header fields add up to more than {limit} bytes"),
        ));
    }
    Ok(())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        "payload_too_large",
        format!("the request body is over {limit} bytes"),
    )
}

fn record(service: &str, group: &str, status: u16, started: Instant) {
    let labels = [
        ("service", service.to_owned()),
        ("group", group.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("gateway_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_upstream_seconds", "service" => service.to_owned(), "group" => group.to_owned())
        .record(started.elapsed().as_secs_f64());
}
