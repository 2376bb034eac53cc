//! The vault: credential types, credentials whose secure values are sealed with envelope
//! encryption (root key → versioned KEKs → a data key per credential → AES-256-GCM values),
//! audited reveals, value history and KEK rotation without downtime.
//!
//! `main` and the all-in-one binary both call [`build`]; integration tests do
//! too, on a fresh database, and talk HTTP to the result.

pub mod config;
pub mod crypto;
pub mod domain;
pub mod events;
pub mod keys;
pub mod routes;
pub mod secrets;
pub mod store;
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

pub use config::{MasterKey, VaultConfig};
use keys::Keyring;

/// The service name in logs and metrics.
pub const SERVICE: &str = "vault";

const MIGRATIONS_PG: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/postgres");
const MIGRATIONS_SQLITE: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations/sqlite");

/// The vault's migrations for both backends.
pub const MIGRATIONS: Migrations = Migrations {
    postgres: || MIGRATIONS_PG,
    sqlite: || MIGRATIONS_SQLITE,
    lock_key: 0x7a_17,
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Settings.
    pub config: Arc<VaultConfig>,
    /// The root key and the KEK versions.
    pub ring: Arc<Keyring>,
    /// Identity's keys, to verify callers' tokens.
    pub keys: Data<RemoteKeys>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The event bus (RabbitMQ, or in-process).
    pub bus: Arc<dyn Bus>,
}

pub use fleetdesk_web::service::Dependencies;

/// The document's title and tags.
#[derive(OpenApi)]
#[openapi(
    info(title = "Fleetdesk vault", description = "Credential types, encrypted credentials, audited reveals, history and key rotation."),
    tags(
        (name = "credential-types", description = "The shapes credentials take"),
        (name = "credentials", description = "Credentials, their encrypted values, reveals and history"),
        (name = "vault", description = "Key versions, rotation and tenant settings"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every vault route.
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
pub async fn prepare(config: VaultConfig, deps: Dependencies) -> anyhow::Result<AppState> {
    let root = crypto::RootKey::new(config.master_key.load()?);
    let url = config.database_url.clone();
    let pool = PoolOptions {
        max_size: config.db_pool_size,
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
    let now = deps.clock.now().naive_utc();
    let ring = db
        .run(move |conn| Keyring::open(conn, root, now).map_err(anyhow::Error::from))
        .await?;
    Ok(AppState {
        db,
        config: Arc::new(config),
        ring: Arc::new(ring),
        keys,
        clock: deps.clock,
        bus,
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

/// The background tasks of a running service: the outbox relay, the companies consumer, the
/// JWKS refresher and key maintenance (rewrapping, retiring). They stop when this is dropped.
pub struct Background {
    _relay: RelayHandle,
    _companies: SubscriptionHandle,
    keys: tokio::task::JoinHandle<()>,
    maintenance: tokio::task::JoinHandle<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.keys.abort();
        self.maintenance.abort();
    }
}

/// Starts the relay, the companies consumer, the JWKS refresher and key maintenance.
pub async fn start_background(state: &AppState) -> anyhow::Result<Background> {
    let relay = Relay::new(SERVICE, state.db.clone(), state.bus.clone()).spawn();
    let consumer = Consumer::new(
        events::COMPANIES_CONSUMER,
        state.db.clone(),
        events::record_company,
    );
    let companies = state
        .bus
        .subscribe(
            fleetdesk_events::topology::vault(&state.config.bus.queue_prefix),
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
    let maintenance = keys::spawn_maintenance(
        state.db.clone(),
        state.ring.clone(),
        state.clock.clone(),
        state.config.key_scan,
    );
    Ok(Background {
        _relay: relay,
        _companies: companies,
        keys,
        maintenance,
    })
}

/// A running vault service.
pub type Application = service::Running<AppState, Background>;

/// A vault service that is prepared and consuming events but not serving HTTP yet.
pub type Starting = service::Starting<AppState, Background>;

/// Binds the configured address (port 0 picks a free port), prepares the state and starts the
/// background tasks, without serving yet.
pub async fn start(config: VaultConfig, deps: Dependencies) -> anyhow::Result<Starting> {
    let bound = service::bind(&config.listen)?;
    let state = prepare(config, deps).await?;
    let background = start_background(&state).await?;
    Ok(Starting::new(bound, state, background, serve))
}

/// Prepares everything and serves.
pub async fn build(config: VaultConfig, deps: Dependencies) -> anyhow::Result<Application> {
    Ok(start(config, deps).await?.serve()?)
}
