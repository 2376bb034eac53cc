//! Credential types: CRUD, validation naming fields, changes that would break credentials.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn types_are_created_listed_found_by_id_or_name_and_counted() {
    let app = spawn().await;
    let ty = app.login_type("Database", Some("db.credentials")).await;
    let id = ty["id"].as_str().unwrap();
    assert_eq!(
        ty["fields"][1]["secure"], true,
        "passwords are secure by default"
    );
    assert_eq!(ty["fields"][0]["secure"], false);
    assert_eq!(ty["credentialCount"], 0);
    let company = app.company(TENANT, "Acme").await;
    app.credential(id, &company, "s3cret!").await;

    for key in [id, "database", "DATABASE"] {
        let a = app
            .http
            .get(&format!("/api/v1/credential-types/{key}"))
            .bearer(&app.admin)
            .send()
            .await;
        assert_eq!(a.status, 200, "{key}: {}", a.text);
        assert_eq!(a.body["credentialCount"], 1);
    }
    let list = app
        .http
        .get("/api/v1/credential-types")
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(list.body["pagination"]["total"], 1);
    let creds = app
        .http
        .get(&format!("/api/v1/credential-types/{id}/credentials"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(creds.body["data"].as_array().unwrap().len(), 1);

    let vt = app
        .http
        .get("/api/v1/credential-types/value-types")
        .bearer(&app.admin)
        .send()
        .await;
    let names: Vec<&str> = vt
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "plain_text",
            "password",
            "generic_secret",
            "license_key",
            "ip_address",
            "bitlocker_key",
            "url",
            "email",
            "hostname",
            "port"
        ]
    );

    // Another tenant sees none of it.
    let other = app.issuer.token(OTHER_TENANT, "x", &["*"]);
    let a = app
        .http
        .get(&format!("/api/v1/credential-types/{id}"))
        .bearer(&other)
        .send()
        .await;
    assert_problem(&a, 404, "credential_type_not_found");
    let a = app.http.get("/api/v1/credential-types").send().await;
    assert_eq!(a.status, 401);
    let reader = app.token("r", &["credential.read"]);
    let a = app
        .http
        .post("/api/v1/credential-types")
        .bearer(&reader)
        .json(&json!({"name": "X", "fields": []}))
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
}

#[tokio::test]
async fn bad_types_are_refused_naming_each_field() {
    let app = spawn().await;
    let post = |body: serde_json::Value| {
        app.http
            .post("/api/v1/credential-types")
            .bearer(&app.admin)
            .json(&body)
            .send()
    };
    let a = post(json!({"name": "", "fields": []})).await;
    assert_eq!(a.status, 400);
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "fields"]);
    let a = post(json!({"name": "X", "permissionScope": "credential.mine", "fields": [{"id": "a", "name": "A", "valueType": "ssn"}]})).await;
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["permissionScope", "fields[0].valueType"]);
    let a = post(json!({"name": "X", "fields": [{"id": "a b", "name": "A", "valueType": "url"}, {"id": "c", "name": "C", "valueType": "url", "colour": 1}]})).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let a = post(json!({"name": "X", "icon": "javascript:alert(1)", "fields": [{"id": "a", "name": "A", "valueType": "url"}]})).await;
    assert_invalid_field(&a, "icon");
    app.login_type("Dup", None).await;
    let a = post(json!({"name": "dup", "fields": [{"id": "a", "name": "A", "valueType": "url"}]}))
        .await;
    assert_problem(&a, 409, "credential_type_name_taken");
}

#[tokio::test]
async fn field_changes_that_would_break_credentials_are_refused_and_others_keep_values() {
    let app = spawn().await;
    let ty = app.login_type("Router", None).await;
    let id = ty["id"].as_str().unwrap();
    let company = app.company(TENANT, "Acme").await;
    let cred = app.credential(id, &company, "hunter2").await;
    let cred_id = cred["id"].as_str().unwrap();
    let patch = |fields: serde_json::Value| {
        app.http
            .patch(&format!("/api/v1/credential-types/{id}"))
            .bearer(&app.admin)
            .json(&json!({"fields": fields}))
            .send()
    };
    // Dropping a field with values, making `port` required, and typing username as an email
    // all break the credential: one 409 names each.
    let a = patch(json!([
        {"id": "username", "name": "Username", "required": true, "valueType": "email"},
        {"id": "port", "name": "Port", "required": true, "valueType": "port"}
    ]))
    .await;
    assert_problem(&a, 409, "credential_type_change_breaks_credentials");
    let fields: Vec<String> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        fields.contains(&format!("credentials[{cred_id}].fields.password")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&format!("credentials[{cred_id}].fields.port")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&format!("credentials[{cred_id}].fields.username")),
        "{fields:?}"
    );
    // Nothing changed.
    let t = app
        .http
        .get(&format!("/api/v1/credential-types/{id}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(t.body["version"], 1);

    // Adding an optional field and making the password not secure is fine: the value is
    // re-stored in the clear as a new version, the old sealed one kept in history, and the
    // credential itself gets a new version and a credential.updated event.
    let before = app
        .http
        .get(&format!("/api/v1/credentials/{cred_id}"))
        .bearer(&app.admin)
        .send()
        .await
        .body["version"]
        .as_i64()
        .unwrap();
    let a = patch(json!([
        {"id": "username", "name": "Username", "required": true, "valueType": "plain_text"},
        {"id": "password", "name": "Password", "required": true, "secure": false, "valueType": "password"},
        {"id": "port", "name": "Port", "valueType": "port"},
        {"id": "host", "name": "Host", "valueType": "hostname"}
    ]))
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let c = app
        .http
        .get(&format!("/api/v1/credentials/{cred_id}"))
        .bearer(&app.admin)
        .send()
        .await;
    let pw = c.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "password")
        .unwrap()
        .clone();
    assert_eq!(pw["value"], "hunter2");
    assert_eq!(pw["version"], 2);
    assert_eq!(c.body["version"], before + 1);
    let updated: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|(t, _)| t == "credential.updated")
        .collect();
    let (_, last) = updated.last().expect("a credential.updated event");
    assert_eq!(last["data"]["credentialId"], cred_id);
    assert_eq!(last["data"]["fieldIds"], json!(["password"]));
}

#[tokio::test]
async fn deleting_a_type_deletes_its_credentials_and_says_how_many() {
    let app = spawn().await;
    let ty = app.login_type("Temp", None).await;
    let id = ty["id"].as_str().unwrap();
    let company = app.company(TENANT, "Acme").await;
    let c1 = app.credential(id, &company, "a").await;
    app.credential(id, &company, "b").await;
    let updater = app.token("u", &["credential_type.update", "credential_type.read"]);
    let a = app
        .http
        .delete(&format!("/api/v1/credential-types/{id}"))
        .bearer(&updater)
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let a = app
        .http
        .delete(&format!("/api/v1/credential-types/{id}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["deletedCredentials"], 2);
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{}",
            c1["id"].as_str().unwrap()
        ))
        .bearer(&app.admin)
        .send()
        .await;
    assert_problem(&a, 404, "credential_not_found");
    let events = app.outbox().await;
    let deleted = events
        .iter()
        .find(|(t, _)| t == "credential_type.deleted")
        .unwrap();
    assert_eq!(deleted.1["data"]["credentialsDeleted"], 2);
}
