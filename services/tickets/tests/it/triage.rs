//! Triage through a model (a fake OpenAI-compatible server), and the fallback to the rules.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

async fn app_with_model(behaviour: ModelBehaviour) -> (TestApp, FakeModel, String) {
    let model = FakeModel::start(behaviour).await;
    let app = spawn_with(&[
        ("FLEETDESK_TRIAGE_LLM_URL", model.url.as_str()),
        ("FLEETDESK_TRIAGE_LLM_MODEL", "fake-triage"),
        ("FLEETDESK_TRIAGE_LLM_API_KEY", "sk-test"),
        ("FLEETDESK_TRIAGE_LLM_TIMEOUT_MS", "500"),
    ])
    .await;
    let pid = app.create_product("PAY", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, model, pid)
}

#[tokio::test]
async fn the_models_strict_answer_is_used_with_its_provenance() {
    let answer = r#"{"severity":"P2","type":"bug","confidence":0.87,"reasons":["export fails for one user"]}"#;
    let (app, model, pid) = app_with_model(ModelBehaviour::Answer(answer.into())).await;
    let t = app
        .raise(&pid, "Checkout is down", "All users get a 503")
        .await;
    assert_eq!(t["severity"], "P2", "the model, not the rules, decided");
    assert_eq!(t["triage"]["provenance"]["source"], "model");
    assert_eq!(t["triage"]["provenance"]["model"], "fake-triage");
    assert_eq!(t["triage"]["confidence"], 0.87);
    let sent = model.requests.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "fake-triage");
    assert_eq!(sent["response_format"]["type"], "json_object");
    assert!(
        sent["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Checkout is down")
    );
}

#[tokio::test]
async fn any_model_failure_falls_back_to_the_rules_and_says_why() {
    let (app, model, pid) = app_with_model(ModelBehaviour::Status(500)).await;
    let t = app
        .raise(&pid, "Checkout is down", "All users get a 503")
        .await;
    assert_eq!(t["severity"], "P0");
    assert_eq!(t["triage"]["provenance"]["source"], "rules");
    assert_eq!(
        t["triage"]["provenance"]["fallbackReason"],
        "the model answered HTTP 500"
    );

    model.set(ModelBehaviour::Answer("Sure! It is a P1.".into()));
    let t = app
        .raise(&pid, "Checkout is down", "All users get a 503")
        .await;
    assert_eq!(t["triage"]["provenance"]["source"], "rules");
    assert!(
        t["triage"]["provenance"]["fallbackReason"]
            .as_str()
            .unwrap()
            .starts_with("not the JSON asked for")
    );

    model.set(ModelBehaviour::Answer(
        r#"{"severity":"P0","type":"outage","confidence":0.9}"#.into(),
    ));
    let t = app.raise(&pid, "x", "y").await;
    assert!(
        t["triage"]["provenance"]["fallbackReason"]
            .as_str()
            .unwrap()
            .starts_with("type must be one of")
    );

    model.set(ModelBehaviour::Slow(Duration::from_secs(5)));
    let started = Instant::now();
    let t = app
        .raise(&pid, "Checkout is down", "All users get a 503")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout bounds the wait: {:?}",
        started.elapsed()
    );
    assert_eq!(
        t["triage"]["provenance"]["fallbackReason"],
        "the model did not answer within 500 ms"
    );
    assert_eq!(t["severity"], "P0");
}

#[tokio::test]
async fn an_unreachable_model_falls_back_too() {
    let app = spawn_with(&[(
        "FLEETDESK_TRIAGE_LLM_URL",
        "http://127.0.0.1:9/v1/chat/completions",
    )])
    .await;
    let pid = app.create_product("PAY", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = app
        .raise(&pid, "How do I export?", "Where is the button")
        .await;
    assert_eq!(t["type"], "question");
    assert_eq!(
        t["triage"]["provenance"]["fallbackReason"],
        "the model could not be reached"
    );
}
