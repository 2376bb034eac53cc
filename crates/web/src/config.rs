//! Configuration from the environment and an optional TOML file.
//!
//! Variables are `FLEETDESK_*` plus the conventional `DATABASE_URL`, `<SERVICE>_DATABASE_URL`,
//! `AMQP_URL` and `OTEL_*`. `FLEETDESK_CONFIG` may name a TOML file whose keys are the same
//! names in lower case without the `FLEETDESK_` prefix (`registration_enabled = true`,
//! `database_url = "..."`); the environment wins over the file. Each service reads these into
//! one typed struct at start-up, and a bad value stops it with a message naming the variable.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ConfigError {
    /// The variable.
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `name`.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

/// The raw settings: variable name to value.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    vars: BTreeMap<String, String>,
}

fn is_ours(name: &str) -> bool {
    name.starts_with("FLEETDESK_")
        || name.ends_with("DATABASE_URL")
        || name == "AMQP_URL"
        || name.starts_with("OTEL_")
}

/// The variable a TOML key stands for.
fn variable_for(key: &str) -> String {
    let upper = key.to_ascii_uppercase();
    if upper.ends_with("DATABASE_URL") || upper == "AMQP_URL" || upper.starts_with("OTEL_") {
        upper
    } else {
        format!("FLEETDESK_{upper}")
    }
}

impl Settings {
    /// Reads the process environment and the `FLEETDESK_CONFIG` file, if named.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| is_ours(k)).collect();
        let mut vars = BTreeMap::new();
        if let Some(path) = env.get("FLEETDESK_CONFIG").filter(|p| !p.is_empty()) {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("FLEETDESK_CONFIG", format!("cannot read {path}: {e}"))
            })?;
            let table: toml::Table = text.parse().map_err(|e| {
                ConfigError::new("FLEETDESK_CONFIG", format!("{path} is not valid TOML: {e}"))
            })?;
            for (key, value) in table {
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                vars.insert(variable_for(&key), text);
            }
        }
        vars.extend(env);
        Ok(Self { vars })
    }

    /// Settings from explicit pairs (tests, the all-in-one binary).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// The value of a variable; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of several variables that is set (e.g. `IDENTITY_DATABASE_URL`, `DATABASE_URL`).
    pub fn first_of(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// A parsed value, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::new(name, format!("cannot use {raw:?}: {e}"))),
        }
    }

    /// A boolean (`true`/`false`/`1`/`0`/`yes`/`no`), or `default` when unset.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(
                name,
                format!("expected true or false, got {v:?}"),
            )),
        }
    }

    /// A required value.
    pub fn require(&self, name: &str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required"))
    }

    /// HTTP worker threads (`FLEETDESK_HTTP_WORKERS`, default one per core).
    pub fn workers(&self) -> Result<usize, ConfigError> {
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        Ok(self.parse_or("FLEETDESK_HTTP_WORKERS", cores)?.max(1))
    }

    /// A name made of letters, digits, `.`, `_` and `-` (at most 100), or `default`.
    pub fn name_or(&self, var: &str, default: &str, empty_ok: bool) -> Result<String, ConfigError> {
        let v = self.get(var).unwrap_or(default).to_owned();
        let ok = (empty_ok || !v.is_empty())
            && v.len() <= 100
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(v)
        } else {
            Err(ConfigError::new(
                var,
                "letters, digits, '.', '_' and '-' only, at most 100",
            ))
        }
    }

    /// The event bus settings every service shares: `FLEETDESK_AMQP_URL` (else `AMQP_URL`;
    /// unset: the in-process bus), `FLEETDESK_AMQP_EXCHANGE`, `FLEETDESK_AMQP_QUEUE_PREFIX`.
    pub fn bus(&self) -> Result<fleetdesk_events::BusConfig, ConfigError> {
        let url = match self
            .first_of(&["FLEETDESK_AMQP_URL", "AMQP_URL"])
            .filter(|u| !u.is_empty())
        {
            Some(u) if u.starts_with("amqp://") || u.starts_with("amqps://") => Some(u.to_owned()),
            Some(_) => {
                return Err(ConfigError::new(
                    "FLEETDESK_AMQP_URL",
                    "must start with amqp:// or amqps://",
                ));
            }
            None => None,
        };
        Ok(fleetdesk_events::BusConfig {
            url,
            exchange: self.name_or("FLEETDESK_AMQP_EXCHANGE", "fleetdesk.events", false)?,
            queue_prefix: self.name_or("FLEETDESK_AMQP_QUEUE_PREFIX", "", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_variable() {
        let s = Settings::from_pairs([("FLEETDESK_X", "maybe"), ("FLEETDESK_N", "ten")]);
        assert_eq!(
            s.bool_or("FLEETDESK_X", false).unwrap_err().name,
            "FLEETDESK_X"
        );
        let e = s.parse_or::<u16>("FLEETDESK_N", 1).unwrap_err();
        assert!(
            e.to_string().starts_with("FLEETDESK_N: cannot use \"ten\""),
            "{e}"
        );
        assert_eq!(s.parse_or::<u16>("FLEETDESK_UNSET", 7).unwrap(), 7);
    }

    #[test]
    fn toml_keys_map_to_variables() {
        assert_eq!(
            variable_for("registration_enabled"),
            "FLEETDESK_REGISTRATION_ENABLED"
        );
        assert_eq!(
            variable_for("identity_database_url"),
            "IDENTITY_DATABASE_URL"
        );
        assert_eq!(variable_for("amqp_url"), "AMQP_URL");
    }
}
