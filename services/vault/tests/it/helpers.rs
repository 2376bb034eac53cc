//! The test app: the vault on a fresh database with a known master key, tokens from a real
//! JWKS server, companies published on the bus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetdesk_events::tickets::{CompanyCreated, CompanyState};
use fleetdesk_events::{Event, Message, Origin};
use fleetdesk_store::ManualClock;
use fleetdesk_testkit::{Http, TestDb};
pub use fleetdesk_testkit::{Issuer, assert_invalid_field, assert_problem};
use fleetdesk_vault::crypto::KeyBytes;
use fleetdesk_vault::{AppState, Background, Dependencies, VaultConfig};
use fleetdesk_web::config::Settings;
use serde_json::{Value, json};

pub const TENANT: &str = "tenant-a";
pub const OTHER_TENANT: &str = "tenant-b";

pub struct TestApp {
    pub http: Http,
    pub state: AppState,
    pub issuer: Issuer,
    /// `*` in tenant A.
    pub admin: String,
    pub master_key: String,
    pub db: Arc<TestDb>,
    background: Mutex<Option<Background>>,
}

/// The settings of a vault on `db` with `key` (base64).
pub fn settings(db: &TestDb, issuer: &Issuer, key: &str) -> Settings {
    let mut s = Settings::from_pairs([
        ("FLEETDESK_VAULT_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("FLEETDESK_HTTP_WORKERS", "2"),
        ("FLEETDESK_DB_POOL_SIZE", "4"),
        ("FLEETDESK_JWKS_URL", issuer.jwks_url.as_str()),
        ("FLEETDESK_VAULT_MASTER_KEY", key),
        ("FLEETDESK_VAULT_KEY_SCAN_SECONDS", "1"),
    ]);
    s.set(
        "FLEETDESK_AMQP_QUEUE_PREFIX",
        format!("t{}.", fleetdesk_store::new_id().replace('-', "")),
    );
    s
}

pub async fn spawn() -> TestApp {
    fleetdesk_testkit::install_crypto();
    let db = Arc::new(TestDb::create().expect("test database"));
    let key = KeyBytes::generate().to_base64().to_string();
    spawn_on(db, &key).await.expect("the vault starts")
}

/// A vault on an existing database (to restart one, or to start it with another key).
pub async fn spawn_on(db: Arc<TestDb>, key: &str) -> anyhow::Result<TestApp> {
    let issuer = Issuer::start().await;
    let config = VaultConfig::from_settings(&settings(&db, &issuer, key), "/nonexistent", false)?;
    let deps = Dependencies {
        clock: Arc::new(ManualClock::default()),
        bus: None,
    };
    let app = fleetdesk_vault::build(config, deps).await?;
    let http = Http::new(format!("http://127.0.0.1:{}", app.port));
    let state = app.state.clone();
    let (server, background) = app.into_parts();
    tokio::spawn(server);
    let admin = issuer.token(TENANT, "admin-1", &["*"]);
    Ok(TestApp {
        http,
        state,
        issuer,
        admin,
        master_key: key.to_owned(),
        db,
        background: Mutex::new(Some(background)),
    })
}

impl TestApp {
    /// A token of a user of tenant A with these permissions.
    pub fn token(&self, sub: &str, perms: &[&str]) -> String {
        self.issuer.token(TENANT, sub, perms)
    }

    /// Stops the background tasks (relay, consumer, key maintenance).
    pub fn stop_background(&self) {
        self.background.lock().unwrap().take();
    }

    /// Publishes an event on the bus, as another service's relay would.
    pub async fn publish<E: Event>(&self, tenant: &str, event: &E) {
        let origin = Origin::new(Some(tenant.to_owned()), "system", chrono::Utc::now());
        let env = fleetdesk_events::emit::envelope(&origin, event).unwrap();
        let message = Message {
            id: env.id.to_string(),
            routing_key: E::TYPE.to_owned(),
            payload: serde_json::to_vec(&env).unwrap(),
            traceparent: None,
        };
        for r in self.state.bus.publish(std::slice::from_ref(&message)).await {
            r.unwrap();
        }
    }

    /// A company of `tenant`, announced by tickets and present in the read model.
    pub async fn company(&self, tenant: &str, name: &str) -> String {
        let id = format!("company-{}", fleetdesk_store::new_id().replace('-', ""));
        self.publish(
            tenant,
            &CompanyCreated {
                company: CompanyState {
                    company_id: id.clone(),
                    name: name.into(),
                    identifier: format!("C-{}", &id[8..16]),
                    email_domains: vec![],
                    external_ref: None,
                },
            },
        )
        .await;
        self.wait_for_company(&id, true).await;
        id
    }

    pub async fn wait_for_company(&self, id: &str, present: bool) {
        for _ in 0..200 {
            let id2 = id.to_owned();
            let tenant_of = self
                .state
                .db
                .run(move |c| {
                    use diesel::prelude::*;
                    use fleetdesk_vault::store::schema::companies;
                    companies::table
                        .filter(companies::id.eq(id2))
                        .select(companies::tenant_id)
                        .first::<String>(c)
                        .optional()
                        .map_err(fleetdesk_store::StoreError::from)
                })
                .await
                .unwrap();
            if tenant_of.is_some() == present {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("company {id} did not reach the read model within 10 s");
    }

    /// A type with a plain `username`, a secure `password` and an optional `port`.
    pub async fn login_type(&self, name: &str, scope: Option<&str>) -> Value {
        let a = self
            .http
            .post("/api/v1/credential-types")
            .bearer(&self.admin)
            .json(&json!({
                "name": name,
                "icon": "key",
                "permissionScope": scope,
                "fields": [
                    {"id": "username", "name": "Username", "required": true, "valueType": "plain_text"},
                    {"id": "password", "name": "Password", "required": true, "valueType": "password"},
                    {"id": "port", "name": "Port", "valueType": "port"}
                ]
            }))
            .send()
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    /// A credential of `type_id` for `company` with this password.
    pub async fn credential(&self, type_id: &str, company: &str, password: &str) -> Value {
        let a = self
            .http
            .post("/api/v1/credentials")
            .bearer(&self.admin)
            .json(&json!({
                "name": "Production DB",
                "notes": "primary",
                "typeId": type_id,
                "companyId": company,
                "fields": [
                    {"fieldId": "username", "value": "dbadmin"},
                    {"fieldId": "password", "value": password}
                ]
            }))
            .send()
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    /// The event types in the outbox, oldest first, with their payloads.
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        self.state
            .db
            .run(|c| {
                use diesel::prelude::*;
                use diesel::sql_types::Text;
                #[derive(QueryableByName)]
                struct Row {
                    #[diesel(sql_type = Text)]
                    event_type: String,
                    #[diesel(sql_type = Text)]
                    payload: String,
                }
                diesel::sql_query(
                    "SELECT routing_key AS event_type, payload FROM outbox ORDER BY seq",
                )
                .load::<Row>(c)
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| (r.event_type, serde_json::from_str(&r.payload).unwrap()))
                        .collect()
                })
                .map_err(fleetdesk_store::StoreError::from)
            })
            .await
            .unwrap()
    }
}
