//! Identity's configuration, read once at start-up.

use std::time::Duration;

use fleetdesk_web::config::{ConfigError, Settings};

/// A service allowed to get service tokens (`FLEETDESK_SERVICE_CLIENTS`).
#[derive(Clone)]
pub struct ServiceClient {
    /// The client id, e.g. `tickets`.
    pub id: String,
    /// Its secret.
    pub secret: String,
}

/// Identity's settings. Not `Debug`: it holds secrets.
#[derive(Clone)]
pub struct IdentityConfig {
    /// Address to listen on (`FLEETDESK_IDENTITY_LISTEN`, default `127.0.0.1:8081`).
    pub listen: String,
    /// `IDENTITY_DATABASE_URL`, else `DATABASE_URL`, else `sqlite:<data dir>/identity.db`.
    pub database_url: String,
    /// Connections in the pool (`FLEETDESK_DB_POOL_SIZE`, default 10).
    pub db_pool_size: u32,
    /// HTTP worker threads (`FLEETDESK_HTTP_WORKERS`, default: one per core).
    pub workers: usize,
    /// Whether anyone may register a new tenant (`FLEETDESK_REGISTRATION_ENABLED`).
    pub registration_enabled: bool,
    /// `iss` of issued tokens (`FLEETDESK_JWT_ISSUER`, default `fleetdesk`).
    pub issuer: String,
    /// `aud` of issued tokens (`FLEETDESK_JWT_AUDIENCE`, default `fleetdesk-api`).
    pub audience: String,
    /// Access token lifetime (`FLEETDESK_ACCESS_TOKEN_TTL_SECONDS`, default 900).
    pub access_ttl: Duration,
    /// Refresh token lifetime (`FLEETDESK_REFRESH_TOKEN_TTL_DAYS`, default 14).
    pub refresh_ttl: Duration,
    /// Lifetime of tokens exchanged for API keys (`FLEETDESK_API_KEY_TOKEN_TTL_SECONDS`, 300).
    pub api_key_token_ttl: Duration,
    /// First admin's address (`FLEETDESK_ADMIN_EMAIL`, default `admin@fleetdesk.local`).
    pub admin_email: String,
    /// First admin's password (`FLEETDESK_ADMIN_PASSWORD`); generated and printed when unset.
    pub admin_password: Option<String>,
    /// First tenant's name (`FLEETDESK_ADMIN_TENANT`, default `Fleetdesk`).
    pub admin_tenant: String,
    /// Service clients, `id:secret` pairs separated by commas (`FLEETDESK_SERVICE_CLIENTS`).
    pub service_clients: Vec<ServiceClient>,
    /// Take the client address from `X-Forwarded-For` (`FLEETDESK_TRUST_FORWARDED_FOR`); only
    /// behind the gateway or another proxy that sets it.
    pub trust_forwarded_for: bool,
    /// The event bus (`FLEETDESK_AMQP_URL` or `AMQP_URL`, `FLEETDESK_AMQP_EXCHANGE`,
    /// `FLEETDESK_AMQP_QUEUE_PREFIX`); without a URL, the in-process bus.
    pub bus: fleetdesk_events::BusConfig,
}

impl IdentityConfig {
    /// Reads and checks every setting; `data_dir` is where the SQLite default lives.
    pub fn from_settings(s: &Settings, data_dir: &str) -> Result<Self, ConfigError> {
        let secs =
            |name: &str, default: u64, min: u64, max: u64| -> Result<Duration, ConfigError> {
                let v = s.parse_or(name, default)?;
                if !(min..=max).contains(&v) {
                    return Err(ConfigError::new(
                        name,
                        format!("must be between {min} and {max}"),
                    ));
                }
                Ok(Duration::from_secs(v))
            };
        let service_clients = match s.get("FLEETDESK_SERVICE_CLIENTS") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|pair| match pair.split_once(':') {
                    Some((id, secret)) if !id.is_empty() && secret.len() >= 16 => {
                        Ok(ServiceClient { id: id.to_owned(), secret: secret.to_owned() })
                    }
                    _ => Err(ConfigError::new(
                        "FLEETDESK_SERVICE_CLIENTS",
                        "expected id:secret pairs separated by commas, each secret at least 16 characters",
                    )),
                })
                .collect::<Result<_, _>>()?,
        };
        let admin_email = s
            .get("FLEETDESK_ADMIN_EMAIL")
            .unwrap_or("admin@fleetdesk.local");
        let admin_email = crate::domain::email::Email::parse(admin_email)
            .map_err(|m| ConfigError::new("FLEETDESK_ADMIN_EMAIL", m))?
            .into_string();
        let admin_password = s.get("FLEETDESK_ADMIN_PASSWORD").map(str::to_owned);
        if let Some(p) = &admin_password {
            crate::domain::password::check_policy(p, &admin_email)
                .map_err(|m| ConfigError::new("FLEETDESK_ADMIN_PASSWORD", m))?;
        }
        Ok(Self {
            listen: s
                .get("FLEETDESK_IDENTITY_LISTEN")
                .unwrap_or("127.0.0.1:8081")
                .to_owned(),
            database_url: s
                .first_of(&["IDENTITY_DATABASE_URL", "DATABASE_URL"])
                .map(str::to_owned)
                .unwrap_or_else(|| format!("sqlite:{data_dir}/identity.db")),
            db_pool_size: s.parse_or("FLEETDESK_DB_POOL_SIZE", 10)?,
            workers: s.workers()?,
            registration_enabled: s.bool_or("FLEETDESK_REGISTRATION_ENABLED", false)?,
            issuer: s
                .get("FLEETDESK_JWT_ISSUER")
                .unwrap_or("fleetdesk")
                .to_owned(),
            audience: s
                .get("FLEETDESK_JWT_AUDIENCE")
                .unwrap_or("fleetdesk-api")
                .to_owned(),
            access_ttl: secs("FLEETDESK_ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?,
            refresh_ttl: Duration::from_secs(
                s.parse_or::<u64>("FLEETDESK_REFRESH_TOKEN_TTL_DAYS", 14)?
                    .clamp(1, 365)
                    * 86_400,
            ),
            api_key_token_ttl: secs("FLEETDESK_API_KEY_TOKEN_TTL_SECONDS", 300, 30, 3_600)?,
            admin_email,
            admin_password,
            admin_tenant: s
                .get("FLEETDESK_ADMIN_TENANT")
                .unwrap_or("Fleetdesk")
                .to_owned(),
            service_clients,
            trust_forwarded_for: s.bool_or("FLEETDESK_TRUST_FORWARDED_FOR", false)?,
            bus: s.bus()?,
        })
    }
}
