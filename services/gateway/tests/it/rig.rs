//! Identity on a fresh database, an echo upstream, and the gateway in front of both.

use std::net::TcpListener;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use fleetdesk_auth::{Claims, TokenType};
use fleetdesk_gateway::{Application, GatewayConfig};
use fleetdesk_identity::{Dependencies, IdentityConfig};
use fleetdesk_testkit::{Answer, Http, TestDb};
use fleetdesk_web::config::Settings;
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@acme.test";
pub const ADMIN_PASSWORD: &str = "admin password 1";

/// Echoes what it received; `/api/v1/tickets/stream` sends chunks 300 ms apart,
/// `/api/v1/tickets/slow` answers after 3 s.
async fn echo(req: HttpRequest, body: Bytes, hits: web::Data<AtomicUsize>) -> HttpResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    match req.path() {
        "/api/v1/tickets/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().finish()
        }
        "/api/v1/tickets/stream" => {
            let chunks = futures_util::stream::unfold(0u32, |n| async move {
                if n == 3 {
                    return None;
                }
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(format!("data: {n}\n\n"))),
                    n + 1,
                ))
            });
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(chunks)
        }
        _ => {
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
                .collect();
            HttpResponse::Ok()
                .insert_header(("x-upstream", "echo"))
                .insert_header(("proxy-authenticate", "Basic realm=\"upstream\""))
                .json(json!({
                    "method": req.method().as_str(),
                    "path": req.path(),
                    "query": req.query_string(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                }))
        }
    }
}

pub struct Rig {
    pub http: Http,
    pub identity: Http,
    pub identity_state: fleetdesk_identity::AppState,
    pub admin_token: String,
    pub echo_hits: web::Data<AtomicUsize>,
    pub base: String,
    /// Stops the gateway as SIGTERM does.
    pub stopper: fleetdesk_gateway::server::Stopper,
    identity_url: String,
    echo_url: String,
    _db: TestDb,
}

fn gateway_settings(identity_url: &str, echo_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut gw = Settings::from_pairs([
        ("FLEETDESK_GATEWAY_LISTEN", "127.0.0.1:0"),
        ("FLEETDESK_GATEWAY_SERVICES", "identity,tickets,knowledge"),
        ("FLEETDESK_GATEWAY_UPSTREAM_IDENTITY", identity_url),
        ("FLEETDESK_GATEWAY_UPSTREAM_TICKETS", echo_url),
        ("FLEETDESK_GATEWAY_TIMEOUT_TICKETS_SECONDS", "1"),
        ("FLEETDESK_GATEWAY_MAX_BODY_BYTES", "65536"),
        ("FLEETDESK_GATEWAY_RATE_LIMITS", "off"),
        ("FLEETDESK_HTTP_WORKERS", "2"),
    ]);
    let dead = format!("http://127.0.0.1:{}", dead_port());
    gw.set("FLEETDESK_GATEWAY_UPSTREAM_KNOWLEDGE", dead);
    for (k, v) in extra {
        gw.set(k, *v);
    }
    gw
}

/// Another gateway in front of the same services (a second replica).
pub async fn second_gateway(r: &Rig, extra: &[(&str, &str)]) -> Http {
    let gw = gateway_settings(&r.identity_url, &r.echo_url, extra);
    let app = Application::build(GatewayConfig::from_settings(&gw).unwrap())
        .await
        .unwrap();
    let http = Http::new(format!("http://127.0.0.1:{}", app.port));
    tokio::spawn(app.run_until_stopped());
    http
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub async fn rig(extra: &[(&str, &str)]) -> Rig {
    fleetdesk_testkit::install_crypto();
    let db = TestDb::create().unwrap();
    let settings = Settings::from_pairs([
        ("FLEETDESK_IDENTITY_LISTEN", "127.0.0.1:0"),
        ("DATABASE_URL", db.url.as_str()),
        ("FLEETDESK_ADMIN_EMAIL", ADMIN_EMAIL),
        ("FLEETDESK_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("FLEETDESK_ADMIN_TENANT", "Acme"),
        ("FLEETDESK_HTTP_WORKERS", "1"),
        ("FLEETDESK_DB_POOL_SIZE", "4"),
    ]);
    let config = IdentityConfig::from_settings(&settings, "/nonexistent").unwrap();
    let identity = fleetdesk_identity::Application::build(config, Dependencies::default())
        .await
        .unwrap();
    let identity_port = identity.port;
    let identity_state = identity.state.clone();
    tokio::spawn(identity.run_until_stopped());

    let hits = web::Data::new(AtomicUsize::new(0));
    let h = hits.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(h.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(echo))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);

    let identity_url = format!("http://127.0.0.1:{identity_port}");
    let echo_url = format!("http://127.0.0.1:{echo_port}");
    let gw = gateway_settings(&identity_url, &echo_url, extra);
    let app = Application::build(GatewayConfig::from_settings(&gw).unwrap())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port);
    let stopper = app.stopper();
    tokio::spawn(app.run_until_stopped());
    let http = Http::new(base.clone());
    let login = http
        .post("/api/v1/auth/login")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await;
    assert_eq!(
        login.status, 200,
        "login through the gateway: {}",
        login.text
    );
    Rig {
        http,
        identity: Http::new(identity_url.clone()),
        identity_url,
        echo_url,
        identity_state,
        admin_token: login.body["accessToken"].as_str().unwrap().to_owned(),
        echo_hits: hits,
        base,
        stopper,
        _db: db,
    }
}

impl Rig {
    pub fn claims(&self) -> Claims {
        claims()
    }

    pub fn mint(&self, claims: &Claims) -> String {
        self.identity_state.keys.sign(claims).unwrap()
    }

    pub fn hits(&self) -> usize {
        self.echo_hits.load(Ordering::SeqCst)
    }
}

/// A user's claims, valid for ten minutes, with every permission.
pub fn claims() -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "fleetdesk".into(),
        aud: "fleetdesk-api".into(),
        sub: "someone".into(),
        tid: "tenant".into(),
        roles: vec![],
        perms: vec!["*".into()],
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "jti-1".into(),
        typ: TokenType::User,
    }
}

pub fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(
        a.header("content-type"),
        Some("application/problem+json"),
        "{}",
        a.text
    );
    assert_eq!(a.body["code"], code, "{}", a.text);
}
