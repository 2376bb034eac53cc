//! The vault as its own process (microservice deployments).

// mimalloc, as in the gateway and the one binary (services/fleetdesk/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fleetdesk_telemetry::{LogFormat, init_tracing};
use fleetdesk_vault::{Dependencies, VaultConfig};
use fleetdesk_web::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing(LogFormat::from_env());
    let settings = Settings::from_env()?;
    let data_dir = settings
        .get("FLEETDESK_DATA_DIR")
        .unwrap_or("./data")
        .to_owned();
    // A service of its own never makes up a master key: it must be given one.
    let config = VaultConfig::from_settings(&settings, &data_dir, false)?;
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&data_dir)?;
    }
    let app = fleetdesk_vault::build(config, Dependencies::default()).await?;
    tracing::info!(port = app.port, "vault listening");
    app.run_until_stopped().await?;
    Ok(())
}
