//! Every route as a whole: each names its permission node and refuses callers without it;
//! the OpenAPI document is current; health, readiness and docs answer.

use serde_json::json;

use crate::helpers::*;

fn operations() -> Vec<(String, String, Vec<String>, bool)> {
    fleetdesk_web::docs::operations(&fleetdesk_tickets::openapi())
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
        let url = path.replace("{id}", "0195f3a0-0000-7000-8000-000000000000");
        let anonymous = app.http.call(&method, &url).json(&json!({})).send().await;
        assert_problem(&anonymous, 401, "missing_token");
        assert!(
            !nodes.is_empty(),
            "{method} {path} names no permission node"
        );
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
    assert!(checked >= 25, "only {checked} secured routes found");
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
        "/../../proto-docs/openapi/tickets.json"
    );
    let current = serde_json::to_string_pretty(&fleetdesk_tickets::openapi()).unwrap() + "\n";
    if std::env::var_os("UPDATE_PROTO_DOCS").is_some() {
        std::fs::write(path, &current).unwrap();
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == current,
        "proto-docs/openapi/tickets.json is stale: run UPDATE_PROTO_DOCS=1 cargo test -p fleetdesk-tickets"
    );
}

#[tokio::test]
async fn health_readiness_and_docs_answer_and_a_forged_token_is_refused() {
    let app = spawn().await;
    assert_eq!(app.http.get("/health").send().await.body["status"], "ok");
    let ready = app.http.get("/health/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["bus"], "ok");
    let doc = app.http.get("/openapi.json").send().await;
    assert_eq!(doc.body["info"]["title"], "Fleetdesk tickets");
    let claims = app.issuer.claims(TENANT, "mallory", &["*"]);
    let kid = app.issuer.key.kid().to_owned();
    let mut expired = claims.clone();
    expired.exp -= 3_600;
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = "someone-else".into();
    let valid = app
        .issuer
        .key
        .sign(&app.issuer.claims(TENANT, "mallory", &["ticket.read"]))
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
        ("wrong audience", app.issuer.key.sign(&wrong_aud).unwrap()),
    ];
    for (name, token) in forged {
        let a = app.http.get("/api/v1/tickets").bearer(&token).send().await;
        assert_eq!(a.status, 401, "{name}: {}", a.text);
    }
}

#[tokio::test]
async fn statistics_take_the_middle_time_over_the_period_product_and_live_tickets_only() {
    use fleetdesk_store::Clock;
    let app = spawn().await;
    let pay = app.create_product("PAY", json!({})).await;
    let pay = pay["id"].as_str().unwrap();
    let ops = app.create_product("OPS", json!({})).await;
    let ops = ops["id"].as_str().unwrap();
    let start = app.clock.now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let t = app.raise(pay, &format!("Export {i} fails"), "minor").await;
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let other = app.raise(ops, "Disk full", "minor").await;
    let reply = |id: String| {
        let app = &app;
        async move {
            let a = app
                .comment(&id, json!({"body": "On it", "visibility": "public"}))
                .await;
            assert_eq!(a.status, 201, "{}", a.text);
        }
    };
    // First replies after 10, 30, 60 and 100 minutes; one ticket never answered.
    for (minutes, id) in [(10, &ids[0]), (20, &ids[1]), (30, &ids[2]), (40, &ids[3])] {
        app.advance_minutes(minutes);
        reply(id.clone()).await;
    }
    app.advance_minutes(5);
    reply(other["id"].as_str().unwrap().to_owned()).await;
    let stats = |query: String| {
        let app = &app;
        async move {
            let s = app.get(&format!("/api/v1/tickets/stats?{query}")).await;
            assert_eq!(s.status, 200, "{}", s.text);
            s.body
        }
    };
    let s = stats(format!("productId={pay}")).await;
    assert_eq!(s["total"], 5);
    assert_eq!(s["firstResponse"]["count"], 4);
    assert_eq!(
        s["firstResponse"]["medianSeconds"],
        (30 + 60) * 60 / 2,
        "the mean of the middle two of four, not the mean of all"
    );
    assert_eq!(s["resolution"]["count"], 0);
    assert!(s["resolution"]["medianSeconds"].is_null());
    let all = stats(String::new()).await;
    assert_eq!(all["total"], 6);
    assert_eq!(all["firstResponse"]["count"], 5);
    assert_eq!(
        all["firstResponse"]["medianSeconds"],
        60 * 60,
        "the middle of five"
    );

    // A deleted ticket leaves the figures; the period counts by creation time.
    let gone = app
        .http
        .delete(&format!("/api/v1/tickets/{}", ids[3]))
        .bearer(&app.admin)
        .send()
        .await;
    assert!(gone.status < 300, "{}", gone.text);
    let s = stats(format!("productId={pay}")).await;
    assert_eq!(s["total"], 4);
    assert_eq!(s["firstResponse"]["medianSeconds"], 30 * 60);
    let later = app.clock.now();
    app.raise(pay, "Late ticket", "minor").await;
    let period = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .replace('+', "%2B")
    };
    let s = stats(format!("productId={pay}&from={}", period(later))).await;
    assert_eq!(
        (s["total"].as_i64(), s["byStatus"]["new"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(s["firstResponse"]["medianSeconds"].is_null());
    let s = stats(format!("from={}&to={}", period(start), period(later))).await;
    assert_eq!(
        s["total"], 5,
        "the five earlier live tickets, both products"
    );
}

#[tokio::test]
async fn statistics_count_by_status_severity_type_and_channel() {
    let app = spawn().await;
    let p = app.create_product("PAY", json!({})).await;
    let pid = p["id"].as_str().unwrap();
    let a = app.raise(pid, "Site is down", "all users, outage").await;
    app.raise(pid, "How do I export", "question").await;
    app.advance_minutes(30);
    app.comment(
        a["id"].as_str().unwrap(),
        json!({"body": "Looking", "visibility": "public"}),
    )
    .await;
    app.advance_minutes(30);
    app.status(a["id"].as_str().unwrap(), "resolved").await;
    let s = app
        .get(&format!("/api/v1/tickets/stats?productId={pid}"))
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["total"], 2);
    assert_eq!(s.body["byStatus"]["resolved"], 1);
    assert_eq!(s.body["bySeverity"]["P0"], 1);
    assert_eq!(s.body["byType"]["question"], 1);
    assert_eq!(s.body["byChannel"]["web"], 2);
    assert_eq!(s.body["firstResponse"]["medianSeconds"], 1800);
    assert_eq!(s.body["resolution"]["medianSeconds"], 3600);
    assert_eq!(
        s.body["slaCompliance"]["rate"], 0.0,
        "P0 wants a reply in 15 minutes"
    );
    let bad = app
        .get("/api/v1/tickets/stats?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await;
    assert_invalid_field(&bad, "to");
}
