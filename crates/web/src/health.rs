//! `/health` (liveness), `/health/ready` (database and bus) and `/metrics` (Prometheus).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use fleetdesk_store::Db;
use serde::Serialize;
use utoipa::ToSchema;

use crate::VERSION;

/// A dependency readiness depends on, other than the database (the event bus).
pub trait Probe: Send + Sync {
    /// `Ok` when usable; otherwise why not (shown in `/health/ready`, so keep it safe).
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// Readiness of the event bus.
pub struct BusProbe(pub Arc<dyn fleetdesk_events::Bus>);

impl Probe for BusProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move { self.0.check().await.map_err(|e| e.to_string()) })
    }
}

/// What `/health/ready` checks; put it in `app_data`.
#[derive(Clone)]
pub struct Readiness {
    /// The service's database.
    pub db: Db,
    /// The event bus, once the service has one.
    pub bus: Option<Arc<dyn Probe>>,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
    /// The service version.
    pub version: &'static str,
}

/// Readiness and what it depends on.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub db: &'static str,
    /// `ok`, `unavailable`, or `none` when the service runs without a bus.
    pub bus: &'static str,
    /// The service version.
    pub version: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Health)))]
#[get("/health")]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: VERSION,
    })
}

/// Readiness: the database answers and the bus is connected.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "A dependency is down", body = Ready),
    )
)]
#[get("/health/ready")]
async fn ready(readiness: Option<Data<Readiness>>) -> HttpResponse {
    let Some(readiness) = readiness else {
        return HttpResponse::ServiceUnavailable().json(Ready {
            status: "unavailable",
            db: "unavailable",
            bus: "none",
            version: VERSION,
        });
    };
    let db = match readiness.db.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            "unavailable"
        }
    };
    let bus = match &readiness.bus {
        None => "none",
        Some(probe) => match probe.check().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: bus unavailable");
                "unavailable"
            }
        },
    };
    let ok = db == "ok" && bus != "unavailable";
    let body = Ready {
        status: if ok { "ok" } else { "unavailable" },
        db,
        bus,
        version: VERSION,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Prometheus metrics of this process.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
async fn metrics_text(readiness: Option<Data<Readiness>>) -> HttpResponse {
    if let Some(r) = readiness {
        let (connections, idle) = r.db.state();
        metrics::gauge!("db_pool_connections").set(f64::from(connections));
        metrics::gauge!("db_pool_idle_connections").set(f64::from(idle));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(fleetdesk_telemetry::render_metrics())
}

/// Registers the three routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health).service(ready).service(metrics_text);
}
