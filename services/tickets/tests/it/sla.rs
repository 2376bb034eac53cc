//! The SLA clock under pause, resume and severity changes, breach detection and escalation.

use std::time::Duration;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::helpers::*;

fn time(v: &Value) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

async fn sla(app: &TestApp, id: &str) -> Value {
    let a = app.get(&format!("/api/v1/tickets/{id}/sla")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn kinds(sla: &Value) -> Vec<String> {
    sla["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pausing_moves_the_due_times_by_the_pause_and_the_ledger_tells_it() {
    let app = spawn().await;
    let p = app
        .create_product(
            "PAY",
            json!({"slaPolicy": {"P3": {"firstResponseMinutes": 60, "resolutionMinutes": 240}}}),
        )
        .await;
    let t = app
        .raise(p["id"].as_str().unwrap(), "Export is slow", "minor")
        .await;
    let id = t["id"].as_str().unwrap();
    let s0 = sla(&app, id).await;
    assert_eq!(s0["clock"], "running");
    assert_eq!(s0["firstResponse"]["targetMinutes"], 60);
    let due0 = time(&s0["resolution"]["dueAt"]);

    app.advance_minutes(30);
    app.status(id, "pending").await;
    let paused = sla(&app, id).await;
    assert_eq!(paused["clock"], "paused");
    assert_eq!(
        paused["resolution"]["dueAt"],
        Value::Null,
        "no due time while paused"
    );
    assert_eq!(paused["resolution"]["remainingSeconds"], 210 * 60);

    app.advance_minutes(120);
    let still = sla(&app, id).await;
    assert_eq!(
        still["elapsedSeconds"],
        30 * 60,
        "the clock did not run while paused"
    );
    assert_eq!(still["pausedSeconds"], 120 * 60);

    app.status(id, "open").await;
    let resumed = sla(&app, id).await;
    assert_eq!(resumed["clock"], "running");
    assert_eq!(
        time(&resumed["resolution"]["dueAt"]) - due0,
        chrono::Duration::minutes(120)
    );
    assert_eq!(kinds(&resumed), vec!["start", "pause", "resume"]);

    app.advance_minutes(10);
    app.status(id, "resolved").await;
    let stopped = sla(&app, id).await;
    assert_eq!(stopped["clock"], "stopped");
    assert_eq!(stopped["elapsedSeconds"], 40 * 60);
    assert!(stopped["resolution"]["metAt"].is_string());
    assert_eq!(kinds(&stopped), vec!["start", "pause", "resume", "stop"]);
    // The start is the ticket's creation, at the severity triage gave it.
    assert_eq!(stopped["ledger"][0]["at"], t["createdAt"]);
    assert_eq!(
        stopped["ledger"][0]["detail"],
        format!("severity {}", t["severity"].as_str().unwrap())
    );
}

#[tokio::test]
async fn a_severity_change_retargets_from_the_time_already_spent() {
    let app = spawn().await;
    let p = app.create_product("PAY", json!({})).await;
    let t = app
        .raise(p["id"].as_str().unwrap(), "Export is slow", "minor")
        .await;
    let id = t["id"].as_str().unwrap();
    let created = time(&t["createdAt"]);
    app.advance_minutes(5);
    app.http
        .patch(&format!("/api/v1/tickets/{id}/severity"))
        .bearer(&app.admin)
        .json(&json!({"severity": "P0", "reason": "all users"}))
        .send()
        .await;
    let s = sla(&app, id).await;
    // P0's default targets: 15 min first response, 240 min resolution, counted from creation.
    assert_eq!(
        time(&s["firstResponse"]["dueAt"]) - created,
        chrono::Duration::minutes(15)
    );
    assert_eq!(
        time(&s["resolution"]["dueAt"]) - created,
        chrono::Duration::minutes(240)
    );
    assert!(kinds(&s).contains(&"retarget".to_owned()));
}

#[tokio::test]
async fn a_missed_target_is_breached_announced_and_escalated_to_the_lead() {
    let app = spawn().await;
    let (lead, _) = app.agent("lead").await;
    let p = app.create_product("PAY", json!({"leadId": lead})).await;
    // "outage" → P1, whose default policy escalates: 60 min to first response.
    let t = app
        .raise(p["id"].as_str().unwrap(), "API outage", "requests fail")
        .await;
    assert_eq!(t["severity"], "P1");
    let id = t["id"].as_str().unwrap();
    app.stop_background();

    app.advance_minutes(59);
    assert_eq!(
        fleetdesk_tickets::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        0
    );
    app.advance_minutes(2);
    assert_eq!(
        fleetdesk_tickets::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fleetdesk_tickets::scheduler::run_once(&app.state)
            .await
            .unwrap(),
        0,
        "a breach is marked once"
    );

    let s = sla(&app, id).await;
    assert!(s["firstResponse"]["breachedAt"].is_string());
    assert_eq!(s["resolution"]["breachedAt"], Value::Null);
    let breach = s["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "breach")
        .unwrap()
        .clone();
    assert_eq!(breach["target"], "first_response");
    let ticket = app.get(&format!("/api/v1/tickets/{id}")).await.body;
    assert_eq!(ticket["assigneeId"], lead.as_str());
    assert_eq!(ticket["escalation"]["level"], 1);
    assert_eq!(
        time(&ticket["slaDueAt"]),
        time(&s["resolution"]["dueAt"]),
        "the next target is due next"
    );
    assert_eq!(app.outbox("ticket.sla_breached").await, 1);
    assert_eq!(app.outbox("ticket.escalated").await, 1);

    // A late reply does not undo the breach; resolving late breaches the resolution too.
    app.comment(
        id,
        json!({"body": "Sorry for the wait", "visibility": "public"}),
    )
    .await;
    app.advance_minutes(480);
    app.status(id, "resolved").await;
    let s = sla(&app, id).await;
    assert!(s["firstResponse"]["breachedAt"].is_string());
    assert!(s["resolution"]["breachedAt"].is_string(), "{s}");
    let stats = app.get("/api/v1/tickets/stats").await.body;
    assert_eq!(stats["slaCompliance"]["breached"], 1);
}

#[tokio::test]
async fn the_background_scheduler_marks_a_breach_within_seconds_of_the_due_time() {
    let app = spawn().await;
    let p = app
        .create_product(
            "PAY",
            json!({"slaPolicy": {"P3": {"firstResponseMinutes": 1, "resolutionMinutes": 60}}}),
        )
        .await;
    let t = app
        .raise(p["id"].as_str().unwrap(), "Export is slow", "minor")
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    app.advance_minutes(2);
    for _ in 0..100 {
        let s = sla(&app, &id).await;
        if s["firstResponse"]["breachedAt"].is_string() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scheduler did not mark the breach within 10 s");
}
