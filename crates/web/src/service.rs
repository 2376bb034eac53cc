//! What every service's `lib.rs` shares: its dependencies, its HTTP server, and the two
//! stages of a running service (prepared and consuming events, then serving HTTP).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::Data;
use actix_web::{App, HttpServer};
use fleetdesk_events::Bus;
use fleetdesk_store::{Clock, Db, SystemClock};
use utoipa::openapi::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::context::{ServiceName, observe};
use crate::docs::swagger;
use crate::extract::path_config;
use crate::health::{BusProbe, Readiness};

/// What a service depends on besides its configuration; tests swap these.
#[derive(Clone)]
pub struct Dependencies {
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The event bus; `None` builds it from the configuration. The one-binary mode passes
    /// the in-process bus all its services share.
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

/// One service's HTTP API, for [`serve`].
pub struct Api<S, K> {
    /// The name in logs and metrics.
    pub name: &'static str,
    /// What every handler shares.
    pub state: S,
    /// How tokens are verified (the extractors find it in the app data).
    pub verifier: Data<K>,
    /// The database and bus, for `/health/ready`.
    pub db: Db,
    /// See `db`.
    pub bus: Arc<dyn Bus>,
    /// Registers the routes.
    pub routes: fn(&mut ServiceConfig),
    /// The route document, served at `/openapi.json` with its docs page.
    pub openapi: OpenApi,
    /// HTTP worker threads.
    pub workers: usize,
}

/// The HTTP server of `api` over `listener`: request context and metrics, readiness of the
/// database and bus, the routes and their docs.
pub fn serve<S, K>(api: Api<S, K>, listener: TcpListener) -> std::io::Result<Server>
where
    S: Clone + Send + 'static,
    K: 'static + Send + Sync,
{
    // Install the recorder before the first request so nothing recorded is lost.
    let _ = fleetdesk_telemetry::metrics_handle();
    let Api {
        name,
        state,
        verifier,
        db,
        bus,
        routes,
        openapi,
        workers,
    } = api;
    let server = HttpServer::new(move || {
        let readiness = Readiness {
            db: db.clone(),
            bus: Some(Arc::new(BusProbe(bus.clone()))),
        };
        App::new()
            .app_data(ServiceName(name))
            .app_data(Data::new(state.clone()))
            .app_data(verifier.clone())
            .app_data(Data::new(readiness))
            .app_data(path_config())
            .wrap(from_fn(observe))
            .into_utoipa_app()
            .configure(routes)
            .into_app()
            .service(swagger(openapi.clone()))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Binds `listen` (port 0 picks a free port): the listener and its port.
pub fn bind(listen: &str) -> std::io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(listen)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// A service that is prepared and consuming events but not serving HTTP yet (the one-binary
/// mode subscribes every consumer before the first event is published). `B` holds its
/// background tasks, which stop when it is dropped.
pub struct Starting<S, B> {
    /// The port it will listen on.
    pub port: u16,
    /// Its state.
    pub state: S,
    listener: TcpListener,
    background: B,
    serve: fn(S, TcpListener) -> std::io::Result<Server>,
}

impl<S: Clone, B> Starting<S, B> {
    /// A service bound to `listener` that `serve` will serve.
    pub fn new(
        (listener, port): (TcpListener, u16),
        state: S,
        background: B,
        serve: fn(S, TcpListener) -> std::io::Result<Server>,
    ) -> Self {
        Self {
            port,
            state,
            listener,
            background,
            serve,
        }
    }

    /// Starts serving HTTP.
    pub fn serve(self) -> std::io::Result<Running<S, B>> {
        let server = (self.serve)(self.state.clone(), self.listener)?;
        Ok(Running {
            port: self.port,
            state: self.state,
            server,
            background: self.background,
        })
    }
}

/// A running service.
pub struct Running<S, B> {
    /// The port it listens on.
    pub port: u16,
    /// Its state (tests reach the database through it).
    pub state: S,
    server: Server,
    background: B,
}

impl<S, B> Running<S, B> {
    /// Serves until the server stops (Ctrl-C or SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (server, _background) = self.into_parts();
        server.await
    }

    /// The HTTP server and the background tasks, to run and stop separately.
    pub fn into_parts(self) -> (Server, B) {
        (self.server, self.background)
    }
}
