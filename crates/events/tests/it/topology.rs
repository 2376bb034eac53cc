//! The consumers' queues are declared by whoever publishes first, so an event published before
//! its consumer ever started waits for it (RabbitMQ; the in-process bus keeps its bindings in
//! its database and the one binary subscribes in order).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetdesk_events::bus::BoxFuture;
use fleetdesk_events::{
    AmqpBus, AmqpConfig, BusConfig, Deliver, Incoming, Message, Outcome, topology,
};
use fleetdesk_store::Migrations;
use fleetdesk_testkit::{TestDb, amqp_server};

use crate::rig::connect;

#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Deliver for Seen {
    fn deliver<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome> {
        self.0.lock().unwrap().push(message.routing_key.clone());
        Box::pin(async { Outcome::Done })
    }
}

#[tokio::test]
async fn an_event_published_before_its_consumer_first_starts_waits_for_it_rabbitmq() {
    let Some(url) = amqp_server() else {
        eprintln!("FLEETDESK_TEST_AMQP_URL is not set: RabbitMQ variant not run here");
        return;
    };
    fleetdesk_testkit::install_crypto();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let config = BusConfig {
        url: Some(url.clone()),
        exchange: format!("fdtest.{tag}"),
        queue_prefix: format!("t{}.", &tag[20..]),
    };
    let tdb = TestDb::migrated(&Migrations::PLATFORM).unwrap();
    // Identity publishes a user's registration; tickets has never run against this broker.
    let identity = config.connect("identity", &connect(&tdb));
    let sent = identity
        .publish(&[Message {
            id: uuid::Uuid::now_v7().to_string(),
            routing_key: "user.registered".into(),
            payload: b"{}".to_vec(),
            traceparent: None,
        }])
        .await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");

    // Tickets starts afterwards and still gets it.
    let seen = Arc::new(Seen::default());
    let tickets = config.connect("tickets", &connect(&tdb));
    let handle = tickets
        .subscribe(topology::tickets(&config.queue_prefix), seen.clone())
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got = seen.0.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.stop();
    let mut admin = AmqpConfig::new(url, "topology-test-cleanup");
    admin.exchange = config.exchange.clone();
    let admin = AmqpBus::new(admin);
    for sub in topology::all(&config.queue_prefix) {
        let _ = admin.delete(&sub).await;
    }
    let _ = admin.delete_exchange().await;
    assert_eq!(got, vec!["user.registered".to_owned()]);
}
