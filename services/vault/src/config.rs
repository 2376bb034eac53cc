//! The vault's configuration, read once at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetdesk_events::BusConfig;
use fleetdesk_web::config::{ConfigError, Settings};

use crate::crypto::KeyBytes;

/// Where the root (master) key comes from.
#[derive(Clone)]
pub enum MasterKey {
    /// `FLEETDESK_VAULT_MASTER_KEY`: base64 of 32 bytes.
    Given(KeyBytes),
    /// `FLEETDESK_VAULT_MASTER_KEY_FILE`: a file holding the base64 key. With `generate`, a
    /// missing file is created with a new key (mode 0600): the one-binary mode's first start.
    File { path: PathBuf, generate: bool },
}

/// The vault's settings. Not `Debug`: it holds the master key.
#[derive(Clone)]
pub struct VaultConfig {
    /// Address to listen on (`FLEETDESK_VAULT_LISTEN`, default `127.0.0.1:8085`).
    pub listen: String,
    /// `VAULT_DATABASE_URL`, else `DATABASE_URL`, else `sqlite:<data dir>/vault.db`.
    pub database_url: String,
    /// Connections in the pool (`FLEETDESK_DB_POOL_SIZE`, default 10).
    pub db_pool_size: u32,
    /// HTTP worker threads (`FLEETDESK_HTTP_WORKERS`).
    pub workers: usize,
    /// Identity's key set (`FLEETDESK_JWKS_URL`).
    pub jwks_url: String,
    /// Expected `iss` (`FLEETDESK_JWT_ISSUER`, default `fleetdesk`).
    pub issuer: String,
    /// Expected `aud` (`FLEETDESK_JWT_AUDIENCE`, default `fleetdesk-api`).
    pub audience: String,
    /// The event bus.
    pub bus: BusConfig,
    /// The master key.
    pub master_key: MasterKey,
    /// How often every replica looks for data keys to rewrap and KEK versions to retire
    /// (`FLEETDESK_VAULT_KEY_SCAN_SECONDS`, default 30).
    pub key_scan: Duration,
}

impl VaultConfig {
    /// Reads and checks every setting; `data_dir` is where the SQLite default lives.
    /// `generate_key` lets a missing key file be created (the one-binary mode).
    pub fn from_settings(
        s: &Settings,
        data_dir: &str,
        generate_key: bool,
    ) -> Result<Self, ConfigError> {
        let master_key = match (
            s.get("FLEETDESK_VAULT_MASTER_KEY"),
            s.get("FLEETDESK_VAULT_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "FLEETDESK_VAULT_MASTER_KEY",
                    "set either the key or FLEETDESK_VAULT_MASTER_KEY_FILE, not both",
                ));
            }
            (Some(k), None) => MasterKey::Given(
                KeyBytes::from_base64(k)
                    .map_err(|m| ConfigError::new("FLEETDESK_VAULT_MASTER_KEY", m))?,
            ),
            (None, Some(p)) => MasterKey::File {
                path: PathBuf::from(p),
                generate: generate_key,
            },
            (None, None) if generate_key => MasterKey::File {
                path: Path::new(data_dir).join("vault-master.key"),
                generate: true,
            },
            (None, None) => {
                return Err(ConfigError::new(
                    "FLEETDESK_VAULT_MASTER_KEY",
                    "is required: base64 of 32 random bytes (e.g. `openssl rand -base64 32`), or name a key file in FLEETDESK_VAULT_MASTER_KEY_FILE",
                ));
            }
        };
        let scan: u64 = s.parse_or("FLEETDESK_VAULT_KEY_SCAN_SECONDS", 30)?;
        if !(1..=3600).contains(&scan) {
            return Err(ConfigError::new(
                "FLEETDESK_VAULT_KEY_SCAN_SECONDS",
                "must be between 1 and 3600",
            ));
        }
        let jwks = s
            .get("FLEETDESK_JWKS_URL")
            .unwrap_or("http://127.0.0.1:8081/.well-known/jwks.json");
        if !(jwks.starts_with("http://") || jwks.starts_with("https://")) {
            return Err(ConfigError::new(
                "FLEETDESK_JWKS_URL",
                "must be an http:// or https:// URL",
            ));
        }
        Ok(Self {
            listen: s
                .get("FLEETDESK_VAULT_LISTEN")
                .unwrap_or("127.0.0.1:8085")
                .to_owned(),
            database_url: s
                .first_of(&["VAULT_DATABASE_URL", "DATABASE_URL"])
                .map(str::to_owned)
                .unwrap_or_else(|| format!("sqlite:{data_dir}/vault.db")),
            db_pool_size: s.parse_or("FLEETDESK_DB_POOL_SIZE", 10)?,
            workers: s.workers()?,
            jwks_url: jwks.to_owned(),
            issuer: s
                .get("FLEETDESK_JWT_ISSUER")
                .unwrap_or("fleetdesk")
                .to_owned(),
            audience: s
                .get("FLEETDESK_JWT_AUDIENCE")
                .unwrap_or("fleetdesk-api")
                .to_owned(),
            bus: s.bus()?,
            master_key,
            key_scan: Duration::from_secs(scan),
        })
    }
}

impl MasterKey {
    /// The key: given, read from its file, or generated into the file (saying so).
    pub fn load(&self) -> anyhow::Result<KeyBytes> {
        match self {
            MasterKey::Given(k) => Ok(k.clone()),
            MasterKey::File { path, generate } => match std::fs::read_to_string(path) {
                Ok(text) => KeyBytes::from_base64(&text).map_err(|m| {
                    anyhow::anyhow!("the vault master key file {} {m}", path.display())
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && *generate => {
                    let key = KeyBytes::generate();
                    write_private(path, key.to_base64().as_bytes())?;
                    tracing::warn!(
                        path = %path.display(),
                        "generated a new vault master key; back this file up: without it the vault's secrets cannot be read"
                    );
                    Ok(key)
                }
                Err(e) => Err(anyhow::anyhow!(
                    "cannot read the vault master key file {}: {e}",
                    path.display()
                )),
            },
        }
    }
}

/// Writes a new file only its owner can read (0600), failing if it exists.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
