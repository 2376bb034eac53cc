//! The gateway as its own process.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fleetdesk_gateway::{Application, GatewayConfig};
use fleetdesk_telemetry::{LogFormat, init_tracing};
use fleetdesk_web::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing(LogFormat::from_env());
    let settings = Settings::from_env()?;
    let config = GatewayConfig::from_settings(&settings)?;
    let app = Application::build(config).await?;
    tracing::info!(port = app.port, "gateway listening");
    app.run_until_stopped().await?;
    Ok(())
}
