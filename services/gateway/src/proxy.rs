//! Forwarding: route, authenticate, stream the request up and the response back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fleetdesk_auth::TokenError;
use fleetdesk_web::ApiError;
use fleetdesk_web::error::ErrorKind;
use hyper::body::Body as _;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::Gateway;
use crate::auth::Exchange;
use crate::body::{self, GwBody};
use crate::config::UpstreamConfig;
use crate::h1::ClientBody;
use crate::limits::{Decision, KeyKind};
use crate::server::Peer;
use crate::upstream::{self as client, SendError, UpBody};

/// An upstream with its circuit breaker.
pub struct Upstream {
    /// Where it is.
    pub config: UpstreamConfig,
    /// `host:port` of its base URL: where to connect.
    authority: std::sync::Arc<str>,
    /// The same, as the `Host` header it is sent.
    host: Option<HeaderValue>,
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
            host: HeaderValue::from_str(&authority).ok(),
            authority: authority.into(),
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
            // Half-open after the pause: one more failure (the trial's) opens it again at once,
            // a success closes it.
            self.failures.store(threshold - 1, Ordering::Relaxed);
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

/// Removes what must not be forwarded from one message's headers: the fixed hop-by-hop set
/// and whatever its `Connection` headers name. Most messages have none of them: one pass
/// over the names finds that, without a lookup per name.
fn drop_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|n| HOP_BY_HOP.contains(&n.as_str())) {
        return;
    }
    let listed: Vec<String> = list(headers, &header::CONNECTION)
        .map(str::to_ascii_lowercase)
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(listed.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// The elements of a comma-separated list header, over all its lines, trimmed, empty ones
/// skipped (RFC 9110 §5.6.1); a line that is not text is skipped whole.
pub(crate) fn list<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A header field's name read from a head. The names outside `http`'s standard set that the
/// gateway meets on most messages are its constants: `HeaderName::from_bytes` copies such a
/// name into an allocation of its own every time. Told apart by length first, so a standard
/// name costs one comparison at most before `from_bytes`; no constant is made (and dropped)
/// per call, as a table of them was: that and the scan were 4 % of the gateway's
/// instructions per forwarded request.
pub(crate) fn header_name(name: &[u8]) -> Result<HeaderName, header::InvalidHeaderName> {
    let known = match name.len() {
        9 if name.eq_ignore_ascii_case(b"x-api-key") => Some(X_API_KEY),
        10 if name.eq_ignore_ascii_case(b"tracestate") => Some(TRACESTATE),
        11 if name.eq_ignore_ascii_case(b"traceparent") => Some(TRACEPARENT),
        12 if name.eq_ignore_ascii_case(b"x-request-id") => Some(X_REQUEST_ID),
        15 if name.eq_ignore_ascii_case(b"x-forwarded-for") => Some(X_FORWARDED_FOR),
        16 if name.eq_ignore_ascii_case(b"x-forwarded-host") => Some(X_FORWARDED_HOST),
        17 if name.eq_ignore_ascii_case(b"x-forwarded-proto") => Some(X_FORWARDED_PROTO),
        _ => None,
    };
    match known {
        Some(known) => Ok(known),
        None => HeaderName::from_bytes(name),
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
fn authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    Some((scheme, rest.trim()))
}

/// The API key a request presents: `X-API-Key`, or `Authorization: ApiKey <key>`.
fn api_key(headers: &HeaderMap, auth: Option<(&str, &str)>) -> Option<String> {
    if let Some(v) = headers.get(X_API_KEY).and_then(|v| v.to_str().ok()) {
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
    /// `key:<hash>` for an API key.
    key: Option<String>,
    /// The token's claims (an API key's: those of the token it was exchanged for).
    claims: Option<std::sync::Arc<fleetdesk_auth::Claims>>,
}

impl Who {
    /// The token's subject, or `key:<hash>` for an API key.
    fn subject(&self) -> Option<&str> {
        self.key
            .as_deref()
            .or_else(|| self.claims.as_ref().map(|c| c.sub.as_str()))
    }

    /// The caller's tenant.
    fn tenant(&self) -> Option<&str> {
        self.claims.as_ref().map(|c| c.tid.as_str())
    }
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

fn unknown_api_key() -> ApiError {
    ApiError::unauthorized(
        "invalid_api_key",
        "the API key is unknown, revoked or expired",
    )
}

/// What checking a caller's credentials came to.
enum Checked<'g> {
    /// Let in.
    Who(Who),
    /// Refused.
    Refused(ApiError),
    /// An API key to exchange, over the client address's rate limit: the 429 answer.
    Limited(Response<GwBody>, Decision<'g>),
}

/// Checks the caller's credentials. An API key the gateway has no token for is exchanged at
/// identity, which is an HTTP call: the exchange is first charged to the client's address
/// under the service's policies (as an anonymous request is), so that made-up keys cannot have
/// the gateway call identity at any rate. A known key is not charged: its token is cached.
/// `charged` is what an exchange is charged to: the service, the route group, the path and the
/// client's address.
async fn authenticate<'g>(
    gw: &'g Gateway,
    headers: &HeaderMap,
    request_id: &str,
    charged: (&str, &str, &str, &str),
) -> Checked<'g> {
    let auth = authorization(headers);
    if let Some(key) = api_key(headers, auth) {
        if key.is_empty() || key.len() > 512 {
            return Checked::Refused(unknown_api_key());
        }
        let exchanged = match gw.api_keys.cached(&key) {
            Ok(token) => Exchange::Token(token),
            Err(digest) => {
                let (service, group, path, ip) = charged;
                if let Err((too_many, decision)) =
                    limit(gw, service, group, path, ip, &Who::default()).await
                {
                    return Checked::Limited(too_many, decision);
                }
                // Boxed (see `serve`): an exchange is an HTTP call, and most requests carry a
                // token.
                Box::pin(gw.api_keys.exchange(&key, digest, request_id)).await
            }
        };
        return match exchanged {
            Exchange::Token(t) => {
                let claims = Box::pin(gw.keys.check(&t)).await.ok();
                Checked::Who(Who {
                    replacement: Some(t),
                    key: Some(key_id(&key)),
                    claims,
                })
            }
            Exchange::Refused => Checked::Refused(unknown_api_key()),
            Exchange::Unavailable(e) => {
                tracing::warn!(error = %e, "API-key exchange failed");
                Checked::Refused(ApiError::unavailable(
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
        return Checked::Refused(ApiError::unauthorized(
            "missing_token",
            "this route needs `Authorization: Bearer <token>` or an API key",
        ));
    };
    match gw.keys.check(token).await {
        Ok(claims) => Checked::Who(Who {
            replacement: None,
            key: None,
            claims: Some(claims),
        }),
        Err(e) => Checked::Refused(token_problem(&e)),
    }
}

/// Applies every matching policy; `Err` is the 429 answer.
async fn limit<'g>(
    gw: &'g Gateway,
    service: &str,
    group: &str,
    path: &str,
    ip: &str,
    who: &Who,
) -> Result<Option<Decision<'g>>, (Response<GwBody>, Decision<'g>)> {
    let mut tightest: Option<Decision> = None;
    // Worked out only if a policy counts by address (an IPv6 one is formatted).
    let mut counted = None;
    // Room for a usual key at once (a policy name, a service and a UUID or address), not
    // grown part by part.
    let mut key = String::with_capacity(128);
    for policy in gw
        .limiter
        .policies
        .iter()
        .filter(|p| p.applies(service, path))
    {
        let (kind, value) = match (policy.key, who.subject(), who.tenant()) {
            (KeyKind::Subject, Some(s), _) => ("sub", s),
            (KeyKind::Ip | KeyKind::Subject, _, _) => (
                "ip",
                &**counted.get_or_insert_with(|| fleetdesk_web::address::counted(ip)),
            ),
            (KeyKind::Tenant, _, Some(t)) => ("tenant", t),
            (KeyKind::Tenant, _, None) => continue,
        };
        // `fdrl:<policy>:<service>:<kind>:<value>`, in one buffer for every policy.
        key.clear();
        for part in ["fdrl:", &policy.name, ":", service, ":", kind, ":", value] {
            key.push_str(part);
        }
        let decision = match gw.limiter.check(policy, &key).await {
            Ok(d) => d,
            Err(e) => {
                // Fail open: an unreachable Redis must not take the API down.
                tracing::warn!(error = %e, "rate limiter unavailable; request let through");
                fleetdesk_telemetry::counter("gateway_limiter_errors_total", &[]).increment(1);
                continue;
            }
        };
        if !decision.allowed {
            fleetdesk_telemetry::counter(
                "gateway_rejected_total",
                &[
                    ("service", service),
                    ("group", group),
                    ("reason", "rate_limited"),
                ],
            )
            .increment(1);
            let error = ApiError::too_many(
                "rate_limited",
                format!(
                    "too many requests ({} per {} s); retry in {} s",
                    decision.policy.limit,
                    decision.policy.window.as_secs(),
                    decision.retry_after
                ),
                decision.retry_after,
            );
            return Err((body::problem(&error), decision));
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

/// Who the client is, as far as the gateway can believe.
struct Client<'a> {
    /// Its address: the connection's, or, from a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not itself a trusted proxy. It alone is the `X-Forwarded-For`
    /// sent on: services take its last entry for the client (identity's
    /// `FLEETDESK_TRUST_FORWARDED_FOR`), so a chain would name a proxy.
    ip: std::borrow::Cow<'a, str>,
    /// `http`, or what a trusted proxy says the client used.
    proto: &'static str,
    /// The `X-Forwarded-Host` a trusted proxy sent.
    host: Option<HeaderValue>,
}

impl<'a> Client<'a> {
    /// Its address as a header value: the connection's own, made once per connection, unless a
    /// trusted proxy named another.
    fn ip_value(&self, peer: &Peer) -> Option<HeaderValue> {
        if self.ip == peer.ip {
            return peer.ip_value.clone();
        }
        HeaderValue::from_str(&self.ip).ok()
    }

    fn of(gw: &Gateway, peer: &'a Peer, headers: &HeaderMap) -> Self {
        let direct = Self {
            ip: peer.ip.as_str().into(),
            proto: "http",
            host: None,
        };
        let trusted = |ip: std::net::IpAddr| gw.trusted.iter().any(|n| n.contains(ip));
        if gw.trusted.is_empty() || !trusted(peer.addr) {
            return direct;
        }
        let hops: Vec<&str> = list(headers, &X_FORWARDED_FOR).collect();
        // From the nearest hop back: the first one that is not a trusted proxy is the client.
        // One that is not an address at all ends the walk: nothing before it is believed.
        let mut ip = None;
        for hop in hops.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(a) if trusted(a) => ip = Some(a),
                Ok(a) => {
                    ip = Some(a);
                    break;
                }
                Err(_) => break,
            }
        }
        let proto = match headers
            .get(X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
        {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        let host = headers.get(X_FORWARDED_HOST).cloned();
        Self {
            // Written as the gateway writes a connection's address, whatever the proxy's
            // spelling (`2001:DB8::1`, `::ffff:192.0.2.1`): one client, one text.
            ip: ip.map_or_else(
                || peer.ip.as_str().into(),
                |a| a.to_canonical().to_string().into(),
            ),
            proto,
            host,
        }
    }
}

// Header names made at compile time: `HeaderName::from_static` outside a constant checks its
// text on every call.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const HTTP: HeaderValue = HeaderValue::from_static("http");
const HTTPS: HeaderValue = HeaderValue::from_static("https");

/// A request's id and trace context as the headers forwarding sends on.
pub struct Ids<'a> {
    /// `X-Request-Id`.
    pub request_id: Option<&'a HeaderValue>,
    /// The `traceparent` naming the gateway's part of the trace.
    pub traceparent: Option<HeaderValue>,
}

/// Forwards a request that is not the gateway's own. The answer comes with the tightest
/// rate-limit decision that applied, for its `RateLimit*` fields.
pub async fn forward<'g>(
    gw: &'g Gateway,
    peer: &Peer,
    req: Request<ClientBody>,
    ids: Ids<'_>,
) -> Result<(Response<GwBody>, Option<Decision<'g>>), ApiError> {
    oversized_head(&req, gw.max_header)?;
    let (mut parts, incoming) = req.into_parts();
    // A cheap clone (shared bytes): the path is needed after the request has gone.
    let uri = parts.uri.clone();
    let path = uri.path();
    let Some(upstream) = route(gw, path) else {
        return Err(ApiError::not_found(
            "route_not_found",
            "no service serves this path",
        ));
    };
    let service = upstream.config.name.as_str();
    let public = gw
        .public
        .iter()
        .any(|p| p.matches(parts.method.as_str(), path));
    let group = path
        .strip_prefix("/api/v1/")
        .and_then(|r| r.split('/').next())
        .unwrap_or("jwks");
    let client = Client::of(gw, peer, &parts.headers);
    let who = if public {
        Who::default()
    } else {
        let request_id = ids.request_id.and_then(|v| v.to_str().ok()).unwrap_or("");
        let charged = (service, group, path, client.ip.as_ref());
        match authenticate(gw, &parts.headers, request_id, charged).await {
            Checked::Who(who) => who,
            Checked::Refused(problem) => return Err(problem),
            Checked::Limited(too_many, decision) => return Ok((too_many, Some(decision))),
        }
    };
    let verdict = match limit(gw, service, group, path, &client.ip, &who).await {
        Ok(v) => v,
        Err((too_many, decision)) => return Ok((too_many, Some(decision))),
    };
    let headers = &mut parts.headers;
    // The body's framing as the server read it from the head (a declared length, or none).
    if let Some(len) = incoming.size_hint().exact()
        && len > gw.max_body
    {
        return Err(too_large(gw.max_body));
    }
    if let Some(wait) = upstream.open_for() {
        fleetdesk_telemetry::counter(
            "gateway_rejected_total",
            &[
                ("service", service),
                ("group", group),
                ("reason", "circuit_open"),
            ],
        )
        .increment(1);
        return Err(ApiError::unavailable(
            "upstream_unavailable",
            format!("the {service} service is unavailable; retry later"),
            wait,
        ));
    }

    let has_body = !incoming.is_end_stream();
    // The request's own headers go on, edited in place.
    let forwarded_host = client
        .host
        .clone()
        .or_else(|| headers.get(header::HOST).cloned())
        .or_else(|| HeaderValue::from_str(&peer.local).ok());
    drop_hop_by_hop(headers);
    // Not passed on: the client's API key (exchanged for a token above) and its forwarding
    // headers (the gateway sets its own, from a trusted proxy's: see `Client`). Its
    // `X-Request-Id` and `traceparent` are replaced below. Most requests carry none of these:
    // one pass over the names finds that, without a lookup per name.
    let dropped = |n: &HeaderName| {
        n == X_API_KEY || n == header::FORWARDED || n.as_str().starts_with("x-forwarded-")
    };
    if headers.keys().any(dropped) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| dropped(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
    // Each of these is the gateway's alone: the client's of the same names are not sent.
    let fields = client::Fields {
        host: upstream.host.clone(),
        authorization: who
            .replacement
            .as_ref()
            .and_then(|token| HeaderValue::try_from(format!("Bearer {token}")).ok()),
        forwarded_for: client.ip_value(peer),
        // No TLS at the gateway itself: a trusted proxy in front says what the client used.
        forwarded_proto: Some(if client.proto == "https" { HTTPS } else { HTTP }),
        forwarded_host,
        request_id: ids.request_id.cloned(),
        traceparent: ids.traceparent,
    };

    let limit = gw.max_body;
    // Followed only for a request that has a body (one allocation less for those without).
    let progress = has_body.then(|| std::sync::Arc::new(client::Progress::default()));
    let body = match &progress {
        // Passed on as it arrives (back-pressure both ways), counted against the limit.
        Some(progress) => UpBody::Client {
            body: incoming,
            progress: progress.clone(),
            limit,
        },
        None => UpBody::Empty,
    };
    // Origin-form: the path and query exactly as the client sent them.
    if uri.scheme().is_some() || uri.authority().is_some() {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = hyper::Uri::try_from(target).map_err(|_| {
            ApiError::bad_request("bad_target", "the request target is not a valid URI path")
        })?;
    }
    parts.version = hyper::Version::HTTP_11;
    parts.extensions = Default::default();
    let request = Request::from_parts(parts, body);

    let started = Instant::now();
    // Pinned in place rather than moved into the timeout (see `handle`).
    let sending = std::pin::pin!(client::send(&upstream.authority, request, &fields));
    let sent = peer
        .within(started + upstream.config.timeout, sending)
        .await;
    let response = match sent {
        // Time ran out while the gateway waited for the client's body: the client was slow,
        // not the upstream, which is not blamed.
        None if progress.as_ref().is_some_and(|p| p.awaiting_client()) => {
            record(service, group, StatusCode::REQUEST_TIMEOUT, started);
            return Err(ApiError::new(
                ErrorKind::RequestTimeout,
                "request_timeout",
                "the request body did not arrive in time",
            ));
        }
        None => {
            upstream.failed(gw.breaker_failures, gw.breaker_open);
            record(service, group, StatusCode::GATEWAY_TIMEOUT, started);
            return Err(ApiError::new(
                ErrorKind::GatewayTimeout,
                "upstream_timeout",
                format!("the {service} service did not answer in time"),
            ));
        }
        Some(Err(e)) => {
            if progress.as_ref().is_some_and(|p| p.seen() > limit) {
                return Err(too_large(limit));
            }
            if let SendError::Client(e) = &e {
                // The client's body failed, not the upstream: its circuit is left alone.
                record(service, group, StatusCode::BAD_REQUEST, started);
                return Err(ApiError::bad_request(
                    "bad_request_body",
                    format!("the request body could not be read: {e}"),
                ));
            }
            upstream.failed(gw.breaker_failures, gw.breaker_open);
            if let SendError::Connect(_) = e {
                record(service, group, StatusCode::SERVICE_UNAVAILABLE, started);
                tracing::warn!(service = %service, error = %e, "upstream unreachable");
                return Err(ApiError::unavailable(
                    "upstream_unavailable",
                    format!("the {service} service is unavailable; retry later"),
                    5,
                ));
            }
            record(service, group, StatusCode::BAD_GATEWAY, started);
            tracing::warn!(service = %service, error = %e, "upstream failed");
            return Err(ApiError::new(
                ErrorKind::BadGateway,
                "upstream_failed",
                format!("the {service} service failed to answer"),
            ));
        }
        Some(Ok(r)) => r,
    };
    upstream.succeeded();
    record(service, group, response.status(), started);
    let (mut parts, returning) = response.into_parts();
    drop_hop_by_hop(&mut parts.headers);
    Ok((
        Response::from_parts(parts, GwBody::Upstream(returning)),
        verdict,
    ))
}

/// 414 for a request target over `limit` bytes, 431 for header lines that add up to more:
/// checked first in forwarding, so an oversized token or cookie never reaches the JWT check,
/// the limiter or an upstream.
fn oversized_head(req: &Request<ClientBody>, limit: usize) -> Result<(), ApiError> {
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

fn record(service: &str, group: &str, status: StatusCode, started: Instant) {
    fleetdesk_telemetry::counter(
        "gateway_requests_total",
        &[
            ("service", service),
            ("group", group),
            ("status", status.as_str()),
        ],
    )
    .increment(1);
    fleetdesk_telemetry::histogram(
        "gateway_upstream_seconds",
        &[("service", service), ("group", group)],
    )
    .record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_read_from_a_head_are_lower_case_whichever_way_they_are_found() {
        for (wire, name) in [
            (&b"X-Request-Id"[..], "x-request-id"),
            (b"traceparent", "traceparent"),
            (b"X-FORWARDED-FOR", "x-forwarded-for"),
            (b"Authorization", "authorization"),
            (b"X-Custom-Thing", "x-custom-thing"),
        ] {
            assert_eq!(header_name(wire).unwrap().as_str(), name);
        }
        assert_eq!(header_name(b"x-request-id").unwrap(), X_REQUEST_ID);
        for bad in [&b""[..], b"bad name", b"x-request-id:", b"caf\xc3\xa9"] {
            assert!(header_name(bad).is_err(), "{bad:?}");
        }
    }
}
