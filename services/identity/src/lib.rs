//! The identity service: tenants, users, roles, permissions, sessions, API keys and the
//! keys that sign every Fleetdesk access token.
//!
//! `main` and the all-in-one binary both call [`build`]; integration tests do too, on a fresh
//! database, and talk HTTP to the result.

pub mod accounts;
pub mod audit;
pub mod bootstrap;
pub mod config;
pub mod domain;
pub mod events;
pub mod routes;
pub mod store;
pub mod tokens;
pub mod views;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::App;
use actix_web::dev::Server;
use actix_web::web::Data;
use fleetdesk_auth::Verifier;
use fleetdesk_events::relay::RelayHandle;
use fleetdesk_events::{Bus, Consumer, Relay, SubscriptionHandle};
use fleetdesk_store::{Clock, Db, Migrations, PoolOptions};
use fleetdesk_web::docs::CommonDocs;
use fleetdesk_web::service;
use tokio::sync::Semaphore;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

pub use config::IdentityConfig;

use crate::domain::password::PasswordHasher;
use crate::tokens::KeyRing;

/// The service name in logs and metrics.
pub const SERVICE: &str = "identity";

const MIGRATIONS_PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const MIGRATIONS_SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

/// Identity's migrations for both backends.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: || MIGRATIONS_PG,
    sqlite: || MIGRATIONS_SQLITE,
    lock_key: 0x1d_e1,
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<IdentityConfig>,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Verifies tokens (identity checks its own tokens like every other service).
    pub verifier: Data<Verifier>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Argon2id.
    pub hasher: PasswordHasher,
    /// Bounds concurrent Argon2 work to the number of cores, so a login flood queues instead
    /// of occupying every blocking thread.
    pub hashing: Arc<Semaphore>,
    /// The event bus (RabbitMQ, or in-process).
    pub bus: Arc<dyn Bus>,
}

impl AppState {
    /// Runs Argon2 work on the blocking pool, at most one job per core at once.
    pub async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, fleetdesk_web::ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(fleetdesk_web::ApiError::internal)?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || f(&hasher))
            .await
            .map_err(fleetdesk_web::ApiError::internal)
    }
}

pub use fleetdesk_web::service::Dependencies;

/// The document's title and tags.
#[derive(OpenApi)]
#[openapi(
    info(title = "Fleetdesk identity", description = "Tenants, users, roles, permissions, tokens and API keys."),
    tags(
        (name = "auth", description = "Login, sessions, password reset, service and API-key tokens"),
        (name = "users", description = "People of the tenant"),
        (name = "roles", description = "Roles and their permission nodes"),
        (name = "permissions", description = "The permission catalogue"),
        (name = "api-keys", description = "Keys for programmatic access"),
        (name = "tenants", description = "The caller's tenant"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every identity route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    CommonDocs.modify(&mut api);
    api
}

/// Opens the database (running migrations), loads keys and makes the first admin if the
/// database is empty. Blocking work runs on the blocking pool.
pub async fn prepare(
    config: IdentityConfig,
    deps: Dependencies,
) -> anyhow::Result<(AppState, Option<bootstrap::FirstAdmin>)> {
    let url = config.database_url.clone();
    let pool = PoolOptions {
        max_size: config.db_pool_size,
        ..PoolOptions::default()
    };
    let db = tokio::task::spawn_blocking(move || Db::connect(SERVICE, &url, &MIGRATIONS, pool))
        .await??;
    let now = deps.clock.now();
    let ttl = chrono::Duration::from_std(config.access_ttl)?;
    let keys = db
        .run(move |conn| KeyRing::load_or_create(conn, now, ttl))
        .await?;
    let verifier = Data::new(Verifier::new(&config.issuer, &config.audience));
    keys.install(&verifier);
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let bus = deps
        .bus
        .clone()
        .unwrap_or_else(|| config.bus.connect(SERVICE, &db));
    let state = AppState {
        db,
        config: Arc::new(config),
        keys: Arc::new(keys),
        verifier,
        clock: deps.clock,
        hasher: PasswordHasher::default(),
        hashing: Arc::new(Semaphore::new(cores)),
        bus,
    };
    let first = bootstrap::ensure_first_admin(&state).await?;
    Ok((state, first))
}

/// The HTTP server over `listener` for a prepared state.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    service::serve(
        service::Api {
            name: SERVICE,
            verifier: state.verifier.clone(),
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

/// A running identity service.
pub struct Application {
    /// The port it listens on.
    pub port: u16,
    /// Its state (tests reach the database and keys through it).
    pub state: AppState,
    /// The first admin, when this start created one.
    pub first_admin: Option<bootstrap::FirstAdmin>,
    server: Server,
    background: Background,
}

/// The event tasks of a running service: the outbox relay and the audit consumer. They stop
/// when this is dropped.
pub struct Background {
    _relay: RelayHandle,
    _audit: SubscriptionHandle,
}

/// Starts publishing the outbox and consuming events for the audit log.
pub async fn start_events(state: &AppState) -> anyhow::Result<(RelayHandle, SubscriptionHandle)> {
    let consumer = Consumer::new(audit::CONSUMER, state.db.clone(), audit::AuditLog);
    let subscription = fleetdesk_events::topology::identity(&state.config.bus.queue_prefix);
    let handle = state
        .bus
        .subscribe(subscription, consumer)
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to events: {e}"))?;
    // The relay starts after the queue is bound: on a fresh broker, events it published
    // before would route nowhere and be lost (the first admin's, say).
    let relay = Relay::new(SERVICE, state.db.clone(), state.bus.clone()).spawn();
    Ok((relay, handle))
}

impl Application {
    /// Prepares the state and binds the configured address (port 0 picks a free port).
    pub async fn build(config: IdentityConfig, deps: Dependencies) -> anyhow::Result<Self> {
        let (listener, port) = service::bind(&config.listen)?;
        let (state, first_admin) = prepare(config, deps).await?;
        let (relay, audit) = start_events(&state).await?;
        let server = serve(state.clone(), listener)?;
        Ok(Self {
            port,
            state,
            first_admin,
            server,
            background: Background {
                _relay: relay,
                _audit: audit,
            },
        })
    }

    /// Serves until the server stops (Ctrl-C or SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (server, _background) = self.into_parts();
        server.await
    }

    /// The HTTP server and the event tasks, to run and stop separately.
    pub fn into_parts(self) -> (Server, Background) {
        (self.server, self.background)
    }
}
