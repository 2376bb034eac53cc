//! Test helpers shared by every service's integration tests.
//!
//! - [`TestDb`]: a fresh database per test on the backend `FLEETDESK_TEST_DATABASE_URL` names
//!   (unset: a SQLite file; a `postgres://` server URL: a schema of its own in the
//!   `fleetdesk_test` database, migrated, dropped afterwards).
//! - [`Http`]: a small client returning status, headers and JSON.
//! - [`forge`]: tokens of every bad kind a verifier must refuse.

// Test helpers fail loudly: a panic here is a failed test with its cause.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod forge;
pub mod issuer;
mod proxy;

pub use issuer::Issuer;
pub use proxy::TcpProxy;

use std::sync::Once;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use fleetdesk_store::{Backend, Migrations, ensure_database};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Installs the rustls crypto provider once (reqwest is built without a default one).
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The PostgreSQL server tests run against, if any (`FLEETDESK_TEST_DATABASE_URL`).
pub fn postgres_server() -> Option<String> {
    std::env::var("FLEETDESK_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The RabbitMQ broker tests run against (`FLEETDESK_TEST_AMQP_URL`). Unset, the tests that
/// need a broker run on the in-process bus instead; with `CI=true` an unset URL is a failure,
/// so CI can never skip them silently.
pub fn amqp_server() -> Option<String> {
    required_in_ci("FLEETDESK_TEST_AMQP_URL", "RabbitMQ")
}

/// The Redis server tests run against (`FLEETDESK_TEST_REDIS_URL`), under the same rule as
/// [`amqp_server`].
pub fn redis_server() -> Option<String> {
    required_in_ci("FLEETDESK_TEST_REDIS_URL", "Redis")
}

fn required_in_ci(var: &str, what: &str) -> Option<String> {
    let url = std::env::var(var).ok().filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {var} is not set: {what} tests cannot be skipped in CI");
    }
    url
}

/// A database for one test, removed when dropped.
pub struct TestDb {
    /// The URL the service should use.
    pub url: String,
    /// Which backend it is.
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(std::path::PathBuf),
    PgSchema { admin_url: String, schema: String },
}

impl TestDb {
    /// A fresh, empty database (the service migrates it when it starts).
    pub fn create() -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match postgres_server() {
            None => {
                let dir = std::env::temp_dir().join("fleetdesk-tests");
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(format!("{id}.db"));
                Ok(Self {
                    url: format!("sqlite:{}", path.display()),
                    backend: Backend::Sqlite,
                    cleanup: Cleanup::SqliteFile(path),
                })
            }
            Some(server) => {
                static SHARED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
                let admin_url = {
                    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
                    match shared.as_ref() {
                        Some(url) => url.clone(),
                        None => {
                            let url = ensure_database(&server, "fleetdesk_test").with_context(|| {
                                format!("PostgreSQL at {server} cannot be reached (FLEETDESK_TEST_DATABASE_URL)")
                            })?;
                            *shared = Some(url.clone());
                            url
                        }
                    }
                };
                let schema = format!("t_{id}");
                let mut conn = PgConnection::establish(&admin_url)?;
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
                let mut url = url::Url::parse(&admin_url)?;
                url.query_pairs_mut()
                    .append_pair("options", &format!("-csearch_path={schema}"));
                Ok(Self {
                    url: url.to_string(),
                    backend: Backend::Postgres,
                    cleanup: Cleanup::PgSchema { admin_url, schema },
                })
            }
        }
    }

    /// A fresh database with a service's migrations already run.
    pub fn migrated(migrations: &Migrations) -> anyhow::Result<Self> {
        let db = Self::create()?;
        migrations.run(db.backend, &db.url)?;
        Ok(db)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::PgSchema { admin_url, schema } => {
                if let Ok(mut conn) = PgConnection::establish(admin_url) {
                    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }
        }
    }
}

/// An answer: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Parsed body.
    pub body: Value,
    /// Raw body text.
    pub text: String,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

/// An HTTP client bound to one base URL.
#[derive(Clone)]
pub struct Http {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    client: reqwest::Client,
}

/// One request being built.
pub struct Call {
    builder: reqwest::RequestBuilder,
}

impl Http {
    /// A client for `base`.
    pub fn new(base: impl Into<String>) -> Self {
        install_crypto();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            base: base.into(),
            client,
        }
    }

    /// A request with any method.
    pub fn call(&self, method: &str, path: &str) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        Call {
            builder: self.client.request(method, format!("{}{path}", self.base)),
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Call {
        self.call("GET", path)
    }

    /// POST.
    pub fn post(&self, path: &str) -> Call {
        self.call("POST", path)
    }

    /// PATCH.
    pub fn patch(&self, path: &str) -> Call {
        self.call("PATCH", path)
    }

    /// PUT.
    pub fn put(&self, path: &str) -> Call {
        self.call("PUT", path)
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Call {
        self.call("DELETE", path)
    }
}

impl Call {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        Self {
            builder: self.builder.bearer_auth(token),
        }
    }

    /// Any header.
    pub fn header(self, name: &str, value: &str) -> Self {
        Self {
            builder: self.builder.header(name, value),
        }
    }

    /// A JSON body.
    pub fn json(self, body: &Value) -> Self {
        Self {
            builder: self.builder.json(body),
        }
    }

    /// A raw body with a content type.
    pub fn body(self, content_type: &str, body: impl Into<String>) -> Self {
        Self {
            builder: self
                .builder
                .header("content-type", content_type)
                .body(body.into()),
        }
    }

    /// Sends it; panics on a transport error (tests want to fail loudly).
    pub async fn send(self) -> Answer {
        let response = self.builder.send().await.expect("request failed to send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }
}

/// Asserts a problem+json answer with this status and code.
#[track_caller]
pub fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "expected {status} {code}, got {}", a.text);
    assert_eq!(
        a.header("content-type"),
        Some("application/problem+json"),
        "{}",
        a.text
    );
    assert_eq!(a.body["code"], code, "{}", a.text);
    assert_eq!(a.body["status"], status);
    assert!(
        a.body["traceId"].as_str().is_some_and(|t| t.len() == 32),
        "{}",
        a.text
    );
    assert!(
        a.body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:fleetdesk:problem:")
    );
}

/// Asserts a 400 whose `errors` name `field`.
#[track_caller]
pub fn assert_invalid_field(a: &Answer, field: &str) {
    assert_problem(a, 400, "validation_failed");
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&field),
        "expected an error on {field}, got {fields:?}"
    );
}
