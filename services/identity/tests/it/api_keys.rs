//! API keys: shown once, subset of the creator's grants, exchanged for short-lived tokens.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_key_is_shown_once_and_exchanges_for_a_limited_token() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let created = app
        .http
        .post("/api/v1/api-keys")
        .bearer(&agent.token)
        .json(&json!({"name": "CI bot", "permissions": ["ticket.read", "ticket.create"]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!(
        "fdk_{}_",
        created.body["prefix"].as_str().unwrap()
    )));
    let listed = app
        .http
        .get("/api/v1/api-keys")
        .bearer(&agent.token)
        .send()
        .await;
    assert_eq!(listed.body["pagination"]["total"], 1);
    assert!(!listed.text.contains(&secret), "the secret is never listed");

    for (name, value) in [
        ("x-api-key", secret.clone()),
        ("authorization", format!("ApiKey {secret}")),
    ] {
        let ex = app
            .http
            .post("/api/v1/auth/api-key/exchange")
            .header(name, &value)
            .send()
            .await;
        assert_eq!(ex.status, 200, "{}", ex.text);
        let claims = app
            .app_state
            .verifier
            .verify(ex.body["accessToken"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims.typ, fleetdesk_auth::TokenType::ApiKey);
        assert_eq!(claims.sub, agent.user_id);
        assert_eq!(
            claims.perms,
            vec!["ticket.create".to_string(), "ticket.read".to_string()]
        );
        assert_eq!(ex.body["expiresIn"], 300);
    }
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        app.http
            .delete(&format!("/api/v1/api-keys/{id}"))
            .bearer(&agent.token)
            .send()
            .await
            .status,
        204
    );
    let revoked = app
        .http
        .post("/api/v1/auth/api-key/exchange")
        .header("x-api-key", &secret)
        .send()
        .await;
    assert_problem(&revoked, 401, "invalid_api_key");
}

#[tokio::test]
async fn a_key_cannot_exceed_its_creator_and_bad_keys_are_refused() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let beyond = app
        .http
        .post("/api/v1/api-keys")
        .bearer(&agent.token)
        .json(&json!({"name": "Too much", "permissions": ["role.delete"]}))
        .send()
        .await;
    assert_problem(&beyond, 403, "grant_exceeds_own_permissions");
    let past = app
        .http
        .post("/api/v1/api-keys")
        .bearer(&agent.token)
        .json(&json!({"name": "Old", "permissions": ["ticket.read"], "expiresAt": "2001-01-01T00:00:00Z"}))
        .send()
        .await;
    assert_invalid_field(&past, "expiresAt");
    for key in [
        "",
        "fdk_nothing",
        "fdk_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let a = app
            .http
            .post("/api/v1/auth/api-key/exchange")
            .header("x-api-key", key)
            .send()
            .await;
        assert_problem(&a, 401, "invalid_api_key");
    }
}

#[tokio::test]
async fn an_expired_key_stops_working_and_others_keys_are_hidden() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let created = app
        .http
        .post("/api/v1/api-keys")
        .bearer(&agent.token)
        .json(&json!({"name": "Short", "permissions": ["ticket.read"], "expiresAt": soon}))
        .send()
        .await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    let viewer = app.member("viewer@acme.test", &["viewer"]).await;
    let others = app
        .http
        .get(&format!("/api/v1/api-keys?userId={}", agent.user_id))
        .bearer(&viewer.token)
        .send()
        .await;
    assert_problem(&others, 403, "permission_denied");
    let delete = app
        .http
        .delete(&format!("/api/v1/api-keys/{id}"))
        .bearer(&viewer.token)
        .send()
        .await;
    assert_problem(&delete, 404, "api_key_not_found");
    let all = app
        .http
        .get("/api/v1/api-keys?userId=all")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(all.body["pagination"]["total"], 1);
    app.clock.advance(chrono::Duration::minutes(11));
    let expired = app
        .http
        .post("/api/v1/auth/api-key/exchange")
        .header("x-api-key", &secret)
        .send()
        .await;
    assert_problem(&expired, 401, "invalid_api_key");
}
