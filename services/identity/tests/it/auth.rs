//! Registration, login, lockout, password reset, service tokens.

use chrono::Duration;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_answers_tokens_and_a_strict_refresh_cookie() {
    let app = spawn().await;
    let a = login(&app.http, "  ADMIN@acme.test ", ADMIN_PASSWORD).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["tokenType"], "Bearer");
    assert_eq!(a.body["expiresIn"], 900);
    assert_eq!(a.body["user"]["email"], ADMIN_EMAIL);
    assert_eq!(a.body["user"]["roles"], json!(["admin"]));
    let cookie = a
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("fd_refresh="))
        .expect("refresh cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(cookie.contains(a.body["refreshToken"].as_str().unwrap()));
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = spawn().await;
    let wrong = login(&app.http, ADMIN_EMAIL, "not the password").await;
    let unknown = login(&app.http, "nobody@acme.test", "not the password").await;
    assert_problem(&wrong, 401, "invalid_credentials");
    assert_problem(&unknown, 401, "invalid_credentials");
    assert_eq!(wrong.body["detail"], unknown.body["detail"]);
}

#[tokio::test]
async fn five_failures_lock_the_account_with_a_growing_retry_after() {
    let app = spawn().await;
    for _ in 0..5 {
        assert_problem(
            &login(&app.http, ADMIN_EMAIL, "wrong password!").await,
            401,
            "invalid_credentials",
        );
    }
    // Locked: even the right password is refused until the delay passes.
    let locked = login(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_problem(&locked, 429, "too_many_attempts");
    assert_eq!(locked.header("retry-after"), Some("30"));
    app.clock.advance(Duration::seconds(31));
    assert_problem(
        &login(&app.http, ADMIN_EMAIL, "wrong password!").await,
        401,
        "invalid_credentials",
    );
    let longer = login(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_problem(&longer, 429, "too_many_attempts");
    assert_eq!(longer.header("retry-after"), Some("60"));
    app.clock.advance(Duration::seconds(61));
    assert_eq!(
        login(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await.status,
        200
    );
}

#[tokio::test]
async fn unknown_accounts_lock_the_same_way() {
    let app = spawn().await;
    for _ in 0..5 {
        login(&app.http, "ghost@acme.test", "whatever pass").await;
    }
    assert_problem(
        &login(&app.http, "ghost@acme.test", "whatever pass").await,
        429,
        "too_many_attempts",
    );
}

#[tokio::test]
async fn login_input_errors_name_the_field() {
    let app = spawn().await;
    let a = app
        .http
        .post("/api/v1/auth/login")
        .json(&json!({"email": "a@b.co"}))
        .send()
        .await;
    assert_invalid_field(&a, "password");
    let a = app
        .http
        .post("/api/v1/auth/login")
        .json(&json!({"email": 7, "password": "x"}))
        .send()
        .await;
    assert_invalid_field(&a, "email");
    let a = app
        .http
        .post("/api/v1/auth/login")
        .body("text/plain", "email=a")
        .send()
        .await;
    assert_problem(&a, 415, "unsupported_media_type");
    let a = app
        .http
        .post("/api/v1/auth/login")
        .body("application/json", "{\"email\":")
        .send()
        .await;
    assert_problem(&a, 400, "malformed_json");
    let big = "x".repeat(300 * 1024);
    let a = app
        .http
        .post("/api/v1/auth/login")
        .json(&json!({"email": big, "password": "p"}))
        .send()
        .await;
    assert_problem(&a, 413, "payload_too_large");
}

#[tokio::test]
async fn registration_is_closed_by_default() {
    let app = spawn().await;
    let a = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "new@corp.test", "password": "a good password", "name": "New"}))
        .send()
        .await;
    assert_problem(&a, 403, "registration_disabled");
}

#[tokio::test]
async fn open_registration_creates_a_tenant_with_the_person_as_admin() {
    let app = spawn_with(&[("FLEETDESK_REGISTRATION_ENABLED", "true")]).await;
    let a = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "founder@corp.test", "password": "a good password", "name": "Founder", "tenantName": "Corp"}))
        .send()
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["user"]["roles"], json!(["admin"]));
    assert_ne!(a.body["user"]["tenantId"], app.admin.tenant_id.as_str());
    let token = a.body["accessToken"].as_str().unwrap();
    let tenant = app
        .http
        .get("/api/v1/tenants/current")
        .bearer(token)
        .send()
        .await;
    assert_eq!(tenant.body["name"], "Corp");
    let roles = app
        .http
        .get("/api/v1/roles?limit=100")
        .bearer(token)
        .send()
        .await;
    let monikers: Vec<&str> = roles.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["moniker"].as_str().unwrap())
        .collect();
    for m in [
        "admin",
        "agent",
        "lead",
        "knowledge_lead",
        "change_lead",
        "vault_user",
        "viewer",
    ] {
        assert!(monikers.contains(&m), "missing system role {m}");
    }
    // The same address cannot register twice.
    let again = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "FOUNDER@corp.test", "password": "a good password", "name": "F"}))
        .send()
        .await;
    assert_problem(&again, 409, "email_taken");
}

#[tokio::test]
async fn registration_errors_name_every_bad_field() {
    let app = spawn_with(&[("FLEETDESK_REGISTRATION_ENABLED", "true")]).await;
    let a = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "not-an-email", "password": "short", "name": " "}))
        .send()
        .await;
    for field in ["email", "password", "name"] {
        assert_invalid_field(&a, field);
    }
}

#[tokio::test]
async fn an_invite_joins_its_tenant_with_its_roles_once() {
    let app = spawn().await;
    let invite = app
        .http
        .post("/api/v1/users/invite")
        .bearer(&app.admin.token)
        .json(&json!({"email": "agent@acme.test", "name": "Agent", "roles": ["agent"]}))
        .send()
        .await;
    assert_eq!(invite.status, 201, "{}", invite.text);
    let token = invite.body["token"].as_str().unwrap();
    let wrong_address = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "someone@acme.test", "password": "member password 1", "name": "A", "inviteToken": token}))
        .send()
        .await;
    assert_invalid_field(&wrong_address, "email");
    let a = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "agent@acme.test", "password": "member password 1", "name": "A", "inviteToken": token}))
        .send()
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["user"]["tenantId"], app.admin.tenant_id.as_str());
    assert_eq!(a.body["user"]["roles"], json!(["agent"]));
    let reuse = app
        .http
        .post("/api/v1/auth/register")
        .json(&json!({"email": "agent2@acme.test", "password": "member password 1", "name": "B", "inviteToken": token}))
        .send()
        .await;
    assert_invalid_field(&reuse, "inviteToken");
}

#[tokio::test]
async fn a_reset_token_works_once_and_ends_every_session() {
    let app = spawn().await;
    let before = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let a = app
        .http
        .post("/api/v1/auth/password-reset/request")
        .json(&json!({"email": ADMIN_EMAIL}))
        .send()
        .await;
    assert_eq!(a.status, 202);
    let token = app.events.reset_token(ADMIN_EMAIL).await;
    let weak = app
        .http
        .post("/api/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "newPassword": "short"}))
        .send()
        .await;
    assert_invalid_field(&weak, "newPassword");
    let ok = app
        .http
        .post("/api/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "newPassword": "a brand new password"}))
        .send()
        .await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    let again = app
        .http
        .post("/api/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "newPassword": "another new password"}))
        .send()
        .await;
    assert_invalid_field(&again, "token");
    assert_problem(
        &login(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(
        login(&app.http, ADMIN_EMAIL, "a brand new password")
            .await
            .status,
        200
    );
    let refreshed = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &before.refresh)
        .send()
        .await;
    assert_problem(&refreshed, 401, "invalid_refresh_token");
}

#[tokio::test]
async fn a_reset_token_expires_after_an_hour_and_unknown_emails_still_get_202() {
    let app = spawn().await;
    let unknown = app
        .http
        .post("/api/v1/auth/password-reset/request")
        .json(&json!({"email": "nobody@x.test"}))
        .send()
        .await;
    assert_eq!(unknown.status, 202);
    assert_eq!(app.outbox_count("auth.password_reset_requested").await, 0);
    app.http
        .post("/api/v1/auth/password-reset/request")
        .json(&json!({"email": ADMIN_EMAIL}))
        .send()
        .await;
    let token = app.events.reset_token(ADMIN_EMAIL).await;
    app.clock.advance(Duration::minutes(61));
    let late = app
        .http
        .post("/api/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "newPassword": "a brand new password"}))
        .send()
        .await;
    assert_invalid_field(&late, "token");
}

#[tokio::test]
async fn service_clients_get_service_tokens_and_strangers_do_not() {
    let app = spawn().await;
    let ok = app
        .http
        .post("/api/v1/auth/service/token")
        .json(&json!({"clientId": "tickets", "clientSecret": SERVICE_SECRET}))
        .send()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let claims = app
        .app_state
        .verifier
        .verify(ok.body["accessToken"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.typ, fleetdesk_auth::TokenType::Service);
    assert_eq!(claims.sub, "tickets");
    let bad = app
        .http
        .post("/api/v1/auth/service/token")
        .json(&json!({"clientId": "tickets", "clientSecret": "guess"}))
        .send()
        .await;
    assert_problem(&bad, 401, "invalid_client");
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn().await;
    let a = app.http.get("/.well-known/jwks.json").send().await;
    assert_eq!(a.status, 200);
    let key = &a.body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    let header = jsonwebtoken::decode_header(&app.admin.token).unwrap();
    assert_eq!(key["kid"], header.kid.unwrap().as_str());
}

#[tokio::test]
async fn a_service_token_acts_for_the_tenant_it_names_and_people_cannot_switch() {
    let app = spawn().await;
    let other = app.other_tenant_admin().await;
    let service = app
        .http
        .post("/api/v1/auth/service/token")
        .json(&json!({"clientId": "tickets", "clientSecret": SERVICE_SECRET}))
        .send()
        .await;
    let token = service.body["accessToken"].as_str().unwrap();
    let as_other = app
        .http
        .get("/api/v1/tenants/current")
        .bearer(token)
        .header("x-tenant-id", &other.tenant_id)
        .send()
        .await;
    assert_eq!(as_other.status, 200, "{}", as_other.text);
    assert_eq!(as_other.body["name"], "Globex");
    let bad = app
        .http
        .get("/api/v1/tenants/current")
        .bearer(token)
        .header("x-tenant-id", "x y")
        .send()
        .await;
    assert_problem(&bad, 400, "invalid_tenant_header");
    // A person's token ignores the header: they stay in their own tenant.
    let person = app
        .http
        .get("/api/v1/tenants/current")
        .bearer(&app.admin.token)
        .header("x-tenant-id", &other.tenant_id)
        .send()
        .await;
    assert_eq!(person.body["name"], "Acme");
}

#[tokio::test]
async fn an_ipv6_client_is_locked_out_by_its_64_not_one_address() {
    let app = spawn_with(&[("FLEETDESK_TRUST_FORWARDED_FOR", "true")]).await;
    let from = |xff: String, email: String| {
        app.http
            .post("/api/v1/auth/login")
            .header("x-forwarded-for", &xff)
            .json(&json!({"email": email, "password": "wrong password!"}))
            .send()
    };
    // Password spraying: a different account and a different address of one /64 each time
    // (no account reaches its own lockout).
    for i in 0..20 {
        let a = from(format!("2001:db8:7:7::{i:x}"), format!("user{i}@acme.test")).await;
        assert_problem(&a, 401, "invalid_credentials");
    }
    let sprayed = from("2001:db8:7:7:ffff::1".into(), "fresh@acme.test".into()).await;
    assert_problem(&sprayed, 429, "too_many_attempts");
    // Another /64 is another client.
    let other = from("2001:db8:7:8::1".into(), "fresh@acme.test".into()).await;
    assert_problem(&other, 401, "invalid_credentials");
}
