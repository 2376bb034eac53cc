//! The tickets service: products, customer companies, tickets, triage, the workflow and SLAs.
//!
//! `main` and the all-in-one binary both call [`build`]; integration tests do
//! too, on a fresh database, and talk HTTP to the result.

pub mod config;
pub mod domain;
pub mod events;
pub mod idempotency;
pub mod routes;
pub mod scheduler;
pub mod store;
pub mod triage;
pub mod views;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::App;
use actix_web::dev::Server;
use actix_web::web::Data;
use fleetdesk_auth::RemoteKeys;
use fleetdesk_events::relay::RelayHandle;
use fleetdesk_events::{Bus, Consumer, Relay, SubscriptionHandle};
use fleetdesk_store::{Clock, Db, Migrations, PoolOptions};
use fleetdesk_web::docs::CommonDocs;
use fleetdesk_web::service;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

pub use config::TicketsConfig;

/// The service name in logs and metrics.
pub const SERVICE: &str = "tickets";

const MIGRATIONS_PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const MIGRATIONS_SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

/// Tickets' migrations for both backends.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: || MIGRATIONS_PG,
    sqlite: || MIGRATIONS_SQLITE,
    lock_key: 0x71_c4,
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<TicketsConfig>,
    /// Identity's keys, to verify callers' tokens.
    pub keys: Data<RemoteKeys>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The event bus (RabbitMQ, or in-process).
    pub bus: Arc<dyn Bus>,
    /// Outbound HTTP (the triage model).
    pub http: reqwest::Client,
    /// Creates that commit by themselves: their reads and their writes gathered while one
    /// runs.
    pub creates: Arc<store::tickets::Creates>,
}

pub use fleetdesk_web::service::Dependencies;

/// The document's title and tags.
#[derive(OpenApi)]
#[openapi(
    info(title = "Fleetdesk tickets", description = "Products, companies, tickets, triage, workflow and SLAs."),
    tags(
        (name = "products", description = "Products, their channels, SLA policies and triage rules"),
        (name = "companies", description = "Customer companies"),
        (name = "tickets", description = "Tickets and their workflow"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every tickets route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    CommonDocs.modify(&mut api);
    api
}

/// Opens the database (running migrations) and builds the shared state.
pub async fn prepare(config: TicketsConfig, deps: Dependencies) -> anyhow::Result<AppState> {
    let url = config.database_url.clone();
    let pool = PoolOptions {
        max_size: config.db_pool_size,
        max_reads: config.db_max_reads,
        ..PoolOptions::default()
    };
    let db = tokio::task::spawn_blocking(move || Db::connect(SERVICE, &url, &MIGRATIONS, pool))
        .await??;
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?;
    let keys = Data::new(RemoteKeys::new(
        http.clone(),
        config.jwks_url.clone(),
        &config.issuer,
        &config.audience,
        Duration::from_secs(5),
    ));
    let bus = deps
        .bus
        .clone()
        .unwrap_or_else(|| config.bus.connect(SERVICE, &db));
    let creates = Arc::new(store::tickets::Creates::new(&db));
    Ok(AppState {
        db,
        config: Arc::new(config),
        keys,
        clock: deps.clock,
        bus,
        http,
        creates,
    })
}

/// The HTTP server over `listener` for a prepared state.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    service::serve(
        service::Api {
            name: SERVICE,
            verifier: state.keys.clone(),
            db: state.db.clone(),
            bus: state.bus.clone(),
            routes: routes::configure,
            openapi: openapi(),
            workers: state.config.workers,
            state,
        },
        listener,
    )
}

/// The background tasks of a running service: the outbox relay, the users consumer, the
/// key refresher and the SLA breach scheduler. They stop when this is dropped.
pub struct Background {
    _relay: RelayHandle,
    _users: SubscriptionHandle,
    keys: tokio::task::JoinHandle<()>,
    scheduler: tokio::task::JoinHandle<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.keys.abort();
        self.scheduler.abort();
    }
}

/// Starts the relay, the users consumer, the JWKS refresher and the breach scheduler.
pub async fn start_background(state: &AppState) -> anyhow::Result<Background> {
    let relay = Relay::new(SERVICE, state.db.clone(), state.bus.clone()).spawn();
    let consumer = Consumer::new(
        events::USERS_CONSUMER,
        state.db.clone(),
        events::record_user,
    );
    let users = state
        .bus
        .subscribe(
            fleetdesk_events::topology::tickets(&state.config.bus.queue_prefix),
            consumer,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to events: {e}"))?;
    let keys = state
        .keys
        .clone()
        .into_inner()
        .keep_fresh(Duration::from_secs(300))
        .await;
    let scheduler = scheduler::spawn(state.clone());
    Ok(Background {
        _relay: relay,
        _users: users,
        keys,
        scheduler,
    })
}

/// A running tickets service.
pub type Application = service::Running<AppState, Background>;

/// A tickets service that is prepared and consuming events but not serving HTTP yet.
pub type Starting = service::Starting<AppState, Background>;

/// Binds the configured address (port 0 picks a free port), prepares the state and starts the
/// background tasks, without serving yet.
pub async fn start(config: TicketsConfig, deps: Dependencies) -> anyhow::Result<Starting> {
    let bound = service::bind(&config.listen)?;
    let state = prepare(config, deps).await?;
    let background = start_background(&state).await?;
    Ok(Starting::new(bound, state, background, serve))
}

/// Prepares everything and serves.
pub async fn build(config: TicketsConfig, deps: Dependencies) -> anyhow::Result<Application> {
    Ok(start(config, deps).await?.serve()?)
}
