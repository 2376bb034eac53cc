//! The issue's proofs: broker outage, consumer crash, poison messages, two relays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fleetdesk_events::{Bus, Relay};

use crate::rig::{Counting, Kind, Rig, counter, eventually};

/// The broker is cut off while 1,000 writes happen: every write succeeds, and once the cut
/// heals every event reaches the consumer exactly once in effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_outage_loses_nothing_rabbitmq() {
    let Some(rig) = Rig::new(Kind::Rabbit, true).await else {
        return;
    };
    fleetdesk_telemetry::metrics_handle();
    let _consumer = rig.consume().await;
    let _relay = rig.relay().spawn();

    // Connected: a first event goes through.
    rig.write("warmup", 0, false).await;
    eventually(20, "the warm-up event", || async {
        rig.effects().await == 1
    })
    .await;

    let proxy = rig.proxy.as_ref().unwrap();
    proxy.cut();
    let mut writers = Vec::new();
    for w in 0..10u32 {
        let db_rig = &rig;
        writers.push(async move {
            for i in 0..100u32 {
                db_rig.write(&format!("k{w}"), w * 100 + i, false).await;
            }
        });
    }
    futures_util::future::join_all(writers).await;
    assert_eq!(
        rig.effects().await,
        1,
        "nothing may arrive through a cut connection"
    );
    assert!(
        rig.unsent().await > 0,
        "the outbox holds the writes during the outage"
    );
    assert!(
        rig.bus.check().await.is_err(),
        "readiness sees the broker gone"
    );

    proxy.heal();
    eventually(90, "1,000 events after the cut healed", || async {
        rig.effects().await >= 1001
    })
    .await;
    // Let any duplicate deliveries arrive before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(rig.effects().await, 1001);
    assert!(
        rig.doubled().await.is_empty(),
        "an event had a second effect"
    );
    assert_eq!(rig.unsent().await, 0);
    rig.cleanup().await;
}

async fn crash_then_retry(kind: Kind) {
    let Some(rig) = Rig::new(kind, false).await else {
        return;
    };
    let _consumer = rig.consume().await;
    let relay = rig.relay();
    let first = rig.write("a", 1, false).await;
    rig.fail_once.lock().unwrap().push(first.id.to_string());
    relay.drain().await.unwrap();
    eventually(20, "the retried event", || async {
        rig.effects().await == 1
    })
    .await;
    // Delivered twice (the crash and the retry), one effect.
    let seen = rig.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![("a".to_owned(), 1), ("a".to_owned(), 1)]);

    // The same event published again (a relay that lost its lease does this) has no effect.
    let again = fleetdesk_events::Message {
        id: first.id.to_string(),
        routing_key: "test.pinged".into(),
        payload: serde_json::to_vec(&first).unwrap(),
        traceparent: None,
    };
    assert!(
        rig.bus
            .publish(&[again])
            .await
            .into_iter()
            .all(|r| r.is_ok())
    );
    rig.write("a", 2, false).await;
    relay.drain().await.unwrap();
    eventually(20, "the event after the duplicate", || async {
        rig.effects().await == 2
    })
    .await;
    assert!(rig.doubled().await.is_empty());
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handler_is_retried_with_one_effect_rabbitmq() {
    crash_then_retry(Kind::Rabbit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handler_is_retried_with_one_effect_in_process() {
    crash_then_retry(Kind::Local).await;
}

async fn poison_is_parked(kind: Kind) {
    let Some(rig) = Rig::new(kind, false).await else {
        return;
    };
    fleetdesk_telemetry::metrics_handle();
    let queue = rig.sub.queue();
    let _consumer = rig.consume().await;
    let relay = rig.relay();
    let poison = rig.write("p", 0, true).await;
    for n in 1..=5 {
        rig.write("q", n, false).await;
    }
    // Not an event at all: parked on its first delivery.
    let garbage = fleetdesk_events::Message {
        id: uuid::Uuid::now_v7().to_string(),
        routing_key: "test.pinged".into(),
        payload: b"{not json".to_vec(),
        traceparent: None,
    };
    relay.drain().await.unwrap();
    assert!(
        rig.bus
            .publish(&[garbage])
            .await
            .into_iter()
            .all(|r| r.is_ok())
    );

    eventually(20, "the poison event parked", || async {
        counter("events_dead_lettered_total", &queue) >= 2.0
    })
    .await;
    assert_eq!(counter("events_retried_total", &queue), 2.0);
    let seen = rig.seen.lock().unwrap().clone();
    let poison_tries: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 == "p")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(poison_tries.len(), 3, "tried max_attempts times: {seen:?}");
    let followers_done = seen.iter().position(|s| *s == ("q".to_owned(), 5)).unwrap();
    assert!(
        followers_done < poison_tries[1],
        "the events behind the poison waited for it: {seen:?}"
    );
    // Only the followers' effects remain; the poison's were rolled back each time.
    assert_eq!(rig.effects().await, 5);

    let dead = rig.dead().await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    let parked = dead
        .iter()
        .find(|(m, _)| m.id.as_deref() == Some(&poison.id.to_string()))
        .expect("the poison event is in the dead-letter queue");
    assert_eq!(parked.0.attempt, 3);
    assert_eq!(parked.0.routing_key, "test.pinged");
    assert!(parked.1.contains("poisoned"), "{}", parked.1);
    assert!(
        dead.iter()
            .any(|(m, e)| m.attempt == 1 && e.contains("not an event"))
    );
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_parked_without_blocking_rabbitmq() {
    poison_is_parked(Kind::Rabbit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_parked_without_blocking_in_process() {
    poison_is_parked(Kind::Local).await;
}

async fn two_relays(kind: Kind) {
    let Some(rig) = Rig::new(kind, false).await else {
        return;
    };
    let _consumer = rig.consume().await;
    for n in 0..400u32 {
        rig.write(&format!("k{}", n % 7), n, false).await;
    }
    let counting = Arc::new(Counting {
        inner: rig.bus.clone(),
        published: Mutex::new(HashMap::new()),
    });
    let bus: Arc<dyn Bus> = counting.clone();
    let mut options = Rig::relay_options();
    options.batch = 25;
    let a = Relay::new("test", rig.db.clone(), bus.clone()).with_options(options.clone());
    let b = Relay::new("test", rig.db.clone(), bus).with_options(options);
    let (ra, rb) = tokio::join!(a.drain(), b.drain());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra + rb, 400, "a sent {ra}, b sent {rb}");
    let published = counting.published.lock().unwrap().clone();
    assert_eq!(published.len(), 400);
    assert!(
        published.values().all(|n| *n == 1),
        "a row was published twice"
    );
    assert_eq!(rig.unsent().await, 0);

    eventually(30, "all 400 events consumed", || async {
        rig.effects().await == 400
    })
    .await;
    // Each aggregate's events arrived in the order they were written.
    let seen = rig.seen.lock().unwrap().clone();
    let mut last: HashMap<String, u32> = HashMap::new();
    for (key, n) in seen {
        if let Some(prev) = last.insert(key.clone(), n) {
            assert!(n > prev, "{key}: {n} arrived after {prev}");
        }
    }
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_publish_each_row_once_rabbitmq() {
    two_relays(Kind::Rabbit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_publish_each_row_once_in_process() {
    two_relays(Kind::Local).await;
}

/// The in-process bus keeps what was published while no consumer ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_bus_keeps_messages_across_a_consumer_restart() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let consumer = rig.consume().await;
    consumer.stop();
    for n in 0..3 {
        rig.write("r", n, false).await;
    }
    rig.relay().drain().await.unwrap();
    assert_eq!(rig.effects().await, 0);
    let _consumer = rig.consume().await;
    eventually(10, "the events published while stopped", || async {
        rig.effects().await == 3
    })
    .await;
}

/// A consumer handles the events it is given together in one transaction. When one of them
/// fails, only its own attempt counts: the lot is rolled back, the events before it are
/// handled again, the events after it go on as the next lot, and every event has one effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lot_of_events_commits_together_and_one_failure_costs_only_itself_in_process() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    fleetdesk_telemetry::metrics_handle();
    let queue = rig.sub.queue();
    // Stopped while the events are published, so the consumer finds all ten at once.
    rig.consume().await.stop();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(rig.write(&format!("l{n}"), n, false).await.id.to_string());
    }
    rig.fail_once.lock().unwrap().push(ids[4].clone());
    rig.relay().drain().await.unwrap();
    let _consumer = rig.consume().await;
    eventually(20, "ten events, one of them retried", || async {
        rig.effects().await == 10
    })
    .await;
    assert!(
        rig.doubled().await.is_empty(),
        "an event had a second effect"
    );
    assert_eq!(counter("events_retried_total", &queue), 1.0);
    let seen = rig.seen.lock().unwrap().clone();
    let runs = |n: u32| seen.iter().filter(|s| s.1 == n).count();
    // 0-3 ran in the failed lot's transaction, which was rolled back, and once more.
    for n in 0..4 {
        assert_eq!(runs(n), 2, "event {n}: {seen:?}");
    }
    // 4 crashed once and was retried; 5-9 formed the next lot.
    assert_eq!(runs(4), 2, "{seen:?}");
    for n in 5..10 {
        assert_eq!(runs(n), 1, "event {n}: {seen:?}");
    }
    rig.cleanup().await;
}

/// An event delivered twice in one lot (a relay that lost its lease published it again) has
/// one effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_twice_in_one_lot_has_one_effect() {
    use fleetdesk_events::{Consumer, Deliver, HandlerError, Incoming, Outcome};
    use fleetdesk_store::diesel::connection::SimpleConnection;

    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let handler = |conn: &mut fleetdesk_store::DbConn,
                   env: &fleetdesk_events::Envelope|
     -> Result<(), HandlerError> {
        conn.batch_execute(&format!(
            "INSERT INTO effects (event_id, thing, n) VALUES ('{}', 'x', 0)",
            env.id
        ))?;
        Ok(())
    };
    let consumer = Consumer::new("twice", rig.db.clone(), handler);
    let incoming = |env: &fleetdesk_events::Envelope| Incoming {
        id: Some(env.id.to_string()),
        routing_key: "test.pinged".into(),
        payload: serde_json::to_vec(env).unwrap(),
        attempt: 1,
    };
    let first = rig.write("d", 1, false).await;
    let other = rig.write("e", 2, false).await;
    let lot = [incoming(&first), incoming(&other), incoming(&first)];
    let outcomes = consumer.deliver_all(&lot).await;
    assert_eq!(outcomes, vec![Outcome::Done; 3]);
    assert_eq!(rig.effects().await, 2);
    assert!(
        rig.doubled().await.is_empty(),
        "an event had a second effect"
    );
    rig.cleanup().await;
}

/// A handler that writes a lot's events together does so in one call; when that fails,
/// nothing of it is kept and each event is handled again on its own, so only the one at
/// fault fails, and every other has one effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_handled_together_fall_back_to_one_by_one_when_the_lot_fails() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fleetdesk_events::{Consumer, Deliver, Envelope, Handler, HandlerError, Incoming, Outcome};
    use fleetdesk_store::DbConn;
    use fleetdesk_store::diesel::connection::SimpleConnection;

    struct Together {
        poison: String,
        together: Arc<AtomicUsize>,
        alone: Arc<AtomicUsize>,
    }
    impl Together {
        fn write(&self, conn: &mut DbConn, env: &Envelope) -> Result<(), HandlerError> {
            if env.id.to_string() == self.poison {
                return Err(HandlerError::Permanent("poisoned".into()));
            }
            conn.batch_execute(&format!(
                "INSERT INTO effects (event_id, thing, n) VALUES ('{}', 'x', 0)",
                env.id
            ))?;
            Ok(())
        }
    }
    impl Handler for Together {
        fn handle(&self, conn: &mut DbConn, env: &Envelope) -> Result<(), HandlerError> {
            self.alone.fetch_add(1, Ordering::SeqCst);
            self.write(conn, env)
        }
        fn handle_together(
            &self,
            conn: &mut DbConn,
            events: &[&Envelope],
        ) -> Option<Result<(), HandlerError>> {
            self.together.fetch_add(1, Ordering::SeqCst);
            Some(events.iter().try_for_each(|e| self.write(conn, e)))
        }
    }

    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let (together, alone) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let incoming = |env: &Envelope| Incoming {
        id: Some(env.id.to_string()),
        routing_key: "test.pinged".into(),
        payload: serde_json::to_vec(env).unwrap(),
        attempt: 1,
    };
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(rig.write(&format!("t{n}"), n, false).await);
    }
    let consumer = Consumer::new(
        "together",
        rig.db.clone(),
        Together {
            poison: events[2].id.to_string(),
            together: together.clone(),
            alone: alone.clone(),
        },
    );
    // A good lot: one call for all, none alone.
    let good: Vec<Incoming> = [&events[0], &events[1]].map(incoming).to_vec();
    assert_eq!(consumer.deliver_all(&good).await, vec![Outcome::Done; 2]);
    assert_eq!(
        (
            together.load(Ordering::SeqCst),
            alone.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    assert_eq!(rig.effects().await, 2);
    // A lot with a poisoned event: tried together, then each of the three alone.
    let lot: Vec<Incoming> = events[2..].iter().map(incoming).collect();
    let outcomes = consumer.deliver_all(&lot).await;
    assert_eq!(
        outcomes,
        vec![
            Outcome::Reject("poisoned".into()),
            Outcome::Done,
            Outcome::Done
        ]
    );
    assert_eq!(
        (
            together.load(Ordering::SeqCst),
            alone.load(Ordering::SeqCst)
        ),
        (2, 3)
    );
    assert_eq!(rig.effects().await, 4);
    assert!(
        rig.doubled().await.is_empty(),
        "an event had a second effect"
    );
    // Delivered again (a redelivery), nothing new happens.
    assert_eq!(consumer.deliver_all(&good).await, vec![Outcome::Done; 2]);
    assert_eq!(rig.effects().await, 4);
    rig.cleanup().await;
}

/// PostgreSQL ends every pooled connection (a restart): the request that meets the first
/// dead one fails as unavailable, and the pool drops the other dead ones with it, so the next
/// requests work on new connections instead of each failing on a dead one of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_the_server_ended_cost_one_request() {
    use fleetdesk_store::diesel::connection::SimpleConnection;
    use fleetdesk_store::diesel::prelude::*;
    use fleetdesk_store::diesel::sql_types::Integer;
    use fleetdesk_store::{Backend, Db, Migrations, PoolOptions, StoreError};

    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let tdb = fleetdesk_testkit::TestDb::migrated(&Migrations::PLATFORM).unwrap();
    if tdb.backend != Backend::Postgres {
        return; // SQLite has no server to end a connection
    }
    let db = Db::connect(
        "test",
        &tdb.url,
        &Migrations::PLATFORM,
        PoolOptions {
            max_size: 3,
            acquire_timeout: std::time::Duration::from_secs(10),
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let pid = |pause: f64| {
        let db = db.clone();
        async move {
            db.run(move |c| {
                fleetdesk_store::diesel::sql_query(format!(
                    "SELECT pg_backend_pid() AS pid FROM pg_sleep({pause})"
                ))
                .get_result::<Pid>(c)
                .map(|p| p.pid)
                .map_err(StoreError::from)
            })
            .await
        }
    };
    // Three at once: three connections in the pool.
    let (a, b, c) = tokio::join!(pid(0.3), pid(0.3), pid(0.3));
    let first = [a.unwrap(), b.unwrap(), c.unwrap()];
    let mut admin = fleetdesk_store::diesel::PgConnection::establish(&tdb.url).unwrap();
    for p in first {
        admin
            .batch_execute(&format!("SELECT pg_terminate_backend({p})"))
            .unwrap();
    }
    let failed = pid(0.0).await;
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    for _ in 0..3 {
        let next = pid(0.0)
            .await
            .expect("new connections serve the next requests");
        assert!(!first.contains(&next));
    }
}
