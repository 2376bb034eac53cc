//! Tokens and API keys at the gateway.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use fleetdesk_auth::SigningKey;
use fleetdesk_gateway::{Application, GatewayConfig};
use fleetdesk_testkit::{Http, forge};
use fleetdesk_web::config::Settings;
use serde_json::json;

use crate::rig::*;

#[tokio::test]
async fn every_bad_token_is_a_401_problem_before_the_upstream() {
    let r = rig(&[]).await;
    let kid = r.identity_state.keys.jwks().keys[0]
        .common
        .key_id
        .clone()
        .unwrap();
    let x = match &r.identity_state.keys.jwks().keys[0].algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
        _ => panic!("identity signs with Ed25519"),
    };
    let good = r.mint(&r.claims());
    let mut expired = r.claims();
    expired.exp -= 3600;
    expired.iat -= 4000;
    expired.nbf -= 4000;
    let mut wrong_aud = r.claims();
    wrong_aud.aud = "someone-else".into();
    let stranger = SigningKey::generate().unwrap();
    let unknown_kid = stranger.sign(&r.claims()).unwrap();
    // Another key's signature under identity's kid.
    let wrong_key = {
        let token = stranger.sign(&r.claims()).unwrap();
        let parts: Vec<&str> = token.splitn(2, '.').collect();
        let header = base64_url(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
        format!("{header}.{}", parts[1])
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing_token"),
        ("garbage", Some("not.a.token".into()), "invalid_token"),
        ("expired", Some(r.mint(&expired)), "token_expired"),
        (
            "alg none",
            Some(forge::alg_none(&r.claims(), &kid)),
            "invalid_token",
        ),
        (
            "HS256 with the public key",
            Some(forge::hs256_with_public_key(&r.claims(), &kid, &x)),
            "token_algorithm_refused",
        ),
        ("wrong key", Some(wrong_key), "invalid_token"),
        (
            "tampered",
            Some(forge::tampered(&good, &r.claims())),
            "invalid_token",
        ),
        (
            "wrong aud",
            Some(r.mint(&wrong_aud)),
            "token_wrong_audience",
        ),
        ("unknown kid", Some(unknown_kid), "token_unknown_key"),
    ];
    let before = r.hits();
    for (what, token, code) in cases {
        let mut call = r.http.get("/api/v1/tickets");
        if let Some(t) = &token {
            call = call.bearer(t);
        }
        let a = call.send().await;
        assert_eq!(a.status, 401, "{what}: {}", a.text);
        assert_eq!(a.body["code"], code, "{what}: {}", a.text);
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
    }
    assert_eq!(r.hits(), before, "no bad token reached the upstream");
    let ok = r.http.get("/api/v1/tickets").bearer(&good).send().await;
    assert_eq!(ok.status, 200);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

#[tokio::test]
async fn unknown_kids_refresh_the_keys_at_most_once_per_interval() {
    let r = rig(&[]).await;
    let stranger = SigningKey::generate().unwrap();
    let start = metric_total("gateway_jwks_refreshes_total");
    for _ in 0..20 {
        let forged = stranger.sign(&r.claims()).unwrap();
        let a = r.http.get("/api/v1/tickets").bearer(&forged).send().await;
        assert_eq!(a.status, 401);
    }
    let after = metric_total("gateway_jwks_refreshes_total");
    // Other tests in this process may refresh too; 20 forged kids must not mean 20 fetches.
    assert!(after - start <= 3.0, "{start} -> {after}");
}

/// Identity starting after the gateway: the gateway fetches its keys as soon as it answers,
/// without waiting for a token to ask for them (or for the periodic refresh, minutes later).
#[tokio::test]
async fn keys_identity_serves_only_after_the_gateway_started_are_fetched_without_a_token() {
    fleetdesk_testkit::install_crypto();
    let port = dead_port();
    let identity_url = format!("http://127.0.0.1:{port}");
    let settings = Settings::from_pairs([
        ("FLEETDESK_GATEWAY_LISTEN", "127.0.0.1:0"),
        ("FLEETDESK_GATEWAY_SERVICES", "identity,tickets"),
        ("FLEETDESK_GATEWAY_UPSTREAM_IDENTITY", identity_url.as_str()),
        ("FLEETDESK_GATEWAY_UPSTREAM_TICKETS", identity_url.as_str()),
        ("FLEETDESK_GATEWAY_RATE_LIMITS", "off"),
    ]);
    let app = Application::build(GatewayConfig::from_settings(&settings).unwrap())
        .await
        .expect("the gateway starts while identity is down");
    let gateway = Http::new(format!("http://127.0.0.1:{}", app.port));
    tokio::spawn(app.run_until_stopped());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Identity comes up: it serves its key set, and answers anything else with 200.
    let key = SigningKey::generate().unwrap();
    let jwks = json!({"keys": [key.public_jwk()]});
    let fetches = web::Data::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = HttpServer::new(move || {
        let jwks = jwks.clone();
        App::new()
            .app_data(counted.clone())
            .route(
                "/.well-known/jwks.json",
                web::get().to(move |n: web::Data<AtomicUsize>| {
                    n.fetch_add(1, Ordering::SeqCst);
                    let jwks = jwks.clone();
                    async move { HttpResponse::Ok().json(jwks) }
                }),
            )
            .default_service(web::to(HttpResponse::Ok))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);

    let fetched = || fetches.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(8);
    while fetched() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fetched(),
        1,
        "the gateway fetched the keys once identity answered"
    );
    // A token of that key is then accepted with the keys fetched: no fetch on its account.
    let token = key.sign(&claims()).unwrap();
    let a = gateway.get("/api/v1/tickets").bearer(&token).send().await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(fetched(), 1);
}

#[tokio::test]
async fn api_keys_are_exchanged_cached_and_forwarded_as_bearer_tokens() {
    let r = rig(&[]).await;
    let created = r
        .http
        .post("/api/v1/api-keys")
        .bearer(&r.admin_token)
        .json(&json!({"name": "ci", "permissions": ["ticket.read"]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.body["secret"].as_str().unwrap().to_owned();
    let a = r
        .http
        .get("/api/v1/tickets")
        .header("x-api-key", &key)
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let auth = a.body["headers"]["authorization"].as_str().unwrap();
    assert!(auth.starts_with("Bearer ey"), "{auth}");
    assert!(
        a.body["headers"].get("x-api-key").is_none(),
        "the key itself is not forwarded"
    );
    let b = r
        .http
        .get("/api/v1/tickets")
        .header("authorization", &format!("ApiKey {key}"))
        .send()
        .await;
    assert_eq!(b.status, 200);
    assert_eq!(
        b.body["headers"]["authorization"], a.body["headers"]["authorization"],
        "the second call reuses the cached token"
    );
    let bad = r
        .http
        .get("/api/v1/tickets")
        .header("x-api-key", "fdk_nope_nope")
        .send()
        .await;
    assert_problem(&bad, 401, "invalid_api_key");
}

#[tokio::test]
async fn public_routes_need_no_token() {
    let r = rig(&[]).await;
    let a = r
        .http
        .post("/api/v1/auth/login")
        .json(&json!({"email": ADMIN_EMAIL, "password": "wrong password here"}))
        .send()
        .await;
    assert_problem(&a, 401, "invalid_credentials");
    let me = r.http.get("/api/v1/users/me").send().await;
    assert_problem(&me, 401, "missing_token");
    let me = r
        .http
        .get("/api/v1/users/me")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], ADMIN_EMAIL);
    // Identity's own answer passes through unchanged when identity refuses.
    let _ = r.identity.get("/health").send().await;
}

#[tokio::test]
async fn made_up_api_keys_are_charged_to_the_clients_address_before_identity_is_asked() {
    let r = rig(&[("FLEETDESK_GATEWAY_RATE_LIMITS", "tickets subject 3/1m")]).await;
    let exchanges = || metric_total("gateway_api_key_exchanges_total");
    let start = exchanges();
    let mut statuses = Vec::new();
    for i in 0..10 {
        let a = r
            .http
            .get("/api/v1/tickets")
            .header("x-api-key", &format!("fdk_made_up_{i}"))
            .send()
            .await;
        statuses.push(a.status);
        if a.status == 429 {
            assert_problem(&a, 429, "rate_limited");
            assert!(a.header("retry-after").is_some());
        } else {
            assert_problem(&a, 401, "invalid_api_key");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    // Identity was asked about the first three only (other tests in this process exchange a
    // key or two of their own meanwhile).
    let asked = exchanges() - start;
    assert!((3.0..=6.0).contains(&asked), "{asked}");
    // A caller with a token is limited as itself, not as its address.
    let a = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// The process's count of the metric `name` so far, over all its label sets.
fn metric_total(name: &str) -> f64 {
    fleetdesk_telemetry::render_metrics()
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
