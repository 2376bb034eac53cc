//! The test app: identity on a fresh database, an admin session, a controllable clock, and
//! the password-reset tokens it would have emailed.

use std::sync::{Arc, Mutex};

use fleetdesk_auth::{Claims, TokenType};
use fleetdesk_events::{Consumer, Envelope, Subscription, SubscriptionHandle};
use fleetdesk_identity::{Application, Dependencies, IdentityConfig};
use fleetdesk_store::ManualClock;
use fleetdesk_testkit::{Answer, Http, TestDb};
pub use fleetdesk_testkit::{assert_invalid_field, assert_problem};
use fleetdesk_web::config::Settings;
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const ADMIN_PASSWORD: &str = "admin password 1";
pub const SERVICE_SECRET: &str = "tickets-service-secret-0123";

/// Every event identity published, as a consumer on its bus receives them (the way notify
/// gets the reset tokens it emails).
#[derive(Default)]
pub struct Recorded(Mutex<Vec<Envelope>>);

impl Recorded {
    /// Waits up to 10 s for an event of `event_type` whose data satisfies `matches`.
    pub async fn wait_for(&self, event_type: &str, matches: impl Fn(&Value) -> bool) -> Envelope {
        for _ in 0..200 {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|e| e.event_type == event_type && matches(&e.data))
                .cloned();
            if let Some(e) = found {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no {event_type} event arrived within 10 s");
    }

    /// The token of the last password reset requested for `email`.
    pub async fn reset_token(&self, email: &str) -> String {
        let e = self
            .wait_for("auth.password_reset_requested", |d| d["email"] == email)
            .await;
        e.data["token"].as_str().unwrap().to_owned()
    }

    pub fn all(&self) -> Vec<Envelope> {
        self.0.lock().unwrap().clone()
    }
}

/// A logged-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh: String,
    pub user_id: String,
    pub tenant_id: String,
}

pub struct TestApp {
    pub http: Http,
    pub app_state: fleetdesk_identity::AppState,
    pub clock: Arc<ManualClock>,
    pub events: Arc<Recorded>,
    pub admin: Session,
    background: Mutex<Option<(fleetdesk_identity::Background, SubscriptionHandle)>>,
    _db: TestDb,
}

pub async fn spawn() -> TestApp {
    spawn_with(&[]).await
}

pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
    fleetdesk_testkit::install_crypto();
    let db = TestDb::create().expect("test database");
    let mut settings = Settings::from_pairs([
        ("FLEETDESK_IDENTITY_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("FLEETDESK_ADMIN_EMAIL", ADMIN_EMAIL),
        ("FLEETDESK_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("FLEETDESK_ADMIN_TENANT", "Acme"),
        ("FLEETDESK_HTTP_WORKERS", "2"),
        ("FLEETDESK_DB_POOL_SIZE", "4"),
    ]);
    let clients = format!("tickets:{SERVICE_SECRET}");
    settings.set("FLEETDESK_SERVICE_CLIENTS", clients);
    for (k, v) in extra {
        settings.set(k, *v);
    }
    let config = IdentityConfig::from_settings(&settings, "/nonexistent").expect("config");
    let clock = Arc::new(ManualClock::default());
    let deps = Dependencies {
        clock: clock.clone(),
        bus: None,
    };
    let app = Application::build(config, deps)
        .await
        .expect("identity starts");
    let events = Arc::new(Recorded::default());
    let sink = events.clone();
    let recorder = Consumer::new(
        "test.recorder",
        app.state.db.clone(),
        move |_: &mut fleetdesk_store::DbConn, e: &Envelope| {
            sink.0.lock().unwrap().push(e.clone());
            Ok(())
        },
    );
    let prefix = app.state.config.bus.queue_prefix.clone();
    let recorder = app
        .state
        .bus
        .subscribe(
            Subscription::new(format!("{prefix}test-recorder"), &["#"]),
            recorder,
        )
        .await
        .expect("recorder subscribes");
    let http = Http::new(format!("http://127.0.0.1:{}", app.port));
    let app_state = app.state.clone();
    let (server, background) = app.into_parts();
    tokio::spawn(server);
    let admin = login_ok(&http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    TestApp {
        http,
        app_state,
        clock,
        events,
        admin,
        background: Mutex::new(Some((background, recorder))),
        _db: db,
    }
}

pub async fn login(http: &Http, email: &str, password: &str) -> Answer {
    http.post("/api/v1/auth/login")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
}

pub async fn login_ok(http: &Http, email: &str, password: &str) -> Session {
    let a = login(http, email, password).await;
    assert_eq!(a.status, 200, "login failed: {}", a.text);
    session_of(&a.body)
}

pub fn session_of(body: &Value) -> Session {
    Session {
        token: body["accessToken"].as_str().unwrap().to_owned(),
        refresh: body["refreshToken"].as_str().unwrap().to_owned(),
        user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        tenant_id: body["user"]["tenantId"].as_str().unwrap().to_owned(),
    }
}

impl TestApp {
    /// Stops the relay, the audit consumer and the recorder (before deleting their queues).
    pub fn stop_events(&self) {
        self.background.lock().unwrap().take();
    }

    /// Outbox rows of one event type (sent or not).
    pub async fn outbox_count(&self, event_type: &str) -> i64 {
        let t = event_type.to_owned();
        self.app_state
            .db
            .run(move |c| {
                fleetdesk_store::outbox::count_of(c, &t).map_err(fleetdesk_store::StoreError::from)
            })
            .await
            .unwrap()
    }

    /// Invites someone with these roles and registers them; returns their session.
    pub async fn member(&self, email: &str, roles: &[&str]) -> Session {
        let invite = self
            .http
            .post("/api/v1/users/invite")
            .bearer(&self.admin.token)
            .json(&json!({"email": email, "name": "Member", "roles": roles}))
            .send()
            .await;
        assert_eq!(invite.status, 201, "{}", invite.text);
        let registered = self
            .http
            .post("/api/v1/auth/register")
            .json(
                &json!({"email": email, "password": "member password 1", "name": "Member",
                "inviteToken": invite.body["token"]}),
            )
            .send()
            .await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        session_of(&registered.body)
    }

    /// A session in a second tenant (registration opened for the occasion is not needed:
    /// the tenant is made directly through the store).
    pub async fn other_tenant_admin(&self) -> Session {
        let state = self.app_state.clone();
        let hash = state.hasher.hash("other password 1").unwrap();
        let now = state.clock.now();
        state
            .db
            .run(move |conn| {
                let (tenant, roles) = fleetdesk_identity::accounts::create_tenant(
                    conn,
                    "Globex",
                    now,
                    &fleetdesk_events::Origin::new(None, "system", now),
                )?;
                let user = fleetdesk_identity::accounts::new_user(
                    &tenant.id,
                    "boss@globex.test",
                    "Boss",
                    hash,
                    now,
                );
                fleetdesk_identity::store::users::insert(conn, &user)?;
                let admin: Vec<String> = roles
                    .iter()
                    .filter(|r| r.moniker == "admin")
                    .map(|r| r.id.clone())
                    .collect();
                fleetdesk_identity::store::users::set_roles(conn, &tenant.id, &user.id, &admin)?;
                Ok::<_, fleetdesk_web::ApiError>(())
            })
            .await
            .unwrap();
        login_ok(&self.http, "boss@globex.test", "other password 1").await
    }

    /// Claims like identity's own, for forging variations.
    pub fn claims(&self, perms: &[&str]) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "fleetdesk".into(),
            aud: "fleetdesk-api".into(),
            sub: self.admin.user_id.clone(),
            tid: self.admin.tenant_id.clone(),
            roles: vec![],
            perms: perms.iter().map(|p| (*p).to_owned()).collect(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: uuid_like(),
            typ: TokenType::User,
        }
    }

    /// A token signed with identity's real key.
    pub fn mint(&self, claims: &Claims) -> String {
        self.app_state.keys.sign(claims).unwrap()
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
