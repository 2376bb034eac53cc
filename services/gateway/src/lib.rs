//! The gateway (port 8080): the only address API consumers need.
//!
//! It forwards `/api/v1/<segment>/…` unchanged to the service that owns the segment
//! (DESIGN.md §1), streaming bodies both ways. Every route not listed as public needs a valid
//! access token (checked against identity's JWKS) or an API key (exchanged at identity for a
//! short-lived token, so services only ever see JWTs). Services still check tokens
//! themselves. An upstream that is down answers a fast 503, one that is slow a 504, and a
//! circuit breaker stops a dead upstream from tying up the gateway.

pub mod auth;
pub mod config;
pub mod edge;
pub mod limits;
pub mod proxy;
mod sharded;
pub mod upstream;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, HttpServer};
use fleetdesk_web::context::{ServiceName, observe};
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use utoipa_swagger_ui::SwaggerUi;

pub use config::GatewayConfig;

use crate::auth::{ApiKeys, Keys};
use crate::config::PublicRoute;
use crate::proxy::Upstream;

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
    max_header: usize,
    breaker_failures: u32,
    breaker_open: Duration,
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
        })
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Every upstream's readiness, each listed; 503 unless all are ready.
async fn ready(gw: Data<Gateway>) -> HttpResponse {
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
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "5"))
            .json(body)
    }
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(fleetdesk_telemetry::render_metrics())
}

/// The HTTP server over `listener`.
pub fn serve(
    gateway: Data<Gateway>,
    listener: TcpListener,
    workers: usize,
) -> std::io::Result<Server> {
    let _ = fleetdesk_telemetry::metrics_handle();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(ServiceName(SERVICE))
            .app_data(gateway.clone())
            .app_data(web::PayloadConfig::new(usize::MAX))
            .wrap(from_fn(edge::edge))
            .wrap(from_fn(observe))
            .route("/health", web::get().to(health))
            .route("/api/openapi.json", web::get().to(edge::openapi))
            .service(
                SwaggerUi::new("/api/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
            )
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
            .default_service(web::to(proxy::forward))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// A running gateway.
pub struct Application {
    /// The port it listens on.
    pub port: u16,
    /// Its state.
    pub gateway: Data<Gateway>,
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
        let gateway = Data::new(Gateway::new(&config).await?);
        if let Err(e) = gateway.keys.fetch().await {
            tracing::warn!(error = %e, "no signing keys yet; they are fetched on the first token");
        }
        let every = config.jwks_refresh;
        let g = gateway.clone();
        let refresher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = g.keys.fetch().await {
                    tracing::warn!(error = %e, "periodic JWKS refresh failed; keeping the known keys");
                }
            }
        });
        let server = serve(gateway.clone(), listener, config.workers)?;
        Ok(Self {
            port,
            gateway,
            server,
            refresher,
        })
    }

    /// Serves until stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.refresher.abort();
        result
    }
}
