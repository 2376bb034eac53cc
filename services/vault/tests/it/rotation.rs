//! KEK rotation: a new version wraps new data keys, old ones are rewrapped in the background
//! and the old version retires, while reads and writes go on.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

async fn keys(app: &TestApp) -> serde_json::Value {
    let a = app
        .http
        .get("/api/v1/vault/keys")
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

#[tokio::test]
async fn rotation_mid_traffic_keeps_every_value_readable_and_retires_the_old_version() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let type_id = ty["id"].as_str().unwrap().to_owned();
    let company = app.company(TENANT, "Acme").await;
    let mut expected = Vec::new();
    for i in 0..30 {
        let pw = format!("secret-{i}");
        let c = app.credential(&type_id, &company, &pw).await;
        expected.push((c["id"].as_str().unwrap().to_owned(), pw));
    }
    let k = keys(&app).await;
    assert_eq!(k[0]["version"], 1);
    assert_eq!(k[0]["dataKeys"], 30);
    // Another tenant sees the same versions but only its own (no) data keys.
    let other = app
        .http
        .get("/api/v1/vault/keys")
        .bearer(&app.issuer.token(OTHER_TENANT, "o", &["vault.keys.read"]))
        .send()
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert_eq!(other.body[0]["version"], 1);
    assert_eq!(other.body[0]["dataKeys"], 0);

    let reader = app.token("r", &["credential.read", "vault.keys.read"]);
    let a = app
        .http
        .post("/api/v1/vault/keys/rotate")
        .bearer(&reader)
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");

    // Traffic: reveals and creates while the rotation runs.
    let traffic = {
        let http = app.http.clone();
        let admin = app.admin.clone();
        let expected = expected.clone();
        let (type_id, company) = (type_id.clone(), company.clone());
        tokio::spawn(async move {
            let mut made = Vec::new();
            for round in 0..3 {
                for (id, pw) in &expected {
                    let r = http
                        .get(&format!("/api/v1/credentials/{id}/secure-values"))
                        .bearer(&admin)
                        .send()
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    assert_eq!(r.body["values"]["password"], pw.as_str());
                }
                let pw = format!("during-{round}");
                let c = http.post("/api/v1/credentials").bearer(&admin).json(&json!({
                    "name": format!("during {round}"), "typeId": type_id, "companyId": company,
                    "fields": [{"fieldId": "username", "value": "u"}, {"fieldId": "password", "value": pw}]
                })).send().await;
                assert_eq!(c.status, 201, "{}", c.text);
                made.push((c.body["id"].as_str().unwrap().to_owned(), pw));
            }
            made
        })
    };
    let a = app
        .http
        .post("/api/v1/vault/keys/rotate")
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body["version"], 2);
    let made = traffic.await.unwrap();
    expected.extend(made);

    // Maintenance rewraps everything under version 2, then retires version 1.
    let mut retired = false;
    for _ in 0..200 {
        let k = keys(&app).await;
        let v1 = k
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == 1)
            .unwrap();
        if v1["state"] == "retired" {
            assert_eq!(v1["dataKeys"], 0);
            let v2 = k
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["version"] == 2)
                .unwrap();
            assert_eq!(v2["state"], "active");
            assert_eq!(v2["dataKeys"], expected.len());
            retired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(retired, "version 1 retired: {}", keys(&app).await);
    for (id, pw) in &expected {
        let r = app
            .http
            .get(&format!("/api/v1/credentials/{id}/secure-values"))
            .bearer(&app.admin)
            .send()
            .await;
        assert_eq!(r.body["values"]["password"], pw.as_str());
        let f = app
            .http
            .get(&format!("/api/v1/credentials/{id}/fields"))
            .bearer(&app.admin)
            .send()
            .await;
        let pwf = f
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["fieldId"] == "password")
            .unwrap();
        assert_eq!(pwf["kekVersion"], 2);
    }
}
