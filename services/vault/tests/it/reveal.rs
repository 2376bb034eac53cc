//! Reveals: the permission matrix (with and without a type's scope node, other tenants),
//! reasons, and the audit event that never carries the value.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn reveals_need_the_node_and_the_types_scope_and_are_audited_without_values() {
    let app = spawn().await;
    let scoped = app.login_type("AWS", Some("aws.credentials")).await;
    let plain = app.login_type("Printer", None).await;
    let company = app.company(TENANT, "Acme").await;
    let aws = app
        .credential(scoped["id"].as_str().unwrap(), &company, "AKIA-secret")
        .await;
    let printer = app
        .credential(plain["id"].as_str().unwrap(), &company, "1234")
        .await;
    let (aws, printer) = (aws["id"].as_str().unwrap(), printer["id"].as_str().unwrap());
    let reveal = |id: &str, token: &str| {
        app.http
            .get(&format!("/api/v1/credentials/{id}/secure-values"))
            .bearer(token)
            .header("x-reveal-reason", "ticket PAY-7")
            .send()
    };

    let reader = app.token("reader", &["credential.read"]);
    let revealer = app.token(
        "revealer",
        &["credential.read", "credential.secure_values.read"],
    );
    let aws_revealer = app.token(
        "aws",
        &[
            "credential.read",
            "credential.secure_values.read",
            "aws.credentials.read",
        ],
    );
    let scope_only = app.token("scope", &["credential.read", "aws.credentials.read"]);

    assert_problem(&reveal(aws, &reader).await, 403, "permission_denied");
    assert_problem(&reveal(aws, &scope_only).await, 403, "permission_denied");
    let a = reveal(aws, &revealer).await;
    assert_problem(&a, 403, "permission_denied");
    assert!(a.text.contains("aws.credentials.read"), "{}", a.text);
    let a = reveal(printer, &revealer).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["values"]["password"], "1234");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let a = reveal(aws, &aws_revealer).await;
    assert_eq!(a.body["values"]["password"], "AKIA-secret");
    let other = app.issuer.token(OTHER_TENANT, "x", &["*"]);
    assert_problem(&reveal(aws, &other).await, 404, "credential_not_found");

    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{aws}/secure-values/password?reason=rotate"
        ))
        .bearer(&aws_revealer)
        .send()
        .await;
    assert_eq!(a.body["value"], "AKIA-secret");
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{aws}/secure-values/username"))
        .bearer(&aws_revealer)
        .send()
        .await;
    assert_problem(&a, 404, "secure_field_not_found");
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{aws}/secure-values/nope"))
        .bearer(&aws_revealer)
        .send()
        .await;
    assert_problem(&a, 404, "secure_field_not_found");

    let events = app.outbox().await;
    let reveals: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(t, _)| t == "credential.secret_revealed")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(reveals.len(), 3, "one per successful reveal");
    assert_eq!(reveals[0]["actor"], "revealer");
    assert_eq!(reveals[0]["data"]["reason"], "ticket PAY-7");
    assert_eq!(reveals[0]["data"]["fieldIds"], json!(["password"]));
    assert_eq!(reveals[2]["data"]["reason"], "rotate");
    for (_, e) in &events {
        let text = e.to_string();
        assert!(
            !text.contains("AKIA-secret") && !text.contains("1234\""),
            "no value in any event: {text}"
        );
    }
}

#[tokio::test]
async fn a_tenant_can_require_a_reason_for_every_reveal() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let company = app.company(TENANT, "Acme").await;
    let cred = app
        .credential(ty["id"].as_str().unwrap(), &company, "pw")
        .await;
    let id = cred["id"].as_str().unwrap();
    let agent = app.token(
        "agent",
        &["credential.read", "credential.secure_values.read"],
    );
    let a = app
        .http
        .put("/api/v1/vault/settings")
        .bearer(&agent)
        .json(&json!({"requireRevealReason": true}))
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let a = app
        .http
        .put("/api/v1/vault/settings")
        .bearer(&app.admin)
        .json(&json!({"requireRevealReason": true}))
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{id}/secure-values"))
        .bearer(&agent)
        .send()
        .await;
    assert_invalid_field(&a, "reason");
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/secure-values?reason=%20"
        ))
        .bearer(&agent)
        .send()
        .await;
    assert_invalid_field(&a, "reason");
    let long = "x".repeat(501);
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/secure-values?reason={long}"
        ))
        .bearer(&agent)
        .send()
        .await;
    assert_invalid_field(&a, "reason");
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/secure-values?reason=incident"
        ))
        .bearer(&agent)
        .send()
        .await;
    assert_eq!(a.status, 200);
    // The other tenant's setting is its own.
    let g = app
        .http
        .get("/api/v1/vault/settings")
        .bearer(&app.issuer.token(OTHER_TENANT, "o", &["*"]))
        .send()
        .await;
    assert_eq!(g.body["requireRevealReason"], false);
}
