//! The vault: credential types, credentials whose secure values are sealed with envelope
//! encryption (root key → versioned KEKs → a data key per credential → AES-256-GCM values),
//! audited reveals, value history and KEK rotation without downtime.
//!
//! `main` and the all-in-one binary both call [`Application::build`]; integration tests do
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

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::{App, HttpServer};
use fleetdesk_auth::RemoteKeys;
use fleetdesk_events::relay::RelayHandle;
use fleetdesk_events::{Bus, Consumer, Relay, SubscriptionHandle};
use fleetdesk_store::{Clock, Db, Migrations, PoolOptions, SystemClock};
use fleetdesk_web::context::{ServiceName, observe};
use fleetdesk_web::docs::{CommonDocs, swagger};
use fleetdesk_web::extract::path_config;
use fleetdesk_web::health::{BusProbe, Readiness};
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

/// What the service depends on besides its configuration; tests swap these.
#[derive(Clone)]
pub struct Dependencies {
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The event bus; `None` builds it from the configuration.
    pub bus: Option<Arc<dyn Bus>>,
}

impl Default for Dependencies {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            bus: None,
        }
    }
}

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
    let workers = state.config.workers;
    let _ = fleetdesk_telemetry::metrics_handle();
    let openapi = openapi();
    let server = HttpServer::new(move || {
        let readiness = Readiness {
            db: state.db.clone(),
            bus: Some(Arc::new(BusProbe(state.bus.clone()))),
        };
        App::new()
            .app_data(ServiceName(SERVICE))
            .app_data(Data::new(state.clone()))
            .app_data(state.keys.clone())
            .app_data(Data::new(readiness))
            .app_data(path_config())
            .wrap(from_fn(observe))
            .into_utoipa_app()
            .configure(routes::configure)
            .into_app()
            .service(swagger(openapi.clone()))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
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
            events::subscription(&state.config.bus.queue_prefix),
            consumer,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot subscribe to events: {e}"))?;
    if let Err(e) = state.keys.fetch().await {
        tracing::warn!(error = %e, "no signing keys yet; they are fetched on the first token");
    }
    let keys = state
        .keys
        .clone()
        .into_inner()
        .spawn_refresh(Duration::from_secs(300));
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
pub struct Application {
    /// The port it listens on.
    pub port: u16,
    /// Its state (tests reach the database through it).
    pub state: AppState,
    server: Server,
    background: Background,
}

/// A vault service that is prepared and consuming events but not serving HTTP yet (the
/// one-binary mode subscribes every consumer before the first event is published).
pub struct Starting {
    /// The port it will listen on.
    pub port: u16,
    /// Its state.
    pub state: AppState,
    listener: TcpListener,
    background: Background,
}

impl Starting {
    /// Starts serving HTTP.
    pub fn serve(self) -> anyhow::Result<Application> {
        let server = serve(self.state.clone(), self.listener)?;
        Ok(Application {
            port: self.port,
            state: self.state,
            server,
            background: self.background,
        })
    }
}

impl Application {
    /// Binds the configured address (port 0 picks a free port), prepares the state and starts
    /// the background tasks, without serving yet.
    pub async fn start(config: VaultConfig, deps: Dependencies) -> anyhow::Result<Starting> {
        let listener = TcpListener::bind(&config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr()?.port();
        let state = prepare(config, deps).await?;
        let background = start_background(&state).await?;
        Ok(Starting {
            port,
            state,
            listener,
            background,
        })
    }

    /// Prepares everything and serves.
    pub async fn build(config: VaultConfig, deps: Dependencies) -> anyhow::Result<Self> {
        Self::start(config, deps).await?.serve()
    }

    /// Serves until the server stops (Ctrl-C or SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (server, _background) = self.into_parts();
        server.await
    }

    /// The HTTP server and the background tasks, to run and stop separately.
    pub fn into_parts(self) -> (Server, Background) {
        (self.server, self.background)
    }
}
