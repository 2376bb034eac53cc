//! Tickets' configuration, read once at start-up.

use std::time::Duration;

use fleetdesk_events::BusConfig;
use fleetdesk_store::default_max_reads;
use fleetdesk_web::config::{ConfigError, Settings};

/// The model triage asks, when configured.
#[derive(Clone)]
pub struct LlmConfig {
    /// An OpenAI-compatible chat-completions endpoint (`FLEETDESK_TRIAGE_LLM_URL`).
    pub url: String,
    /// The model name (`FLEETDESK_TRIAGE_LLM_MODEL`, default `gpt-4o-mini`).
    pub model: String,
    /// Sent as `Authorization: Bearer` (`FLEETDESK_TRIAGE_LLM_API_KEY`), if set.
    pub api_key: Option<String>,
    /// The whole answer must arrive within this (`FLEETDESK_TRIAGE_LLM_TIMEOUT_MS`, 2000).
    pub timeout: Duration,
}

/// Tickets' settings. Not `Debug`: it may hold an API key.
#[derive(Clone)]
pub struct TicketsConfig {
    /// Address to listen on (`FLEETDESK_TICKETS_LISTEN`, default `127.0.0.1:8082`).
    pub listen: String,
    /// `TICKETS_DATABASE_URL`, else `DATABASE_URL`, else `sqlite:<data dir>/tickets.db`.
    pub database_url: String,
    /// Connections in the pool (`FLEETDESK_DB_POOL_SIZE`, default 10).
    pub db_pool_size: u32,
    /// Lists, searches and other reads run at once (`FLEETDESK_DB_MAX_READS`, default one
    /// more than the cores); see `fleetdesk_store::Db::read`.
    pub db_max_reads: usize,
    /// HTTP worker threads (`FLEETDESK_HTTP_WORKERS`).
    pub workers: usize,
    /// Identity's key set (`FLEETDESK_JWKS_URL`, default
    /// `http://127.0.0.1:8081/.well-known/jwks.json`).
    pub jwks_url: String,
    /// Expected `iss` (`FLEETDESK_JWT_ISSUER`, default `fleetdesk`).
    pub issuer: String,
    /// Expected `aud` (`FLEETDESK_JWT_AUDIENCE`, default `fleetdesk-api`).
    pub audience: String,
    /// The event bus.
    pub bus: BusConfig,
    /// The triage model, if any.
    pub llm: Option<LlmConfig>,
    /// How often the breach scheduler looks for due tickets (`FLEETDESK_SLA_SCAN_SECONDS`,
    /// default 10; a breach is marked at most this long after its due time).
    pub sla_scan: Duration,
    /// How a text search on PostgreSQL chooses its path (`store::tickets::SearchTuning`).
    /// Not a setting: tests change it to reach every path with a few tickets.
    pub search: crate::store::tickets::SearchTuning,
}

impl TicketsConfig {
    /// Reads and checks every setting; `data_dir` is where the SQLite default lives.
    pub fn from_settings(s: &Settings, data_dir: &str) -> Result<Self, ConfigError> {
        let http_url = |var: &str, value: &str| -> Result<String, ConfigError> {
            if value.starts_with("http://") || value.starts_with("https://") {
                Ok(value.to_owned())
            } else {
                Err(ConfigError::new(var, "must be an http:// or https:// URL"))
            }
        };
        let llm = match s.get("FLEETDESK_TRIAGE_LLM_URL") {
            None => None,
            Some(url) => {
                let ms: u64 = s.parse_or("FLEETDESK_TRIAGE_LLM_TIMEOUT_MS", 2_000)?;
                if !(100..=30_000).contains(&ms) {
                    return Err(ConfigError::new(
                        "FLEETDESK_TRIAGE_LLM_TIMEOUT_MS",
                        "must be between 100 and 30000",
                    ));
                }
                Some(LlmConfig {
                    url: http_url("FLEETDESK_TRIAGE_LLM_URL", url)?,
                    model: s
                        .get("FLEETDESK_TRIAGE_LLM_MODEL")
                        .unwrap_or("gpt-4o-mini")
                        .to_owned(),
                    api_key: s.get("FLEETDESK_TRIAGE_LLM_API_KEY").map(str::to_owned),
                    timeout: Duration::from_millis(ms),
                })
            }
        };
        let scan: u64 = s.parse_or("FLEETDESK_SLA_SCAN_SECONDS", 10)?;
        if !(1..=30).contains(&scan) {
            return Err(ConfigError::new(
                "FLEETDESK_SLA_SCAN_SECONDS",
                "must be between 1 and 30 (breaches are due within 30 s)",
            ));
        }
        Ok(Self {
            search: Default::default(),
            listen: s
                .get("FLEETDESK_TICKETS_LISTEN")
                .unwrap_or("127.0.0.1:8082")
                .to_owned(),
            database_url: s
                .first_of(&["TICKETS_DATABASE_URL", "DATABASE_URL"])
                .map(str::to_owned)
                .unwrap_or_else(|| format!("sqlite:{data_dir}/tickets.db")),
            db_pool_size: s.parse_or("FLEETDESK_DB_POOL_SIZE", 10)?,
            db_max_reads: match s.parse_or("FLEETDESK_DB_MAX_READS", default_max_reads())? {
                0 => {
                    return Err(ConfigError::new(
                        "FLEETDESK_DB_MAX_READS",
                        "must be at least 1",
                    ));
                }
                n => n,
            },
            workers: s.workers()?,
            jwks_url: http_url(
                "FLEETDESK_JWKS_URL",
                s.get("FLEETDESK_JWKS_URL")
                    .unwrap_or("http://127.0.0.1:8081/.well-known/jwks.json"),
            )?,
            issuer: s
                .get("FLEETDESK_JWT_ISSUER")
                .unwrap_or("fleetdesk")
                .to_owned(),
            audience: s
                .get("FLEETDESK_JWT_AUDIENCE")
                .unwrap_or("fleetdesk-api")
                .to_owned(),
            bus: s.bus()?,
            llm,
            sla_scan: Duration::from_secs(scan),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_reads(value: Option<&str>) -> Result<usize, String> {
        let mut s = Settings::from_pairs([("FLEETDESK_JWT_ISSUER", "fleetdesk")]);
        if let Some(v) = value {
            s.set("FLEETDESK_DB_MAX_READS", v);
        }
        TicketsConfig::from_settings(&s, "/tmp")
            .map(|c| c.db_max_reads)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_at_once_default_to_the_cores_and_one_more_and_must_be_at_least_one() {
        assert_eq!(max_reads(None), Ok(default_max_reads()));
        assert!(default_max_reads() >= 2);
        assert_eq!(max_reads(Some("4")), Ok(4));
        for bad in ["0", "-1", "many"] {
            let e = max_reads(Some(bad)).unwrap_err();
            assert!(e.contains("FLEETDESK_DB_MAX_READS"), "{bad}: {e}");
        }
    }
}
