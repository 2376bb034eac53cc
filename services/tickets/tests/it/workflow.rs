//! The workflow: transitions, reopening, assignment, severity overrides, escalation and
//! comments.

use serde_json::{Value, json};

use crate::helpers::*;

async fn ticket(app: &TestApp, title: &str, description: &str) -> String {
    let p = app.get("/api/v1/products?q=PAY").await;
    let pid = match p.body["data"][0]["id"].as_str() {
        Some(id) => id.to_owned(),
        None => app.create_product("PAY", json!({})).await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    app.raise(&pid, title, description).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_workflow_allows_only_its_transitions_and_names_the_allowed_ones() {
    let app = spawn().await;
    let id = ticket(&app, "A question", "how to").await;
    assert_eq!(
        app.status(&id, "in_progress").await.body["status"],
        "in_progress"
    );
    assert_eq!(app.status(&id, "resolved").await.body["status"], "resolved");
    let refused = app.status(&id, "pending").await;
    assert_problem(&refused, 409, "transition_not_allowed");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("open, closed"),
        "{}",
        refused.text
    );
    let closed = app.status(&id, "closed").await;
    assert!(closed.body["closedAt"].is_string());
    assert_eq!(closed.body["sla"]["clock"], "stopped");
    assert_problem(
        &app.status(&id, "in_progress").await,
        409,
        "transition_not_allowed",
    );
    assert_problem(
        &app.status(&id, "closed").await,
        409,
        "transition_not_allowed",
    );
    assert_invalid_field(&app.status(&id, "done").await, "status");

    let agent = app.token("agent", &["ticket.read", "ticket.status.update"]);
    let reopen = app
        .http
        .patch(&format!("/api/v1/tickets/{id}/status"))
        .bearer(&agent)
        .json(&json!({"status": "open"}))
        .send()
        .await;
    assert_problem(&reopen, 403, "permission_denied");
    assert!(
        reopen.body["detail"]
            .as_str()
            .unwrap()
            .contains("ticket.reopen")
    );
    let lead = app.token(
        "lead",
        &["ticket.read", "ticket.status.update", "ticket.reopen"],
    );
    let reopened = app
        .http
        .patch(&format!("/api/v1/tickets/{id}/status"))
        .bearer(&lead)
        .json(&json!({"status": "open", "note": "customer came back"}))
        .send()
        .await;
    assert_eq!(reopened.status, 200, "{}", reopened.text);
    assert_eq!(reopened.body["closedAt"], Value::Null);
    assert_eq!(reopened.body["sla"]["clock"], "running");
    let history = app
        .get(&format!("/api/v1/tickets/{id}/history?limit=100"))
        .await;
    let last = history.body["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str()),
        (Some("closed"), Some("open"))
    );
    assert_eq!(last["note"], "customer came back");
    let stale = app
        .http
        .patch(&format!("/api/v1/tickets/{id}/status"))
        .bearer(&app.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"status": "pending"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");
}

#[tokio::test]
async fn only_active_agents_of_the_tenant_who_can_read_tickets_are_assigned() {
    let app = spawn().await;
    let id = ticket(&app, "Bug", "broken").await;
    let (ann, _) = app.agent("ann").await;
    let (outsider, _) = app.agent_in(OTHER_TENANT, "otto", AGENT).await;
    let (viewer, _) = app.agent_in(TENANT, "vic", &["product.read"]).await;
    let assign = |user: Value| {
        app.http
            .patch(&format!("/api/v1/tickets/{id}/assign"))
            .bearer(&app.admin)
            .json(&json!({"userId": user}))
            .send()
    };
    for who in ["nobody-at-all", outsider.as_str(), viewer.as_str()] {
        assert_invalid_field(&assign(json!(who)).await, "userId");
    }
    let ok = assign(json!(ann)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["assigneeId"], ann.as_str());
    let unassigned = assign(Value::Null).await;
    assert_eq!(unassigned.body["assigneeId"], Value::Null);

    app.update_user(&ann, "deactivated", AGENT).await;
    assert_invalid_field(&assign(json!(ann)).await, "userId");
    app.update_user(&ann, "active", AGENT).await;
    assert_eq!(assign(json!(ann)).await.status, 200);
}

#[tokio::test]
async fn a_severity_override_records_who_and_why_and_moves_the_due_times() {
    let app = spawn().await;
    let id = ticket(&app, "Export is slow", "minor annoyance").await;
    let before = app.get(&format!("/api/v1/tickets/{id}")).await.body;
    assert_eq!(before["severity"], "P3");
    let a = app
        .http
        .patch(&format!("/api/v1/tickets/{id}/severity"))
        .bearer(&app.admin)
        .json(&json!({"severity": "P1", "reason": "blocks month-end close"}))
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["severity"], "P1");
    assert_eq!(a.body["severityOverridden"], true);
    assert_eq!(
        a.body["triage"]["severity"], "P3",
        "triage's own answer is kept"
    );
    let due = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["sla"]["resolutionDueAt"].as_str().unwrap()).unwrap()
    };
    assert!(due(&a.body) < due(&before), "P1 is due sooner than P3");
    let history = app.get(&format!("/api/v1/tickets/{id}/history")).await;
    let h = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["field"] == "severity")
        .unwrap()
        .clone();
    assert_eq!(
        (h["from"].as_str(), h["to"].as_str(), h["note"].as_str()),
        (Some("P3"), Some("P1"), Some("blocks month-end close"))
    );
    let bad = app
        .http
        .patch(&format!("/api/v1/tickets/{id}/severity"))
        .bearer(&app.admin)
        .json(&json!({"severity": "P9", "reason": ""}))
        .send()
        .await;
    assert_invalid_field(&bad, "severity");
    assert_invalid_field(&bad, "reason");
    let stats = app.get("/api/v1/tickets/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["triageOverrideRate"], 1.0);
}

#[tokio::test]
async fn escalation_hands_the_ticket_to_the_target_one_level_up() {
    let app = spawn().await;
    let id = ticket(&app, "Bug", "crash").await;
    let (lead, _) = app.agent("lead").await;
    let a = app
        .http
        .post(&format!("/api/v1/tickets/{id}/escalate"))
        .bearer(&app.admin)
        .json(&json!({"targetUserId": lead, "note": "needs a senior"}))
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["escalation"]["level"], 1);
    assert_eq!(a.body["escalation"]["to"], lead.as_str());
    assert_eq!(a.body["assigneeId"], lead.as_str());
    let bad = app
        .http
        .post(&format!("/api/v1/tickets/{id}/escalate"))
        .bearer(&app.admin)
        .json(&json!({"targetUserId": "ghost"}))
        .send()
        .await;
    assert_invalid_field(&bad, "targetUserId");
    app.status(&id, "resolved").await;
    let late = app
        .http
        .post(&format!("/api/v1/tickets/{id}/escalate"))
        .bearer(&app.admin)
        .json(&json!({"targetUserId": lead}))
        .send()
        .await;
    assert_problem(&late, 409, "ticket_not_open");
}

#[tokio::test]
async fn comments_and_internal_notes_are_kept_apart() {
    let app = spawn().await;
    let id = ticket(&app, "Bug", "crash").await;
    let public = app
        .comment(&id, json!({"body": "We are on it", "visibility": "public"}))
        .await;
    assert_eq!(public.status, 201, "{}", public.text);
    assert_eq!(public.body["authorKind"], "agent");
    let note = app
        .comment(
            &id,
            json!({"body": "Suspect the cache", "visibility": "internal"}),
        )
        .await;
    assert_eq!(note.status, 201);

    let all = app.get(&format!("/api/v1/tickets/{id}/comments")).await;
    assert_eq!(all.body["pagination"]["total"], 2);
    let reader = app.token("reader", &["ticket.read"]);
    let seen = app
        .http
        .get(&format!("/api/v1/tickets/{id}/comments"))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(seen.body["pagination"]["total"], 1);
    assert_eq!(seen.body["data"][0]["visibility"], "public");

    let public_only = app.token("replier", &["ticket.read", "ticket.comment.public"]);
    let refused = app
        .http
        .post(&format!("/api/v1/tickets/{id}/comments"))
        .bearer(&public_only)
        .json(&json!({"body": "secret", "visibility": "internal"}))
        .send()
        .await;
    assert_problem(&refused, 403, "permission_denied");
    let bad = app
        .comment(&id, json!({"body": " ", "visibility": "shout"}))
        .await;
    assert_invalid_field(&bad, "body");
    assert_invalid_field(&bad, "visibility");
    let bad = app
        .comment(
            &id,
            json!({"body": "x", "visibility": "internal", "author": "requester"}),
        )
        .await;
    assert_invalid_field(&bad, "visibility");

    let t = app.get(&format!("/api/v1/tickets/{id}")).await.body;
    assert_eq!(t["commentsCount"], 2);
    assert!(
        t["firstResponseAt"].is_string(),
        "the public agent reply is the first response"
    );
}

#[tokio::test]
async fn a_requester_reply_reopens_a_resolved_ticket_and_wakes_a_pending_one() {
    let app = spawn().await;
    let id = ticket(&app, "Question", "how do I").await;
    app.status(&id, "resolved").await;
    let reply = app
        .comment(
            &id,
            json!({"body": "Still broken", "visibility": "public", "author": "requester"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["authorName"], "Rita Requester");
    let t = app.get(&format!("/api/v1/tickets/{id}")).await.body;
    assert_eq!(t["status"], "open");
    assert_eq!(
        t["firstResponseAt"],
        Value::Null,
        "a requester's reply is not a response"
    );
    app.status(&id, "pending").await;
    app.comment(
        &id,
        json!({"body": "Here are the logs", "visibility": "public", "author": "requester"}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}")).await.body["status"],
        "open"
    );
}
