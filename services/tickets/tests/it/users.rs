//! The read model of identity's users, fed by `user.*` events — over the in-process bus, and
//! over RabbitMQ when FLEETDESK_TEST_AMQP_URL names a broker.

use fleetdesk_events::identity::UserDeleted;
use serde_json::json;

use crate::helpers::*;

async fn assignable(app: &TestApp, ticket: &str, user: &str) -> u16 {
    app.http
        .patch(&format!("/api/v1/tickets/{ticket}/assign"))
        .bearer(&app.admin)
        .json(&json!({"userId": user}))
        .send()
        .await
        .status
}

async fn read_model_follows_identity(app: &TestApp) {
    let p = app.create_product("PAY", json!({})).await;
    let t = app.raise(p["id"].as_str().unwrap(), "Bug", "crash").await;
    let id = t["id"].as_str().unwrap();
    let (ann, _) = app.agent("ann").await;
    assert_eq!(assignable(app, id, &ann).await, 200);
    app.update_user(&ann, "active", &["product.read"]).await;
    assert_eq!(assignable(app, id, &ann).await, 400, "without ticket.read");
    app.update_user(&ann, "active", &["ticket.*"]).await;
    assert_eq!(assignable(app, id, &ann).await, 200);
    app.publish(
        TENANT,
        &UserDeleted {
            user_id: ann.clone(),
            email: "ann@acme.test".into(),
        },
    )
    .await;
    for _ in 0..200 {
        if assignable(app, id, &ann).await == 400 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("a deleted user stayed assignable");
}

#[tokio::test]
async fn the_users_read_model_follows_identitys_events() {
    let app = spawn().await;
    read_model_follows_identity(&app).await;
}

#[tokio::test]
async fn the_users_read_model_follows_identitys_events_over_rabbitmq() {
    let Some(url) = fleetdesk_testkit::amqp_server() else {
        eprintln!("FLEETDESK_TEST_AMQP_URL unset: the RabbitMQ variant runs in CI");
        return;
    };
    let exchange = format!("fleetdesk.test.{}", uuid::Uuid::new_v4().simple());
    let app = spawn_with(&[
        ("FLEETDESK_AMQP_URL", url.as_str()),
        ("FLEETDESK_AMQP_EXCHANGE", exchange.as_str()),
    ])
    .await;
    read_model_follows_identity(&app).await;
    // The publisher declared every consumer's queues: leave none behind on the broker.
    let mut config = fleetdesk_events::AmqpConfig::new(url, "tickets-test-cleanup");
    config.exchange = exchange;
    let bus = fleetdesk_events::AmqpBus::new(config);
    for sub in fleetdesk_events::topology::all(&app.state.config.bus.queue_prefix) {
        let _ = bus.delete(&sub).await;
    }
    let _ = bus.delete_exchange().await;
}
