//! Events from commit to consumer: throughput and delay. Run through `bench/events.sh`.
//!
//! A writer commits a domain row and its outbox event in one transaction; the relay publishes
//! to the bus; an idempotent consumer records the event id in its own database. The delay of
//! an event is the consumer's clock minus the event's `occurredAt` (taken just before commit).
//!
//! Environment: `BENCH_AMQP_URL` (default amqp://guest:guest@127.0.0.1:5672/%2f; `local` for
//! the in-process bus), `BENCH_DATABASE_URL` (default a SQLite file in /tmp),
//! `BENCH_BURST` (events in the throughput run, 5000), `BENCH_RATE` (events/s in the steady
//! run, 500), `BENCH_SECONDS` (length of the steady run, 10).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use fleetdesk_events::{
    AmqpBus, AmqpConfig, Bus, Consumer, Envelope, Event, LocalBus, Origin, Relay, Subject,
    Subscription, emit,
};
use fleetdesk_store::{Db, DbConn, Migrations, PoolOptions, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
struct Tick {
    n: u64,
}

impl Event for Tick {
    const TYPE: &'static str = "bench.tick";
    const SOURCE: &'static str = "bench";
    const DESCRIPTION: &'static str = "A benchmark event.";
    fn aggregate(&self) -> String {
        format!("tick:{}", self.n % 64)
    }
    fn subject(&self) -> Subject {
        Subject {
            entity_type: "tick",
            entity_id: self.n.to_string(),
            summary: String::new(),
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open(url: &str) -> Db {
    Db::connect(
        "bench",
        url,
        &Migrations::PLATFORM,
        PoolOptions {
            max_size: 8,
            acquire_timeout: Duration::from_secs(30),
            ..PoolOptions::default()
        },
    )
    .unwrap()
}

fn database_url(name: &str) -> (String, Option<std::path::PathBuf>) {
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(server) => {
            let url = fleetdesk_store::ensure_database(&server, name).unwrap();
            (url, None)
        }
        Err(_) => {
            let path = std::env::temp_dir().join(format!("{name}-{}.db", uuid::Uuid::now_v7()));
            (format!("sqlite:{}", path.display()), Some(path))
        }
    }
}

async fn write(db: &Db, n: u64) {
    db.transaction(move |c: &mut DbConn| {
        let origin = Origin::new(None, "bench", Utc::now());
        emit(c, &origin, &Tick { n }).map_err(StoreError::from)
    })
    .await
    .unwrap();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let amqp = std::env::var("BENCH_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let burst: u64 = env_or("BENCH_BURST", 5000);
    let rate: u64 = env_or("BENCH_RATE", 500);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let tag = uuid::Uuid::now_v7().simple().to_string();

    let (producer_url, producer_file) = database_url("fleetdesk_bench_producer");
    let (consumer_url, consumer_file) = database_url("fleetdesk_bench_consumer");
    let producer = open(&producer_url);
    let consumer_db = open(&consumer_url);
    let (bus, amqp_bus): (Arc<dyn Bus>, Option<Arc<AmqpBus>>) = if amqp == "local" {
        let (url, _) = database_url("fleetdesk_bench_bus");
        (Arc::new(LocalBus::new(open(&url))), None)
    } else {
        let mut config = AmqpConfig::new(amqp.clone(), "bench");
        config.exchange = format!("bench.{tag}");
        let b = Arc::new(AmqpBus::new(config));
        (b.clone(), Some(b))
    };
    let sub = Subscription::new(format!("bench{}", &tag[24..]), &["bench.#"]);

    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let d = delays.clone();
    let handler = move |_: &mut DbConn, e: &Envelope| {
        let ms = (Utc::now() - e.occurred_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        d.lock().unwrap().push(ms);
        Ok(())
    };
    let consumer = Consumer::new("bench", consumer_db.clone(), handler);
    let handle = bus.subscribe(sub.clone(), consumer).await.unwrap();
    let relay = Relay::new("bench", producer.clone(), bus.clone()).spawn();

    let wait_for = |want: usize| {
        let delays = delays.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while delays.lock().unwrap().len() < want {
                assert!(Instant::now() < deadline, "events did not arrive");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };

    // Warm-up.
    for n in 0..100 {
        write(&producer, n).await;
    }
    wait_for(100).await;
    delays.lock().unwrap().clear();

    // Burst: four writers as fast as they can.
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let db = producer.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..burst / 4 {
                write(&db, 1_000_000 + w * burst + i).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let written = started.elapsed();
    let total = (burst / 4 * 4) as usize;
    wait_for(total).await;
    let delivered = started.elapsed();
    let mut burst_delays = std::mem::take(&mut *delays.lock().unwrap());
    burst_delays.sort_by(f64::total_cmp);

    // Steady load.
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let count = rate * seconds;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let steady_start = Instant::now();
    for n in 0..count {
        tick.tick().await;
        let db = producer.clone();
        tokio::spawn(async move { write(&db, 10_000_000 + n).await });
    }
    wait_for(count as usize).await;
    let steady_elapsed = steady_start.elapsed();
    let mut steady = std::mem::take(&mut *delays.lock().unwrap());
    steady.sort_by(f64::total_cmp);

    let backend = if producer_url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let bus_name = bus.kind();
    println!();
    println!("Fleetdesk events: commit -> relay -> {bus_name} -> idempotent consumer ({backend})");
    println!();
    println!("| run | events | events/s | p50 delay ms | p99 delay ms | max delay ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| burst (4 writers; writes took {:.2} s) | {total} | {:.0} | {:.1} | {:.1} | {:.1} |",
        written.as_secs_f64(),
        total as f64 / delivered.as_secs_f64(),
        percentile(&burst_delays, 0.5),
        percentile(&burst_delays, 0.99),
        burst_delays.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "| steady {rate}/s for {seconds} s | {count} | {:.0} | {:.1} | {:.1} | {:.1} |",
        count as f64 / steady_elapsed.as_secs_f64(),
        percentile(&steady, 0.5),
        percentile(&steady, 0.99),
        steady.last().copied().unwrap_or(f64::NAN),
    );
    println!();

    drop(relay);
    drop(handle);
    if let Some(b) = amqp_bus {
        let _ = b.delete(&sub).await;
        let _ = b.delete_exchange().await;
    }
    for f in [producer_file, consumer_file].into_iter().flatten() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
        }
    }
}
