//! Credentials: validation against the type, secure values hidden, fields as ciphertext,
//! companies of the tenant only, history and restore.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn credentials_are_validated_against_their_type() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let type_id = ty["id"].as_str().unwrap();
    let company = app.company(TENANT, "Acme").await;
    let post = |body: serde_json::Value| {
        app.http
            .post("/api/v1/credentials")
            .bearer(&app.admin)
            .json(&body)
            .send()
    };

    let a = post(
        json!({"name": "X", "typeId": type_id, "companyId": company, "fields": [
            {"fieldId": "username", "value": "u"},
            {"fieldId": "nope", "value": "1"},
            {"fieldId": "port", "value": "70000"}
        ]}),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["fields[1].fieldId", "fields[2].value", "fields"]);
    assert!(
        a.text.contains("port number"),
        "the rule is named: {}",
        a.text
    );
    assert!(!a.text.contains("70000") || a.text.contains("fields[2]"));

    let a = post(json!({"name": "X", "typeId": "nope", "companyId": company, "fields": []})).await;
    assert_invalid_field(&a, "typeId");
    let foreign = app.company(OTHER_TENANT, "Other").await;
    let a = post(
        json!({"name": "X", "typeId": type_id, "companyId": foreign, "fields": [
        {"fieldId": "username", "value": "u"}, {"fieldId": "password", "value": "p"}]}),
    )
    .await;
    assert_invalid_field(&a, "companyId");
    let a = post(json!({"name": "", "typeId": type_id, "companyId": company, "fields": []})).await;
    assert_invalid_field(&a, "name");
    let a = app
        .http
        .post("/api/v1/credentials")
        .bearer(&app.admin)
        .body("application/json", "{\"name\":")
        .send()
        .await;
    assert_eq!(a.status, 400);
    // Nothing was written by any refusal.
    let list = app
        .http
        .get("/api/v1/credentials")
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(list.body["pagination"]["total"], 0);
}

#[tokio::test]
async fn secure_values_are_null_when_read_and_ciphertext_in_fields() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let company = app.company(TENANT, "Acme").await;
    let cred = app
        .credential(ty["id"].as_str().unwrap(), &company, "correct horse")
        .await;
    let id = cred["id"].as_str().unwrap();
    let pw = cred["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "password")
        .unwrap();
    assert_eq!(pw["value"], serde_json::Value::Null);
    assert_eq!(pw["hasValue"], true);
    assert_eq!(cred["company"]["name"], "Acme");
    assert!(!cred.to_string().contains("correct horse"));

    let reader = app.token("r", &["credential.read", "credential.fields.read"]);
    let f = app
        .http
        .get(&format!("/api/v1/credentials/{id}/fields"))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(f.status, 200, "{}", f.text);
    let pw = f
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["fieldId"] == "password")
        .unwrap();
    assert!(pw["ciphertext"].as_str().unwrap().starts_with("v1:"));
    assert_eq!(pw["kekVersion"], 1);
    assert!(!f.text.contains("correct horse"));
    let user = f
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["fieldId"] == "username")
        .unwrap();
    assert_eq!(user["value"], "dbadmin");

    let plain_reader = app.token("p", &["credential.read"]);
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{id}/fields"))
        .bearer(&plain_reader)
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let other = app.issuer.token(OTHER_TENANT, "x", &["*"]);
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{id}"))
        .bearer(&other)
        .send()
        .await;
    assert_problem(&a, 404, "credential_not_found");

    let list = app
        .http
        .get(&format!(
            "/api/v1/credentials?companyId={company}&q=production"
        ))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(list.body["pagination"]["total"], 1);
    let list = app
        .http
        .get("/api/v1/credentials?q=staging")
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(list.body["pagination"]["total"], 0);
}

#[tokio::test]
async fn changes_keep_every_version_and_a_version_can_be_restored() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let company = app.company(TENANT, "Acme").await;
    let cred = app
        .credential(ty["id"].as_str().unwrap(), &company, "first")
        .await;
    let id = cred["id"].as_str().unwrap();

    let a = app.http.patch(&format!("/api/v1/credentials/{id}")).bearer(&app.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Prod DB", "fields": [{"fieldId": "password", "value": "second"}, {"fieldId": "port", "value": "5432"}]}))
        .send().await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["version"], 2);
    let stale = app
        .http
        .patch(&format!("/api/v1/credentials/{id}"))
        .bearer(&app.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"notes": "x"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");
    let a = app
        .http
        .patch(&format!("/api/v1/credentials/{id}"))
        .bearer(&app.admin)
        .json(&json!({"fields": [{"fieldId": "password", "value": null}]}))
        .send()
        .await;
    assert_invalid_field(&a, "fields[0].value");

    // PUT replaces the whole set: port is left out, so it is cleared.
    let fields_writer = app.token("w", &["credential.read", "credential.fields.update"]);
    let a = app.http.put(&format!("/api/v1/credentials/{id}/fields")).bearer(&fields_writer)
        .json(&json!({"fields": [{"fieldId": "username", "value": "dbadmin"}, {"fieldId": "password", "value": "third"}]}))
        .send().await;
    assert_eq!(a.status, 200, "{}", a.text);
    let port = a.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "port")
        .unwrap();
    assert_eq!(port["hasValue"], false);

    let historian = app.token("h", &["credential.read", "credential.history.read"]);
    let h = app
        .http
        .get(&format!("/api/v1/credentials/{id}/fields/password/history"))
        .bearer(&historian)
        .send()
        .await;
    assert_eq!(h.status, 200, "{}", h.text);
    let versions: Vec<i64> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert!(
        h.body
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["value"].is_null()),
        "no values without reveal rights"
    );
    assert_eq!(h.body[0]["changedBy"], "w");
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/fields/password/history?includeValues=true"
        ))
        .bearer(&historian)
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/fields/password/history?includeValues=true&reason=audit"
        ))
        .bearer(&app.admin)
        .send()
        .await;
    let values: Vec<&str> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["third", "second", "first"]);

    let restorer = app.token("x", &["credential.read", "credential.restore"]);
    let a = app
        .http
        .post(&format!("/api/v1/credentials/{id}/fields/password/restore"))
        .bearer(&restorer)
        .json(&json!({"version": 1}))
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{id}/secure-values/password"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.body["value"], "first");
    assert_eq!(a.body["version"], 4);
    let a = app
        .http
        .post(&format!("/api/v1/credentials/{id}/fields/password/restore"))
        .bearer(&restorer)
        .json(&json!({"version": 9}))
        .send()
        .await;
    assert_problem(&a, 404, "field_version_not_found");
    let events: Vec<String> = app.outbox().await.into_iter().map(|(t, _)| t).collect();
    assert!(
        events.iter().filter(|t| *t == "credential.updated").count() >= 3,
        "{events:?}"
    );

    let a = app
        .http
        .delete(&format!("/api/v1/credentials/{id}"))
        .bearer(&restorer)
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let a = app
        .http
        .delete(&format!("/api/v1/credentials/{id}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.status, 204);
    let a = app
        .http
        .get(&format!("/api/v1/credentials/{id}/fields/password/history"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_problem(&a, 404, "credential_not_found");
}
