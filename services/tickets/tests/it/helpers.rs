//! The test app: tickets on a fresh database, tokens signed by a test key that a real JWKS
//! server publishes, users fed through the bus the way identity's events feed them, a
//! controllable clock, and a fake OpenAI-compatible server for triage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use fleetdesk_events::identity::{UserAccess, UserRegistered, UserUpdated};
use fleetdesk_events::{Event, Message, Origin};
use fleetdesk_store::ManualClock;
pub use fleetdesk_testkit::Issuer;
use fleetdesk_testkit::{Answer, Http, TestDb};
pub use fleetdesk_testkit::{assert_invalid_field, assert_problem};
use fleetdesk_tickets::{AppState, Background, Dependencies, TicketsConfig};
use fleetdesk_web::config::Settings;
use serde_json::{Value, json};

/// What the fake model answers.
#[derive(Clone)]
pub enum ModelBehaviour {
    /// 200 with this message content.
    Answer(String),
    /// This HTTP status.
    Status(u16),
    /// Answers after this long.
    Slow(Duration),
}

/// A fake OpenAI-compatible chat-completions server.
pub struct FakeModel {
    pub url: String,
    pub behaviour: Arc<Mutex<ModelBehaviour>>,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl FakeModel {
    pub async fn start(behaviour: ModelBehaviour) -> Self {
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (behaviour.clone(), requests.clone());
        let server = HttpServer::new(move || {
            let (b, r) = (b.clone(), r.clone());
            App::new().route(
                "/v1/chat/completions",
                web::post().to(move |body: web::Json<Value>| {
                    let (b, r) = (b.clone(), r.clone());
                    async move {
                        r.lock().unwrap().push(body.into_inner());
                        let now = b.lock().unwrap().clone();
                        match now {
                            ModelBehaviour::Answer(content) => HttpResponse::Ok().json(json!({
                                "id": "chatcmpl-1", "object": "chat.completion", "model": "fake-triage",
                                "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}]
                            })),
                            ModelBehaviour::Status(s) => {
                                HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap())
                                    .json(json!({"error": {"message": "overloaded"}}))
                            }
                            ModelBehaviour::Slow(d) => {
                                tokio::time::sleep(d).await;
                                HttpResponse::Ok().json(json!({"choices": []}))
                            }
                        }
                    }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
            behaviour,
            requests,
        }
    }

    pub fn set(&self, b: ModelBehaviour) {
        *self.behaviour.lock().unwrap() = b;
    }
}

pub const TENANT: &str = "tenant-a";
pub const OTHER_TENANT: &str = "tenant-b";

/// Everything an agent of the tests may do.
pub const AGENT: &[&str] = &["ticket.*", "product.read", "company.read"];

pub struct TestApp {
    pub http: Http,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub issuer: Issuer,
    /// `*` in tenant A.
    pub admin: String,
    background: Mutex<Option<Background>>,
    _db: TestDb,
}

pub async fn spawn() -> TestApp {
    spawn_with(&[]).await
}

pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
    spawn_configured(extra, |_| {}).await
}

/// A service whose text searches on PostgreSQL look through only `window` tickets first.
pub async fn spawn_with_search(window: i64, few_matches: f64) -> TestApp {
    spawn_configured(&[], |c| {
        c.search = fleetdesk_tickets::store::tickets::SearchTuning {
            window,
            few_matches,
        }
    })
    .await
}

async fn spawn_configured(
    extra: &[(&str, &str)],
    adjust: impl FnOnce(&mut TicketsConfig),
) -> TestApp {
    fleetdesk_testkit::install_crypto();
    let db = TestDb::create().expect("test database");
    let issuer = Issuer::start().await;
    let mut settings = Settings::from_pairs([
        ("FLEETDESK_TICKETS_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("FLEETDESK_HTTP_WORKERS", "2"),
        ("FLEETDESK_DB_POOL_SIZE", "4"),
        ("FLEETDESK_JWKS_URL", issuer.jwks_url.as_str()),
        ("FLEETDESK_SLA_SCAN_SECONDS", "1"),
    ]);
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    settings.set("FLEETDESK_AMQP_QUEUE_PREFIX", prefix);
    for (k, v) in extra {
        settings.set(k, *v);
    }
    let mut config = TicketsConfig::from_settings(&settings, "/nonexistent").expect("config");
    adjust(&mut config);
    let clock = Arc::new(ManualClock::default());
    let deps = Dependencies {
        clock: clock.clone(),
        bus: None,
    };
    let app = fleetdesk_tickets::build(config, deps)
        .await
        .expect("tickets starts");
    let http = Http::new(format!("http://127.0.0.1:{}", app.port));
    let state = app.state.clone();
    let (server, background) = app.into_parts();
    tokio::spawn(server);
    let admin = issuer.token(TENANT, "admin-1", &["*"]);
    TestApp {
        http,
        state,
        clock,
        issuer,
        admin,
        background: Mutex::new(Some(background)),
        _db: db,
    }
}

impl TestApp {
    /// A token of a user of tenant A with these permissions.
    pub fn token(&self, sub: &str, perms: &[&str]) -> String {
        self.issuer.token(TENANT, sub, perms)
    }

    /// Stops the background tasks (relay, consumer, scheduler).
    pub fn stop_background(&self) {
        self.background.lock().unwrap().take();
    }

    /// Publishes an identity event on the bus, as identity's relay would.
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

    /// Waits until the read model knows `user_id` with `status` and `perms`.
    pub async fn wait_for_user(&self, user_id: &str, status: &str, perms: &[&str]) {
        let perms_json = serde_json::to_string(perms).unwrap();
        for _ in 0..200 {
            let (id, s, p) = (user_id.to_owned(), status.to_owned(), perms_json.clone());
            let found = self
                .state
                .db
                .run(move |c| {
                    fleetdesk_tickets::store::users::find_any(c, &id)
                        .map(|u| u.is_some_and(|u| u.status == s && u.permissions == p))
                        .map_err(fleetdesk_store::StoreError::from)
                })
                .await
                .unwrap();
            if found {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("user {user_id} did not reach {status} in the read model within 10 s");
    }

    /// An agent of `tenant` known to the read model (through a `user.registered` event);
    /// returns their id and a token.
    pub async fn agent_in(&self, tenant: &str, name: &str, perms: &[&str]) -> (String, String) {
        let id = format!("user-{}", uuid::Uuid::new_v4().simple());
        self.publish(
            tenant,
            &UserRegistered {
                user_id: id.clone(),
                email: format!("{name}@acme.test"),
                name: name.into(),
                via: fleetdesk_events::identity::Registration::Invite,
                roles: vec!["agent".into()],
                access: Some(UserAccess {
                    email: format!("{name}@acme.test"),
                    name: name.into(),
                    status: "active".into(),
                    permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
        )
        .await;
        self.wait_for_user(&id, "active", perms).await;
        let token = self.issuer.token(tenant, &id, perms);
        (id, token)
    }

    pub async fn agent(&self, name: &str) -> (String, String) {
        self.agent_in(TENANT, name, AGENT).await
    }

    /// Changes a known user's access through a `user.updated` event.
    pub async fn update_user(&self, id: &str, status: &str, perms: &[&str]) {
        self.publish(
            TENANT,
            &UserUpdated {
                user_id: id.into(),
                changed: vec!["permissions".into()],
                access: Some(UserAccess {
                    email: "x@acme.test".into(),
                    name: "X".into(),
                    status: status.into(),
                    permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
        )
        .await;
        self.wait_for_user(id, status, perms).await;
    }

    pub async fn create_product(&self, key: &str, extra: Value) -> Value {
        let mut body = json!({"key": key, "name": format!("Product {key}")});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.created("/api/v1/products", &body).await
    }

    pub async fn create_company(&self, body: Value) -> Value {
        self.created("/api/v1/companies", &body).await
    }

    /// POSTs `body` to `path` as the admin; the created resource (the answer must be 201).
    async fn created(&self, path: &str, body: &Value) -> Value {
        let a = self
            .http
            .post(path)
            .bearer(&self.admin)
            .json(body)
            .send()
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    pub async fn raise(&self, product_id: &str, title: &str, description: &str) -> Value {
        let a = self
            .raise_as(&self.admin, product_id, title, description)
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    pub async fn raise_as(
        &self,
        token: &str,
        product_id: &str,
        title: &str,
        description: &str,
    ) -> Answer {
        self.http
            .post("/api/v1/tickets")
            .bearer(token)
            .json(&json!({
                "productId": product_id,
                "title": title,
                "description": description,
                "requester": {"name": "Rita Requester", "email": "rita@customer.test"},
                "channel": "web",
            }))
            .send()
            .await
    }

    pub async fn status(&self, id: &str, status: &str) -> Answer {
        self.http
            .patch(&format!("/api/v1/tickets/{id}/status"))
            .bearer(&self.admin)
            .json(&json!({"status": status}))
            .send()
            .await
    }

    pub async fn comment(&self, id: &str, body: Value) -> Answer {
        self.http
            .post(&format!("/api/v1/tickets/{id}/comments"))
            .bearer(&self.admin)
            .json(&body)
            .send()
            .await
    }

    /// How many events of `event_type` the outbox holds.
    pub async fn outbox(&self, event_type: &str) -> i64 {
        let t = event_type.to_owned();
        self.state
            .db
            .run(move |c| {
                fleetdesk_store::outbox::count_of(c, &t).map_err(fleetdesk_store::StoreError::from)
            })
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.http.get(path).bearer(&self.admin).send().await
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.clock.advance(chrono::Duration::minutes(minutes));
    }
}
