//! The outbox on its own: atomicity, trace context, sensitive payloads, ordering of claims.

use chrono::Utc;
use fleetdesk_events::{Envelope, Origin, emit};
use fleetdesk_store::diesel::connection::SimpleConnection;
use fleetdesk_store::{StoreError, outbox};

use crate::rig::{Kind, Pinged, Rig, eventually};

#[tokio::test]
async fn a_rolled_back_write_publishes_nothing() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let result = rig
        .db
        .transaction(|c| {
            c.batch_execute("INSERT INTO things (id, n) VALUES ('x', 1)")?;
            let origin = Origin::new(None, "system", Utc::now());
            emit(
                c,
                &origin,
                &Pinged {
                    key: "x".into(),
                    n: 1,
                    poison: false,
                },
            )?;
            Err::<(), _>(StoreError::Conflict("the domain check failed".into()))
        })
        .await;
    assert!(result.is_err());
    assert_eq!(rig.unsent().await, 0);
    assert_eq!(rig.count("SELECT COUNT(*) AS n FROM things").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_travels_to_the_consumer() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Envelope>::new()));
    let s = seen.clone();
    let consumer = fleetdesk_events::Consumer::new(
        "trace",
        rig.db.clone(),
        move |_: &mut fleetdesk_store::DbConn, env: &Envelope| {
            s.lock().unwrap().push(env.clone());
            Ok(())
        },
    );
    let _handle = rig.bus.subscribe(rig.sub.clone(), consumer).await.unwrap();
    let sent = rig.write("t", 1, false).await;
    let _relay = rig.relay().spawn();
    eventually(10, "the event", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    let got = seen.lock().unwrap()[0].clone();
    assert_eq!(got, sent);
    assert_eq!(got.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(got.tenant_id.as_deref(), Some("tenant-1"));
    assert_eq!(got.actor, "user-1");
    assert_eq!(got.source, "test");
}

#[tokio::test]
async fn claims_skip_aggregates_another_relay_holds_and_leases_expire() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    rig.write("a", 1, false).await;
    rig.write("a", 2, false).await;
    rig.write("b", 1, false).await;
    let now = Utc::now().naive_utc();
    let later = now + chrono::Duration::seconds(30);
    let (first, second, after_expiry) = rig
        .db
        .run(move |c| {
            // Relay 1 takes only the first row (a:1).
            let first = outbox::claim(c, "r1", now, later, 1)?;
            // Relay 2 must not take a:2 while a:1 is held, but may take b:1.
            let second = outbox::claim(c, "r2", now, later, 10)?;
            // After relay 1's lease runs out, its row can be taken over.
            let after = outbox::claim(
                c,
                "r3",
                later + chrono::Duration::seconds(1),
                later + chrono::Duration::seconds(60),
                10,
            )?;
            Ok::<_, StoreError>((first, second, after))
        })
        .await
        .unwrap();
    let aggs = |v: &Vec<outbox::Claimed>| v.iter().map(|r| r.aggregate.clone()).collect::<Vec<_>>();
    assert_eq!(aggs(&first), vec!["thing:a"]);
    assert_eq!(aggs(&second), vec!["thing:b"]);
    // r3 sees every unsent row whose lease has expired, in order.
    assert_eq!(aggs(&after_expiry), vec!["thing:a", "thing:a", "thing:b"]);
}

// A claim of n looks among the oldest 4 × n unsent rows only. A row past them whose aggregate
// is held past them too must not be taken out of order because the claim cannot see that.
#[tokio::test]
async fn a_claim_looks_no_further_than_its_window() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    for key in ["w", "x", "y", "z"] {
        rig.write(key, 1, false).await;
    }
    rig.write("v", 1, false).await;
    rig.write("v", 2, false).await;
    rig.write("u", 1, false).await;
    let now = Utc::now().naive_utc();
    let later = now + chrono::Duration::seconds(30);
    let (narrow, wide) = rig
        .db
        .run(move |c| {
            // Relay 1 holds everything but v:2 (given back, as after a failed publish) and u:1.
            let held = outbox::claim(c, "r1", now, later, 10)?;
            assert_eq!(held.len(), 7);
            outbox::release(c, "r1", &[held[5].seq, held[6].seq], "nack")?;
            // Window of 4: w, x, y, z, all held. v:2 lies past it, behind v:1 (held).
            let narrow = outbox::claim(c, "r2", now, later, 1)?;
            // Window of 8: v:1 is in it, so v:2 waits and u:1 is free.
            let wide = outbox::claim(c, "r2", now, later, 2)?;
            Ok::<_, StoreError>((narrow, wide))
        })
        .await
        .unwrap();
    assert!(narrow.is_empty(), "{narrow:?}");
    let aggs: Vec<_> = wide.iter().map(|r| r.aggregate.as_str()).collect();
    assert_eq!(aggs, vec!["thing:u"]);
}

#[tokio::test]
async fn sensitive_payloads_are_blanked_once_sent_and_old_rows_purged() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let reset = fleetdesk_events::identity::PasswordResetRequested {
        user_id: "u1".into(),
        email: "a@example.com".into(),
        name: "A".into(),
        token: "secret-token-value".into(),
        expires_at: Utc::now(),
    };
    let env = rig
        .db
        .transaction(move |c| {
            let origin = Origin::new(Some("t".into()), "anonymous", Utc::now());
            let a = emit(c, &origin, &reset)?;
            Ok::<_, StoreError>(a)
        })
        .await
        .unwrap();
    let id = env.id.to_string();
    let i = id.clone();
    let (_, before) = rig
        .db
        .run(move |c| outbox::attempts(c, &i).map_err(StoreError::from))
        .await
        .unwrap();
    assert!(before.contains("secret-token-value"));
    rig.relay().drain().await.unwrap();
    let i = id.clone();
    let (attempts, after) = rig
        .db
        .run(move |c| outbox::attempts(c, &i).map_err(StoreError::from))
        .await
        .unwrap();
    assert_eq!(attempts, 1);
    assert_eq!(after, "", "the token stayed in the outbox after sending");
    let purged = rig
        .db
        .run(|c| {
            outbox::purge_sent(c, Utc::now().naive_utc() + chrono::Duration::seconds(1))
                .map_err(StoreError::from)
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
}

// The claim is parsed once per connection (`Prepared`), but planned on every run with the
// outbox's size at the time: a generic plan made while the table was nearly empty scanned the
// whole table once it had grown. The mark is not kept at all, for the same reason. This fails
// if a diesel upgrade stops honouring the wrapper or PostgreSQL starts reusing a generic plan.
#[tokio::test]
async fn the_relays_claims_are_parsed_once_and_planned_every_time_on_postgres() {
    use fleetdesk_store::diesel::sql_types::{BigInt, Text};
    use fleetdesk_store::diesel::{QueryableByName, RunQueryDsl};

    let rig = Rig::new(Kind::Local, false).await.unwrap();
    if rig.db.backend() != fleetdesk_store::Backend::Postgres {
        return; // SQLite keeps no plans on a server; nothing to check.
    }
    for i in 0..8 {
        rig.write(&format!("p{i}"), i, false).await;
    }
    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = Text)]
        statement: String,
        #[diesel(sql_type = BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = BigInt)]
        custom_plans: i64,
    }
    // Every step on one connection, whose prepared statements PostgreSQL lists. More runs
    // than the five after which PostgreSQL would otherwise settle on a generic plan.
    let kept = rig
        .db
        .run(|c| {
            let now = Utc::now().naive_utc();
            let lease = now + chrono::Duration::seconds(30);
            for _ in 0..8 {
                let rows = outbox::claim(c, "relay-1", now, lease, 1)?;
                assert_eq!(rows.len(), 1);
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                assert_eq!(outbox::mark_sent(c, "relay-1", &seqs, now)?, 1);
            }
            fleetdesk_store::diesel::sql_query(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
            )
            .load::<Kept>(c)
            .map_err(StoreError::from)
        })
        .await
        .unwrap();
    let claims: Vec<&Kept> = kept
        .iter()
        .filter(|k| k.statement.starts_with("WITH head AS"))
        .collect();
    assert_eq!(claims.len(), 1, "the claim is kept once");
    assert_eq!(claims[0].generic_plans, 0, "the claim ran a generic plan");
    assert_eq!(claims[0].custom_plans, 8);
    assert!(
        !kept
            .iter()
            .any(|k| k.statement.starts_with("UPDATE \"outbox\" SET \"payload\"")),
        "the mark is kept prepared"
    );
    assert_eq!(rig.unsent().await, 0);
}

/// A bus that takes every message and records how many each publish carried.
struct Batches(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

impl fleetdesk_events::Bus for Batches {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn publish<'a>(
        &'a self,
        batch: &'a [fleetdesk_events::Message],
    ) -> fleetdesk_events::bus::BoxFuture<'a, Vec<Result<(), fleetdesk_events::BusError>>> {
        self.0.lock().unwrap().push(batch.len());
        Box::pin(async move { batch.iter().map(|_| Ok(())).collect() })
    }

    fn subscribe(
        &self,
        _: fleetdesk_events::Subscription,
        _: std::sync::Arc<dyn fleetdesk_events::bus::Deliver>,
    ) -> fleetdesk_events::bus::BoxFuture<
        '_,
        Result<fleetdesk_events::SubscriptionHandle, fleetdesk_events::BusError>,
    > {
        Box::pin(async { Err(fleetdesk_events::BusError::Other("publish only".into())) })
    }

    fn check(
        &self,
    ) -> fleetdesk_events::bus::BoxFuture<'_, Result<(), fleetdesk_events::BusError>> {
        Box::pin(async { Ok(()) })
    }
}

// The first event after a quiet spell goes at once; events committed while the relay lingers
// after it go together in the next round. Without the linger each write wakes the relay and
// goes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_outbox_is_published_in_rounds_that_gather_its_rows() {
    let rig = Rig::new(Kind::Local, false).await.unwrap();
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let options = fleetdesk_events::RelayOptions {
        linger: std::time::Duration::from_secs(2),
        ..Rig::relay_options()
    };
    let _relay = fleetdesk_events::Relay::new(
        "test",
        rig.db.clone(),
        std::sync::Arc::new(Batches(batches.clone())),
    )
    .with_options(options)
    .spawn();
    let started = std::time::Instant::now();
    rig.write("a", 1, false).await;
    eventually(10, "the first event", || async {
        !batches.lock().unwrap().is_empty()
    })
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the first event waited for the linger"
    );
    for n in 2..=4 {
        rig.write("a", n, false).await;
    }
    eventually(10, "the other events", || async { rig.unsent().await == 0 }).await;
    assert_eq!(*batches.lock().unwrap(), vec![1, 3]);
}
