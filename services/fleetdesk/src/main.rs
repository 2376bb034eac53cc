//! Fleetdesk in one process: every service that exists, each with its own database.
//!
//! SQLite files under `./data/` by default (`FLEETDESK_DATA_DIR` moves them). With
//! `DATABASE_URL` pointing at a PostgreSQL server, each service gets its own database there
//! (`fleetdesk_<service>`), created on first start. Today that is identity, tickets and the
//! vault, with the gateway in front; later services join here.
//!
//! Events travel on the in-process bus, kept durably in a database of its own (`bus`), unless
//! `FLEETDESK_AMQP_URL` names a RabbitMQ broker.

// mimalloc rather than glibc's malloc, as in the gateway: glibc's took 15 % of this
// process's CPU time under concurrent ticket creates (allocating, freeing and consolidating its
// free lists); with mimalloc, 3–5 % more creates per second at 8 connections.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use fleetdesk_gateway::{Application as GatewayApp, GatewayConfig};
use fleetdesk_identity::{Application, Dependencies, IdentityConfig};
use fleetdesk_tickets::TicketsConfig;
use fleetdesk_vault::VaultConfig;
use std::sync::Arc;

use fleetdesk_events::{Bus, LocalBus};
use fleetdesk_store::{Backend, Db, Migrations, PoolOptions, ensure_database};
use fleetdesk_telemetry::{LogFormat, init_tracing};
use fleetdesk_web::config::Settings;

/// The database URL for `service`: its own variable, else its own database on the server
/// `DATABASE_URL` names, else a SQLite file in the data directory.
fn database_url(settings: &Settings, service: &str, data_dir: &str) -> anyhow::Result<String> {
    let own = format!("{}_DATABASE_URL", service.to_ascii_uppercase());
    if let Some(url) = settings.get(&own) {
        return Ok(url.to_owned());
    }
    match settings.get("DATABASE_URL") {
        Some(server) if Backend::of_url(server)? == Backend::Postgres => {
            ensure_database(server, &format!("fleetdesk_{service}"))
                .with_context(|| format!("cannot prepare the {service} database on DATABASE_URL"))
        }
        Some(url) => Ok(url.to_owned()),
        None => Ok(format!("sqlite:{data_dir}/{service}.db")),
    }
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing(LogFormat::from_env());
    let mut settings = Settings::from_env()?;
    let data_dir = settings
        .get("FLEETDESK_DATA_DIR")
        .unwrap_or("./data")
        .to_owned();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {data_dir}"))?;

    let identity_db = {
        let (s, dir) = (settings.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || database_url(&s, "identity", &dir)).await??
    };
    settings.set("IDENTITY_DATABASE_URL", identity_db);
    let tickets_db = {
        let (s, dir) = (settings.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || database_url(&s, "tickets", &dir)).await??
    };
    settings.set("TICKETS_DATABASE_URL", tickets_db);
    let vault_db = {
        let (s, dir) = (settings.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || database_url(&s, "vault", &dir)).await??
    };
    settings.set("VAULT_DATABASE_URL", vault_db);
    let bus: Option<Arc<dyn Bus>> = if settings
        .first_of(&["FLEETDESK_AMQP_URL", "AMQP_URL"])
        .is_some_and(|u| !u.is_empty())
    {
        None
    } else {
        let (s, dir) = (settings.clone(), data_dir.clone());
        let db = tokio::task::spawn_blocking(move || -> anyhow::Result<Db> {
            let url = database_url(&s, "bus", &dir)?;
            Ok(Db::connect(
                "bus",
                &url,
                &Migrations::PLATFORM,
                PoolOptions::default(),
            )?)
        })
        .await??;
        Some(Arc::new(LocalBus::new(db)))
    };
    let mut identity = IdentityConfig::from_settings(&settings, &data_dir)?;
    // The gateway started here sets `X-Forwarded-For` to each client. Identity (its per-address
    // sign-in limits, its audit) believes it when only this machine can reach identity itself;
    // otherwise every sign-in would come from the gateway's 127.0.0.1.
    if settings.get("FLEETDESK_TRUST_FORWARDED_FOR").is_none() && on_loopback(&identity.listen) {
        identity.trust_forwarded_for = true;
    }
    // Tickets subscribes to identity's events before identity publishes its first one (the
    // first administrator), and verifies tokens with the keys of the identity started here.
    if settings.get("FLEETDESK_JWKS_URL").is_none() {
        let port = identity.listen.rsplit(':').next().unwrap_or("0");
        if port == "0" {
            anyhow::bail!(
                "FLEETDESK_IDENTITY_LISTEN needs a fixed port in one process, or set FLEETDESK_JWKS_URL"
            );
        }
        settings.set(
            "FLEETDESK_JWKS_URL",
            format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
        );
    }
    let tickets = fleetdesk_tickets::start(
        TicketsConfig::from_settings(&settings, &data_dir)?,
        Dependencies {
            bus: bus.clone(),
            ..Dependencies::default()
        },
    )
    .await?;
    // The vault keeps tickets' companies: it subscribes before tickets serves. Without a
    // configured master key it makes one in the data directory on first start (and says so).
    let vault = fleetdesk_vault::start(
        VaultConfig::from_settings(&settings, &data_dir, true)?,
        Dependencies {
            bus: bus.clone(),
            ..Dependencies::default()
        },
    )
    .await?;
    let deps = Dependencies {
        bus,
        ..Dependencies::default()
    };
    let identity = Application::build(identity, deps).await?;
    let (identity_port, first_admin) = (identity.port, identity.first_admin.clone());
    let (identity_server, _identity_events) = identity.into_parts();
    let identity_task = tokio::spawn(identity_server);
    if let Err(e) = tickets.state.keys.fetch().await {
        tracing::warn!(error = %e, "tickets could not fetch identity's keys yet");
    }
    let tickets = tickets.serve()?;
    if let Err(e) = vault.state.keys.fetch().await {
        tracing::warn!(error = %e, "the vault could not fetch identity's keys yet");
    }
    let vault = vault.serve()?;

    // The gateway in front, on 8080 unless FLEETDESK_GATEWAY_LISTEN says otherwise; it
    // forwards to the services started here.
    if settings.get("FLEETDESK_GATEWAY_SERVICES").is_none() {
        settings.set("FLEETDESK_GATEWAY_SERVICES", "identity,tickets,vault");
    }
    for (name, port) in [
        ("IDENTITY", identity_port),
        ("TICKETS", tickets.port),
        ("VAULT", vault.port),
    ] {
        let var = format!("FLEETDESK_GATEWAY_UPSTREAM_{name}");
        if settings.get(&var).is_none() {
            settings.set(&var, format!("http://127.0.0.1:{port}"));
        }
    }
    let gateway = GatewayApp::build(GatewayConfig::from_settings(&settings)?).await?;

    println!("\nFleetdesk is running.");
    println!(
        "  API        http://127.0.0.1:{}/api/v1   (the gateway)",
        gateway.port
    );
    println!("  identity   http://127.0.0.1:{identity_port}   (API docs: /docs)");
    println!(
        "  tickets    http://127.0.0.1:{}   (API docs: /docs)",
        tickets.port
    );
    println!(
        "  vault      http://127.0.0.1:{}   (API docs: /docs)",
        vault.port
    );
    println!("  data       {data_dir}");
    if let Some(admin) = &first_admin {
        fleetdesk_identity::bootstrap::announce(admin);
    }
    println!(
        "Log in:\n  curl -s http://127.0.0.1:{}/api/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"email\":\"<admin email>\",\"password\":\"<password>\"}}'\n",
        gateway.port
    );
    tokio::select! {
        r = identity_task => r??,
        r = tickets.run_until_stopped() => r?,
        r = vault.run_until_stopped() => r?,
        r = gateway.run_until_stopped() => r?,
    }
    Ok(())
}

/// Whether `listen` (`host:port`) is reachable from this machine only.
fn on_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host == "localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::on_loopback;

    #[test]
    fn only_loopback_listeners_count_as_local() {
        assert!(on_loopback("127.0.0.1:8081"));
        assert!(on_loopback("[::1]:8081"));
        assert!(on_loopback("localhost:8081"));
        assert!(!on_loopback("0.0.0.0:8081"));
        assert!(!on_loopback("192.168.1.5:8081"));
        assert!(!on_loopback("identity.internal:8081"));
    }
}
