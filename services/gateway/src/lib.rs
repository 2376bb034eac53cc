//! The gateway (port 8080): the only address API consumers need.
//!
//! It forwards `/api/v1/<segment>/…` unchanged to the service that owns the segment
//! (DESIGN.md §1), streaming bodies both ways. Every route not listed as public needs a valid
//! access token (checked against identity's JWKS) or an API key (exchanged at identity for a
//! short-lived token, so services only ever see JWTs). Services still check tokens
//! themselves. An upstream that is down answers a fast 503, one that is slow a 504, and a
//! circuit breaker stops a dead upstream from tying up the gateway.
//!
//! It is its own HTTP/1.1 server on hyper ([`server`]), not an actix-web app like the
//! services: a request goes from the client's socket to the upstream's and back as hyper's
//! own types, headers edited in place and body frames passed on, where actix-web copied every
//! header into the client's types and every response chunk into its write buffer. Its side
//! towards the upstreams is a small HTTP/1.1 client of its own ([`upstream`]), driven by the
//! request's task.

pub mod auth;
pub mod body;
pub mod config;
pub mod edge;
pub mod h1;
pub mod limits;
pub mod proxy;
pub mod server;
mod sharded;
pub mod upstream;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetdesk_web::ApiError;
use fleetdesk_web::context::{self, RequestContext};
use futures_util::future::join_all;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use config::GatewayConfig;

use crate::auth::{ApiKeys, Keys};
use crate::body::GwBody;
use crate::config::PublicRoute;
use crate::proxy::Upstream;
use crate::server::{Peer, Server};

/// The service name in logs and metrics.
pub const SERVICE: &str = "gateway";

/// What every request shares.
pub struct Gateway {
    pub(crate) client: reqwest::Client,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) cors_origins: Vec<String>,
    pub(crate) docs: edge::MergedDocs,
    routes: HashMap<String, String>,
    public: Vec<PublicRoute>,
    max_body: u64,
    pub(crate) max_header: usize,
    breaker_failures: u32,
    breaker_open: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) send_timeout: Duration,
    trusted: Vec<config::Network>,
    /// Identity's signing keys.
    pub keys: Keys,
    api_keys: ApiKeys,
    limiter: limits::Limiter,
}

impl Gateway {
    /// GETs `path` from every upstream at once: each one's name and answer (`None` when it
    /// could not be reached in `timeout`).
    pub(crate) async fn get_from_each_upstream(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Vec<(String, Option<reqwest::Response>)> {
        join_all(self.upstreams.iter().map(|u| {
            let request = u
                .config
                .base
                .join(path)
                .map(|url| self.client.get(url).timeout(timeout));
            async move {
                let answer = match request {
                    Ok(r) => r.send().await.ok(),
                    Err(_) => None,
                };
                (u.config.name.clone(), answer)
            }
        }))
        .await
    }

    /// The state for `config`: connects to Redis when limits are shared; keys are fetched
    /// later.
    pub async fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let identity = config
            .upstreams
            .iter()
            .find(|u| u.name == "identity")
            .ok_or_else(|| anyhow::anyhow!("the gateway needs the identity upstream"))?;
        let jwks = identity.base.join("/.well-known/jwks.json")?;
        let exchange = identity.base.join("/api/v1/auth/api-key/exchange")?;
        let limiter = match &config.redis_url {
            Some(url) => limits::Limiter::redis(config.rate_limits.clone(), url)
                .await
                .map_err(|e| anyhow::anyhow!("FLEETDESK_GATEWAY_REDIS_URL: {e}"))?,
            None => limits::Limiter::in_memory(config.rate_limits.clone()),
        };
        Ok(Self {
            limiter,
            cors_origins: config.cors_origins.clone(),
            docs: edge::MergedDocs::default(),
            keys: Keys::new(
                client.clone(),
                jwks,
                &config.issuer,
                &config.audience,
                config.jwks_min_refresh,
            ),
            api_keys: ApiKeys::new(client.clone(), exchange, config.api_key_margin),
            client,
            upstreams: config
                .upstreams
                .iter()
                .cloned()
                .map(Upstream::new)
                .collect(),
            routes: config.routes.iter().cloned().collect(),
            public: config.public.clone(),
            max_body: config.max_body,
            max_header: config.max_header,
            breaker_failures: config.breaker_failures,
            breaker_open: config.breaker_open,
            idle_timeout: config.idle_timeout,
            send_timeout: config.send_timeout,
            trusted: config.trusted_proxies.clone(),
        })
    }
}

/// Serves one request: the gateway's own routes, or forwarding; then one log line and the
/// request metrics. The answer comes with the fields the gateway adds to its head.
pub(crate) async fn handle<'g>(
    gw: &'g Gateway,
    peer: &Peer,
    req: Request<h1::ClientBody>,
) -> (Response<GwBody>, edge::Added<'g>) {
    let started = Instant::now();
    let headers = req.headers();
    let sent = |name: &HeaderName| headers.get(name).map(HeaderValue::as_bytes);
    let ctx = RequestContext::for_request(sent(&proxy::X_REQUEST_ID), sent(&proxy::TRACEPARENT));
    let method = req.method().clone();
    let allowed = edge::allowed_origin(gw, headers);
    let own = own_route(req.uri().path());
    // Made once, here: forwarding sends them on and the answer carries the id, and the context
    // itself can then be moved into the request's scope rather than copied. The gateway's own
    // routes send nothing on: no traceparent for them.
    let request_id = HeaderValue::from_str(&ctx.request_id).ok();
    let traceparent = own
        .is_none()
        .then(|| HeaderValue::try_from(ctx.traceparent()).ok())
        .flatten();
    let docs = own == Some(Own::Docs);
    let span = tracing::info_span!(
        "request",
        service = SERVICE,
        method = %method,
        path = %req.uri().path(),
        request_id = %ctx.request_id,
        trace_id = %ctx.trace_id,
    );
    let (response, rate) = match edge::preflight(&method, headers, allowed.as_ref()) {
        Some(answer) => (answer, None),
        None => {
            let ids = proxy::Ids {
                request_id: request_id.as_ref(),
                traceparent,
            };
            // Pinned in place: moved by value into `within` and `instrument`, rustc keeps a
            // slot for it in each. With this and the rare paths boxed, a request's future
            // (allocated and copied once per request) went from 8.8 to 4.9 KB.
            let serving = std::pin::pin!(serve(gw, peer, own, req, ids));
            context::within(ctx, serving).instrument(span.clone()).await
        }
    };
    let added = edge::Added {
        request_id,
        origin: allowed,
        docs,
        rate,
    };
    let code = response.status();
    let status = code.as_u16();
    let elapsed = started.elapsed();
    let route = own.map_or("forwarded", Own::route);
    let _entered = span.enter();
    if matches!(own, Some(Own::Health | Own::Ready | Own::Metrics)) {
        tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    } else {
        tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "served");
    }
    context::record_request(SERVICE, method.as_str(), route, code.as_str(), elapsed);
    (response, added)
}

/// The gateway's own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    Health,
    Ready,
    Metrics,
    OpenApi,
    Docs,
}

impl Own {
    fn route(self) -> &'static str {
        match self {
            Own::Health => "/health",
            Own::Ready => "/health/ready",
            Own::Metrics => "/metrics",
            Own::OpenApi => "/api/openapi.json",
            Own::Docs => "/api/docs/{file}",
        }
    }
}

fn own_route(path: &str) -> Option<Own> {
    match path {
        "/health" => Some(Own::Health),
        "/health/ready" => Some(Own::Ready),
        "/metrics" => Some(Own::Metrics),
        "/api/openapi.json" => Some(Own::OpenApi),
        p if p == "/api/docs" || p.starts_with("/api/docs/") => Some(Own::Docs),
        _ => None,
    }
}

/// The answer, with the tightest rate-limit decision that applied to it.
async fn serve<'g>(
    gw: &'g Gateway,
    peer: &Peer,
    own: Option<Own>,
    req: Request<h1::ClientBody>,
    ids: proxy::Ids<'_>,
) -> (Response<GwBody>, Option<limits::Decision<'g>>) {
    let Some(own) = own else {
        return proxy::forward(gw, peer, req, ids)
            .await
            .unwrap_or_else(|e| (body::problem(&e), None));
    };
    (own_answer(gw, own, req).await, None)
}

/// An answer from the gateway's own routes.
async fn own_answer(gw: &Gateway, own: Own, req: Request<h1::ClientBody>) -> Response<GwBody> {
    let method = req.method();
    if !(method == Method::GET || method == Method::HEAD) {
        let mut answer = body::problem(&ApiError::new(
            fleetdesk_web::error::ErrorKind::MethodNotAllowed,
            "method_not_allowed",
            "this route answers GET only",
        ));
        answer
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return answer;
    }
    match own {
        Own::Health => body::json(
            StatusCode::OK,
            &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
        ),
        // Boxed, like the gateway's other rare paths with large futures (HTTP calls):
        // inline, each would grow the future of every request.
        Own::Ready => Box::pin(ready(gw)).await,
        Own::Metrics => body::bytes(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            fleetdesk_telemetry::render_metrics(),
        ),
        Own::OpenApi => Box::pin(edge::openapi(gw)).await,
        Own::Docs => match req.uri().path().strip_prefix("/api/docs/") {
            Some(file) => edge::docs(file),
            None => {
                let mut to = Response::new(GwBody::Empty);
                *to.status_mut() = StatusCode::MOVED_PERMANENTLY;
                to.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/api/docs/"));
                to
            }
        },
    }
}

/// Every upstream's readiness, each listed; 503 unless all are ready.
async fn ready(gw: &Gateway) -> Response<GwBody> {
    let results: Vec<(String, &str)> = gw
        .get_from_each_upstream("/health/ready", Duration::from_secs(2))
        .await
        .into_iter()
        .map(|(name, answer)| {
            let state = match answer {
                Some(r) if r.status().is_success() => "ok",
                Some(_) => "not_ready",
                None => "unavailable",
            };
            (name, state)
        })
        .collect();
    let all_ok = results.iter().all(|(_, s)| *s == "ok");
    let upstreams: Map<String, Value> = results
        .into_iter()
        .map(|(n, s)| (n, Value::from(s)))
        .collect();
    let body = json!({
        "status": if all_ok { "ok" } else { "unavailable" },
        "upstreams": upstreams,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if all_ok {
        body::json(StatusCode::OK, &body)
    } else {
        let mut answer = body::json(StatusCode::SERVICE_UNAVAILABLE, &body);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        answer
    }
}

/// A running gateway.
pub struct Application {
    /// The port it listens on.
    pub port: u16,
    /// Its state.
    pub gateway: Arc<Gateway>,
    server: Server,
    refresher: JoinHandle<()>,
}

impl Application {
    /// Binds the configured address (port 0 picks one), fetches identity's keys if it can,
    /// and keeps refreshing them.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        let gateway = Arc::new(Gateway::new(&config).await?);
        // Identity may be starting too: a failed first fetch is tried again in the background
        // for a while before it is worth a warning.
        let fetched = gateway.keys.fetch().await.is_ok();
        let every = config.jwks_refresh;
        let g = gateway.clone();
        let refresher = tokio::spawn(async move {
            if !fetched {
                fleetdesk_auth::jwks::retry_first_fetch(|| g.keys.fetch()).await;
            }
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = g.keys.fetch().await {
                    tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the known keys");
                }
            }
        });
        let _ = fleetdesk_telemetry::metrics_handle();
        let server = Server::start(gateway.clone(), listener, config.workers)?;
        Ok(Self {
            port,
            gateway,
            server,
            refresher,
        })
    }

    /// A handle that stops the gateway as SIGTERM does.
    pub fn stopper(&self) -> server::Stopper {
        self.server.stopper()
    }

    /// Serves until SIGINT or SIGTERM, then lets the requests in flight finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.run().await;
        self.refresher.abort();
        result
    }
}
