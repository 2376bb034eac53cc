//! Identity's events and the audit log built from them.

use fleetdesk_events::{AmqpBus, AmqpConfig, Subscription};
use serde_json::{Value, json};

use crate::helpers::*;

/// Waits until the audit log (as the admin sees it) holds `want` rows for `query`: up to
/// 30 s, since a loaded 2-core CI machine runs fifty of these apps at once.
async fn audit_until(app: &TestApp, token: &str, query: &str, want: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let a = app
            .http
            .get(&format!("/api/v1/audit{query}"))
            .bearer(token)
            .send()
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        if a.body["data"].as_array().unwrap().len() >= want {
            return a.body;
        }
        last = a.body;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("audit{query} never reached {want} rows: {last}");
}

#[tokio::test]
async fn changes_are_audited_newest_first_and_filterable() {
    let app = spawn().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let role = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .header("traceparent", &format!("00-{trace}-b7ad6b7169203331-01"))
        .json(&json!({"moniker": "auditor", "title": "Auditor", "description": "Reads the log", "permissions": ["audit.read"]}))
        .send()
        .await;
    assert_eq!(role.status, 201, "{}", role.text);
    let role_id = role.body["id"].as_str().unwrap().to_owned();
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let off = app
        .http
        .post(&format!("/api/v1/users/{}/deactivate", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(
        login(&app.http, ADMIN_EMAIL, "not the password")
            .await
            .status,
        401
    );

    // The role's row carries the request's trace and the admin as actor.
    let body = audit_until(&app, &app.admin.token, "?entityType=role", 1).await;
    let row = &body["data"][0];
    assert_eq!(row["action"], "role.created");
    assert_eq!(row["entityId"], role_id.as_str());
    assert_eq!(row["actorId"], app.admin.user_id.as_str());
    assert_eq!(row["traceId"], trace);
    assert_eq!(row["source"], "identity");
    assert!(row["summary"].as_str().unwrap().contains("auditor"));

    let body = audit_until(&app, &app.admin.token, "?action=user.deactivated", 1).await;
    assert_eq!(body["data"][0]["entityId"], agent.user_id.as_str());
    assert_eq!(body["pagination"]["total"], 1);

    let body = audit_until(&app, &app.admin.token, "?action=auth.login_failed", 1).await;
    assert_eq!(body["data"][0]["actorId"], "anonymous");
    assert_eq!(body["data"][0]["entityId"], app.admin.user_id.as_str());

    // Everything about the agent: invited (as an invite), registered, deactivated.
    let body = audit_until(
        &app,
        &app.admin.token,
        &format!("?entityType=user&entityId={}", agent.user_id),
        2,
    )
    .await;
    let actions: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["user.deactivated", "user.registered"],
        "newest first"
    );

    // Paging and time window.
    let all = audit_until(&app, &app.admin.token, "?limit=100", 6).await;
    let total = all["pagination"]["total"].as_i64().unwrap();
    let times: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["occurredAt"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let one = audit_until(&app, &app.admin.token, "?limit=1&page=2", 1).await;
    assert_eq!(one["pagination"]["total"].as_i64().unwrap(), total);
    assert_eq!(one["data"][0]["id"], all["data"][1]["id"]);
    let future = app
        .http
        .get("/api/v1/audit?from=2100-01-01T00:00:00Z")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(future.body["pagination"]["total"], 0);
    let by_actor = audit_until(
        &app,
        &app.admin.token,
        &format!("?actorId={}&action=role.created", app.admin.user_id),
        1,
    )
    .await;
    assert_eq!(by_actor["pagination"]["total"], 1);
}

/// A lot of events is written in one statement (each column as an array on PostgreSQL):
/// every row and every field arrives, absent ones as absent.
#[tokio::test]
async fn a_lot_of_audit_rows_is_written_together() {
    use fleetdesk_identity::store::audit::{AuditRow, insert_all};

    let app = spawn().await;
    let at = |m: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, m, 0)
            .unwrap()
    };
    let rows: Vec<AuditRow> = (0..3u32)
        .map(|n| AuditRow {
            id: format!("00000000-0000-7000-8000-00000000000{n}"),
            tenant_id: Some(app.admin.tenant_id.clone()),
            actor: format!("actor-{n}"),
            action: "test.together".into(),
            entity_type: "test".into(),
            entity_id: format!("thing-{n}"),
            summary: format!("row {n}, with 'quotes' and {{braces}}, \"double\" too"),
            source: "tests".into(),
            trace_id: (n != 1).then(|| format!("{n:032x}")),
            occurred_at: at(n),
            recorded_at: at(10 + n),
        })
        .collect();
    let written = rows.clone();
    app.app_state
        .db
        .run(move |c| insert_all(c, &written).map_err(fleetdesk_store::StoreError::from))
        .await
        .unwrap();
    let body = audit_until(&app, &app.admin.token, "?action=test.together", 3).await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    // Newest first.
    for (shown, row) in data.iter().zip(rows.iter().rev()) {
        assert_eq!(shown["id"], row.id.as_str());
        assert_eq!(shown["actorId"], row.actor.as_str());
        assert_eq!(shown["entityId"], row.entity_id.as_str());
        assert_eq!(shown["summary"], row.summary.as_str());
        assert_eq!(shown["source"], "tests");
        assert_eq!(
            shown["traceId"],
            row.trace_id.as_deref().map_or(Value::Null, Value::from)
        );
        assert_eq!(
            shown["occurredAt"],
            format!("{}Z", row.occurred_at.format("%Y-%m-%dT%H:%M:%S"))
        );
    }
}

#[tokio::test]
async fn the_audit_log_is_per_tenant_read_only_and_needs_audit_read() {
    let app = spawn().await;
    audit_until(&app, &app.admin.token, "", 1).await;
    let other = app.other_tenant_admin().await;
    // The other tenant sees its own creation, never Acme's rows.
    let theirs = audit_until(&app, &other.token, "", 1).await;
    for row in theirs["data"].as_array().unwrap() {
        assert_ne!(row["entityId"], app.admin.user_id.as_str());
        assert_ne!(row["entityId"], app.admin.tenant_id.as_str());
    }
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let refused = app
        .http
        .get("/api/v1/audit")
        .bearer(&agent.token)
        .send()
        .await;
    assert_problem(&refused, 403, "permission_denied");
    let anonymous = app.http.get("/api/v1/audit").send().await;
    assert_eq!(anonymous.status, 401);

    for (query, field) in [
        ("?from=yesterday", "from"),
        ("?to=2026-13-01T00:00:00Z", "to"),
        ("?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("?entityType=", "entityType"),
    ] {
        let a = app
            .http
            .get(&format!("/api/v1/audit{query}"))
            .bearer(&app.admin.token)
            .send()
            .await;
        assert_invalid_field(&a, field);
    }
    let big = app
        .http
        .get("/api/v1/audit?limit=1000")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(big.status, 400, "{}", big.text);
    let unknown = app
        .http
        .get("/api/v1/audit?sort=asc")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);

    // No route changes or removes a row.
    let id = theirs["data"][0]["id"].as_str().unwrap().to_owned();
    for method in ["DELETE", "PATCH", "PUT", "POST"] {
        for path in ["/api/v1/audit".to_owned(), format!("/api/v1/audit/{id}")] {
            let a = app
                .http
                .call(method, &path)
                .bearer(&app.admin.token)
                .json(&json!({}))
                .send()
                .await;
            assert!(
                matches!(a.status, 404 | 405),
                "{method} {path} answered {}",
                a.status
            );
        }
    }
}

#[tokio::test]
async fn reset_events_carry_the_token_to_consumers_but_not_past_the_outbox() {
    let app = spawn().await;
    app.http
        .post("/api/v1/auth/password-reset/request")
        .json(&json!({"email": ADMIN_EMAIL}))
        .send()
        .await;
    let event = app
        .events
        .wait_for("auth.password_reset_requested", |d| {
            d["email"] == ADMIN_EMAIL
        })
        .await;
    assert_eq!(
        event.tenant_id.as_deref(),
        Some(app.admin.tenant_id.as_str())
    );
    assert_eq!(event.data["name"], "Administrator");
    assert!(event.data["token"].as_str().unwrap().len() >= 32);
    let id = event.id.to_string();
    // Once sent, the outbox no longer holds the token.
    for _ in 0..100 {
        let i = id.clone();
        let (_, payload) = app
            .app_state
            .db
            .run(move |c| {
                fleetdesk_store::outbox::attempts(c, &i).map_err(fleetdesk_store::StoreError::from)
            })
            .await
            .unwrap();
        if payload.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the reset token stayed in the outbox after the event was sent");
}

#[tokio::test]
async fn identity_publishes_each_change_once_with_its_actor() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let patched = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"name": "Agent Smith", "roles": ["agent", "viewer"]}))
        .send()
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let updated = app
        .events
        .wait_for("user.updated", |d| d["userId"] == agent.user_id.as_str())
        .await;
    assert_eq!(updated.data["changed"], json!(["name", "roles"]));
    assert_eq!(updated.actor, app.admin.user_id);
    let deleted = app
        .http
        .delete(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    app.events
        .wait_for("user.deleted", |d| d["email"] == "agent@acme.test")
        .await;
    // A refused change publishes nothing.
    let before = app.outbox_count("role.created").await;
    let dup = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "agent", "title": "Again", "description": "", "permissions": []}))
        .send()
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(app.outbox_count("role.created").await, before);
    let ids: Vec<_> = app.events.all().iter().map(|e| e.id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        ids.len(),
        unique.len(),
        "an event was delivered twice to the recorder"
    );
}

/// The same path over RabbitMQ: identity's relay publishes to the broker and its audit
/// consumer reads from `identity.events`.
#[tokio::test]
async fn audit_over_rabbitmq() {
    let Some(url) = fleetdesk_testkit::amqp_server() else {
        eprintln!("FLEETDESK_TEST_AMQP_URL is not set: RabbitMQ variant not run here");
        return;
    };
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let exchange = format!("fdtest.{tag}");
    let prefix = format!("t{}.", &tag[20..]);
    let app = spawn_with(&[
        ("FLEETDESK_AMQP_URL", url.as_str()),
        ("FLEETDESK_AMQP_EXCHANGE", exchange.as_str()),
        ("FLEETDESK_AMQP_QUEUE_PREFIX", prefix.as_str()),
    ])
    .await;
    let ready = app.http.get("/health/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.body["bus"], "ok");
    let role = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(
            &json!({"moniker": "rabbit", "title": "Rabbit", "description": "", "permissions": []}),
        )
        .send()
        .await;
    assert_eq!(role.status, 201);
    let body = audit_until(&app, &app.admin.token, "?action=role.created", 1).await;
    assert_eq!(body["data"][0]["entityId"], role.body["id"]);
    app.stop_events();
    let mut config = AmqpConfig::new(url, "identity-test-cleanup");
    config.exchange = exchange;
    let bus = AmqpBus::new(config);
    // Identity's own queue, the recorder's, and the other consumers' its publisher declared.
    let mut queues = fleetdesk_events::topology::all(&prefix);
    queues.push(Subscription::new(format!("{prefix}test-recorder"), &[]));
    for sub in queues {
        let _ = bus.delete(&sub).await;
    }
    let _ = bus.delete_exchange().await;
}
