//! Every route as a whole: each names its permission node and refuses callers without it;
//! the OpenAPI document is current; health, readiness and docs answer; forged tokens fail.

use serde_json::json;

use crate::helpers::*;

fn operations() -> Vec<(String, String, Vec<String>, bool)> {
    fleetdesk_web::docs::operations(&fleetdesk_vault::openapi())
}

/// A path with every `{param}` filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str("0195f3a0-0000-7000-8000-000000000000");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_secured_route_refuses_a_caller_without_its_nodes_and_anyone_without_a_token() {
    let app = spawn().await;
    let nobody = app.token("nobody", &[]);
    let mut checked = 0;
    for (method, path, nodes, secured) in operations() {
        if !secured {
            continue;
        }
        let url = concrete(&path);
        let anonymous = app.http.call(&method, &url).json(&json!({})).send().await;
        assert_problem(&anonymous, 401, "missing_token");
        if nodes.is_empty() {
            // Open to every signed-in caller (the value types).
            continue;
        }
        let a = app
            .http
            .call(&method, &url)
            .bearer(&nobody)
            .json(&json!({}))
            .send()
            .await;
        assert_problem(&a, 403, "permission_denied");
        assert!(
            nodes
                .iter()
                .any(|n| a.body["detail"].as_str().unwrap().contains(n.as_str())),
            "{method} {path}: the 403 should name one of {nodes:?}: {}",
            a.text
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} secured routes found");
}

#[tokio::test]
async fn every_required_node_is_in_the_catalogue() {
    for (method, path, nodes, _) in operations() {
        for node in nodes {
            assert!(
                fleetdesk_auth::permissions::all_nodes().any(|n| n.node == node),
                "{method} {path} requires {node}, which the catalogue lacks"
            );
        }
    }
}

#[test]
fn the_stored_openapi_document_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto-docs/openapi/vault.json"
    );
    let current = serde_json::to_string_pretty(&fleetdesk_vault::openapi()).unwrap() + "\n";
    if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
        std::fs::write(path, &current).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == current,
        "proto-docs/openapi/vault.json is stale: run UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-vault"
    );
}

#[tokio::test]
async fn health_readiness_and_docs_answer_and_forged_tokens_are_refused() {
    let app = spawn().await;
    assert_eq!(app.http.get("/health").send().await.body["status"], "ok");
    let ready = app.http.get("/health/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let doc = app.http.get("/openapi.json").send().await;
    assert_eq!(doc.body["info"]["title"], "Fleetdesk vault");
    let claims = app.issuer.claims(TENANT, "mallory", &["*"]);
    let kid = app.issuer.key.kid().to_owned();
    let mut expired = claims.clone();
    expired.exp -= 3_600;
    let valid = app
        .issuer
        .key
        .sign(&app.issuer.claims(TENANT, "mallory", &["credential.read"]))
        .unwrap();
    let forged = [
        ("garbage", "not.a.token".to_owned()),
        (
            "alg none",
            fleetdesk_testkit::forge::alg_none(&claims, &kid),
        ),
        (
            "tampered",
            fleetdesk_testkit::forge::tampered(&valid, &claims),
        ),
        ("expired", app.issuer.key.sign(&expired).unwrap()),
    ];
    for (name, token) in forged {
        let a = app
            .http
            .get("/api/v1/credentials")
            .bearer(&token)
            .send()
            .await;
        assert_eq!(a.status, 401, "{name}: {}", a.text);
    }
}

#[tokio::test]
async fn companies_follow_tickets_events_and_deleted_ones_take_no_new_credentials() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let company = app.company(TENANT, "Acme").await;
    app.publish(
        TENANT,
        &fleetdesk_events::tickets::CompanyUpdated {
            company: fleetdesk_events::tickets::CompanyState {
                company_id: company.clone(),
                name: "Acme Renamed".into(),
                identifier: "ACME".into(),
                email_domains: vec![],
                external_ref: None,
            },
            changed: vec!["name".into()],
        },
    )
    .await;
    let mut renamed = false;
    for _ in 0..100 {
        let c = app
            .credential(ty["id"].as_str().unwrap(), &company, "pw")
            .await;
        if c["company"]["name"] == "Acme Renamed" {
            renamed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(renamed, "company.updated reached the read model");
    app.publish(
        TENANT,
        &fleetdesk_events::tickets::CompanyDeleted {
            company_id: company.clone(),
            identifier: "ACME".into(),
        },
    )
    .await;
    app.wait_for_company(&company, false).await;
    let a = app
        .http
        .post("/api/v1/credentials")
        .bearer(&app.admin)
        .json(&json!({
            "name": "X", "typeId": ty["id"], "companyId": company,
            "fields": [{"fieldId": "username", "value": "u"}, {"fieldId": "password", "value": "p"}]
        }))
        .send()
        .await;
    assert_invalid_field(&a, "companyId");
}
