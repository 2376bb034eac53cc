//! Every route as a whole: each names its permission node and refuses callers without it;
//! the OpenAPI document is current; health, metrics and docs answer.

use serde_json::json;

use crate::helpers::*;

fn operations() -> Vec<(String, String, Vec<String>, bool)> {
    fleetdesk_web::docs::operations(&fleetdesk_identity::openapi())
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "0195f3a0-0000-7000-8000-000000000000")
        .replace("{idOrMoniker}", "agent")
        .replace("{category}", "user")
}

#[tokio::test]
async fn every_secured_route_refuses_a_caller_without_its_nodes_and_anyone_without_a_token() {
    let app = spawn().await;
    let nobody = app.mint(&app.claims(&[]));
    let mut checked = 0;
    for (method, path, nodes, secured) in operations() {
        if !secured {
            continue;
        }
        let url = concrete(&path);
        let anonymous = app.http.call(&method, &url).json(&json!({})).send().await;
        assert_problem(&anonymous, 401, "missing_token");
        if nodes.is_empty() {
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
    assert!(checked >= 30, "only {checked} secured routes found");
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
        "/../../proto-docs/openapi/identity.json"
    );
    let current = serde_json::to_string_pretty(&fleetdesk_identity::openapi()).unwrap() + "\n";
    if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
        std::fs::write(path, &current).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == current,
        "proto-docs/openapi/identity.json is stale: run UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-identity"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_docs_answer_without_a_token() {
    let app = spawn().await;
    let health = app.http.get("/health").send().await;
    assert_eq!(health.body["status"], "ok");
    let ready = app.http.get("/health/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["db"], "ok");
    let metrics = app.http.get("/metrics").send().await;
    assert!(
        metrics.text.contains("http_requests_total"),
        "{}",
        metrics.text
    );
    let doc = app.http.get("/openapi.json").send().await;
    assert_eq!(doc.body["info"]["title"], "Fleetdesk identity");
    let page = app.http.get("/docs/").send().await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("swagger"),
        "the docs page is served from the binary"
    );
    let js = app.http.get("/docs/swagger-ui-bundle.js").send().await;
    assert_eq!(
        js.status, 200,
        "Swagger UI's script comes from the binary, not a CDN"
    );
}

#[tokio::test]
async fn request_ids_are_kept_when_sane_and_problems_carry_a_trace_id() {
    let app = spawn().await;
    let kept = app
        .http
        .get("/health")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    assert_eq!(kept.header("x-request-id"), Some("abc-123"));
    let replaced = app
        .http
        .get("/health")
        .header("x-request-id", "bad id with spaces")
        .send()
        .await;
    assert_ne!(replaced.header("x-request-id"), Some("bad id with spaces"));
    let traced = app
        .http
        .get("/api/v1/users/me")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await;
    assert_eq!(traced.body["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let missing = app.http.get("/api/v1/nothing-here").send().await;
    assert_eq!(missing.status, 404);
}
