//! Products: CRUD, archive, If-Match, idempotency, triage rules.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_product_is_created_read_listed_changed_and_archived() {
    let app = spawn().await;
    let (lead, _) = app.agent("lena").await;
    let p = app
        .create_product("PAY", json!({"description": "Payments", "leadId": lead, "channels": {"email": "Support@Pay.test", "web": true}}))
        .await;
    assert_eq!(p["key"], "PAY");
    assert_eq!(p["status"], "active");
    assert_eq!(p["channels"]["email"], "support@pay.test");
    assert_eq!(p["slaPolicy"]["P0"]["firstResponseMinutes"], 15);
    assert_eq!(p["triageRules"], "default");
    let id = p["id"].as_str().unwrap();

    let got = app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(got.status, 200);
    let etag = got.header("etag").unwrap().to_owned();

    let changed = app
        .http
        .patch(&format!("/api/v1/products/{id}"))
        .bearer(&app.admin)
        .header("if-match", &etag)
        .json(&json!({"name": "Payments", "slaPolicy": {"P1": {"firstResponseMinutes": 30, "resolutionMinutes": 120}}}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["name"], "Payments");
    assert_eq!(changed.body["version"], 2);

    let stale = app
        .http
        .patch(&format!("/api/v1/products/{id}"))
        .bearer(&app.admin)
        .header("if-match", &etag)
        .json(&json!({"name": "Again"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");

    let list = app.get("/api/v1/products?q=paym").await;
    assert_eq!(list.body["pagination"]["total"], 1);

    let archived = app
        .http
        .delete(&format!("/api/v1/products/{id}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(archived.status, 204);
    let list = app.get("/api/v1/products?status=archived").await;
    assert_eq!(list.body["data"][0]["id"], id);
    let raise = app.raise_as(&app.admin, id, "Title", "Text").await;
    assert_problem(&raise, 409, "product_archived");
}

#[tokio::test]
async fn bad_products_are_refused_naming_the_field() {
    let app = spawn().await;
    let a = app
        .http
        .post("/api/v1/products")
        .bearer(&app.admin)
        .json(&json!({"key": "pay", "name": "x"}))
        .send()
        .await;
    assert_invalid_field(&a, "key");
    let a = app
        .http
        .post("/api/v1/products")
        .bearer(&app.admin)
        .json(&json!({"key": "PAY", "name": "x", "slaPolicy": {"P1": {"firstResponseMinutes": 0, "resolutionMinutes": 10}}}))
        .send()
        .await;
    assert_invalid_field(&a, "slaPolicy");
    let a = app
        .http
        .post("/api/v1/products")
        .bearer(&app.admin)
        .json(&json!({"key": "PAY", "name": "x", "defaultAssigneeId": "nobody"}))
        .send()
        .await;
    assert_invalid_field(&a, "defaultAssigneeId");
    let a = app
        .http
        .post("/api/v1/products")
        .bearer(&app.admin)
        .json(&json!({"key": "PAY", "name": "x", "colour": 1}))
        .send()
        .await;
    assert_invalid_field(&a, "colour");
    app.create_product("PAY", json!({})).await;
    let dup = app
        .http
        .post("/api/v1/products")
        .bearer(&app.admin)
        .json(&json!({"key": "PAY", "name": "y"}))
        .send()
        .await;
    assert_problem(&dup, 409, "product_key_taken");
}

#[tokio::test]
async fn another_tenants_product_is_a_404_and_reading_needs_the_node() {
    let app = spawn().await;
    let p = app.create_product("PAY", json!({})).await;
    let other = app.issuer.token(OTHER_TENANT, "eve", &["*"]);
    let a = app
        .http
        .get(&format!("/api/v1/products/{}", p["id"].as_str().unwrap()))
        .bearer(&other)
        .send()
        .await;
    assert_problem(&a, 404, "product_not_found");
    let list = app.http.get("/api/v1/products").bearer(&other).send().await;
    assert_eq!(list.body["pagination"]["total"], 0);
    let weak = app.token("weak", &["ticket.read"]);
    let a = app.http.get("/api/v1/products").bearer(&weak).send().await;
    assert_problem(&a, 403, "permission_denied");
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_returns_the_first_product() {
    let app = spawn().await;
    let send = |body: serde_json::Value| {
        app.http
            .post("/api/v1/products")
            .bearer(&app.admin)
            .header("idempotency-key", "create-pay-1")
            .json(&body)
            .send()
    };
    let first = send(json!({"key": "PAY", "name": "Payments"})).await;
    assert_eq!(first.status, 201);
    let again = send(json!({"key": "PAY", "name": "Payments"})).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = send(json!({"key": "PAY", "name": "Other"})).await;
    assert_problem(&other, 422, "idempotency_key_reused");
}

#[tokio::test]
async fn triage_rules_are_replaced_checked_and_reset() {
    let app = spawn().await;
    let p = app.create_product("PAY", json!({})).await;
    let id = p["id"].as_str().unwrap();
    let rules = app
        .get(&format!("/api/v1/products/{id}/triage-rules"))
        .await;
    assert_eq!(rules.body["source"], "default");
    assert_eq!(rules.body["version"], "default-1");
    assert!(rules.body["rules"].as_array().unwrap().len() >= 5);

    let bad = app
        .http
        .put(&format!("/api/v1/products/{id}/triage-rules"))
        .bearer(&app.admin)
        .json(&json!({"rules": [{"id": "refund", "keywords": ["refund"], "severity": "P9"}]}))
        .send()
        .await;
    assert_invalid_field(&bad, "rules[0].severity");

    let put = app
        .http
        .put(&format!("/api/v1/products/{id}/triage-rules"))
        .bearer(&app.admin)
        .json(&json!({"rules": [{"id": "refund", "keywords": ["refund"], "severity": "P1", "type": "task"}]}))
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["source"], "custom");
    assert_eq!(put.body["version"], "product-1");

    let t = app.raise(id, "Refund please", "I was charged twice").await;
    assert_eq!(t["severity"], "P1");
    assert_eq!(t["type"], "task");
    assert_eq!(t["triage"]["provenance"]["version"], "product-1");
    assert_eq!(t["triage"]["reasons"][0], "refund: \"refund\"");

    let reset = app
        .http
        .delete(&format!("/api/v1/products/{id}/triage-rules"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(reset.status, 200);
    assert_eq!(reset.body["source"], "default");
    assert_eq!(reset.body["version"], "default-1");
}
