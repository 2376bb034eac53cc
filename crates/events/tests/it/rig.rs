//! A test "service": a database with a `things` table whose writes emit `test.pinged`, a
//! consumer writing `effects`, a relay, and a bus (RabbitMQ, optionally behind a proxy the test
//! can cut, or the in-process bus).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use fleetdesk_events::bus::BoxFuture;
use fleetdesk_events::{
    AmqpBus, AmqpConfig, Bus, BusError, Consumer, Envelope, Event, HandlerError, Incoming,
    LocalBus, Message, Origin, Relay, RelayOptions, Subject, Subscription, SubscriptionHandle,
    emit,
};
use fleetdesk_store::diesel::connection::SimpleConnection;
use fleetdesk_store::diesel::prelude::*;
use fleetdesk_store::diesel::sql_types::{BigInt, Text};
use fleetdesk_store::{Db, DbConn, Migrations, PoolOptions, StoreError};
use fleetdesk_testkit::{TcpProxy, TestDb, amqp_server};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pinged {
    pub key: String,
    pub n: u32,
    pub poison: bool,
}

impl Event for Pinged {
    const TYPE: &'static str = "test.pinged";
    const SOURCE: &'static str = "test";
    const DESCRIPTION: &'static str = "A test event.";
    fn aggregate(&self) -> String {
        format!("thing:{}", self.key)
    }
    fn subject(&self) -> Subject {
        Subject {
            entity_type: "thing",
            entity_id: self.key.clone(),
            summary: format!("ping {}", self.n),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rabbit,
    Local,
}

/// What the handler saw, in order: (key, n, attempt-independent).
pub type Seen = Arc<Mutex<Vec<(String, u32)>>>;

pub struct Rig {
    pub db: Db,
    _db: TestDb,
    _bus_db: Option<TestDb>,
    pub bus: Arc<dyn Bus>,
    pub amqp: Option<Arc<AmqpBus>>,
    pub local: Option<LocalBus>,
    pub sub: Subscription,
    pub proxy: Option<TcpProxy>,
    pub seen: Seen,
    /// Event ids whose first attempt fails after writing its effect.
    pub fail_once: Arc<Mutex<Vec<String>>>,
}

pub fn connect(tdb: &TestDb) -> Db {
    Db::connect(
        "test",
        &tdb.url,
        &Migrations::PLATFORM,
        PoolOptions {
            max_size: 8,
            acquire_timeout: Duration::from_secs(10),
            ..PoolOptions::default()
        },
    )
    .unwrap()
}

impl Rig {
    /// `None` when the kind needs RabbitMQ and none is configured (outside CI only).
    pub async fn new(kind: Kind, proxied: bool) -> Option<Rig> {
        fleetdesk_testkit::install_crypto();
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let tdb = TestDb::migrated(&Migrations::PLATFORM).unwrap();
        let db = connect(&tdb);
        db.run(|c| {
            c.batch_execute(
                "CREATE TABLE things (id TEXT NOT NULL, n BIGINT NOT NULL); \
                 CREATE TABLE effects (event_id TEXT NOT NULL, thing TEXT NOT NULL, n BIGINT NOT NULL);",
            )
            .map_err(StoreError::from)
        })
        .await
        .unwrap();
        let sub = Subscription::new(format!("t{}", &tag[20..]), &["test.#"])
            .with_retry_delays(vec![Duration::from_millis(200), Duration::from_millis(400)]);
        let (bus, amqp, local, bus_db, proxy): (Arc<dyn Bus>, _, _, _, _) = match kind {
            Kind::Rabbit => {
                let Some(url) = amqp_server() else {
                    eprintln!("FLEETDESK_TEST_AMQP_URL is not set: RabbitMQ variant not run here");
                    return None;
                };
                let (url, proxy) = if proxied {
                    let parsed = url::Url::parse(&url).unwrap();
                    let upstream = format!(
                        "{}:{}",
                        parsed.host_str().unwrap(),
                        parsed.port().unwrap_or(5672)
                    );
                    let proxy = TcpProxy::start(&upstream).await.unwrap();
                    (proxy.url_for(&url), Some(proxy))
                } else {
                    (url, None)
                };
                let mut config = AmqpConfig::new(url, "events-test");
                config.exchange = format!("fdtest.{tag}");
                config.connect_timeout = Duration::from_secs(2);
                let amqp = Arc::new(AmqpBus::new(config));
                (amqp.clone(), Some(amqp), None, None, proxy)
            }
            Kind::Local => {
                let bus_tdb = TestDb::migrated(&Migrations::PLATFORM).unwrap();
                let local = LocalBus::new(connect(&bus_tdb));
                (
                    Arc::new(local.clone()),
                    None,
                    Some(local),
                    Some(bus_tdb),
                    None,
                )
            }
        };
        Some(Rig {
            db,
            _db: tdb,
            _bus_db: bus_db,
            bus,
            amqp,
            local,
            sub,
            proxy,
            seen: Arc::default(),
            fail_once: Arc::default(),
        })
    }

    pub fn relay_options() -> RelayOptions {
        RelayOptions {
            batch: 100,
            lease: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(3),
            poll: Duration::from_millis(500),
            linger: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            retention: Duration::from_secs(3600),
        }
    }

    pub fn relay(&self) -> Relay {
        Relay::new("test", self.db.clone(), self.bus.clone()).with_options(Self::relay_options())
    }

    /// Starts the consumer writing `effects`.
    pub async fn consume(&self) -> SubscriptionHandle {
        let seen = self.seen.clone();
        let fail_once = self.fail_once.clone();
        let handler = move |conn: &mut DbConn, env: &Envelope| -> Result<(), HandlerError> {
            let p: Pinged = env
                .decode()
                .map_err(|e| HandlerError::Permanent(e.to_string()))?;
            seen.lock().unwrap().push((p.key.clone(), p.n));
            conn.batch_execute(&format!(
                "INSERT INTO effects (event_id, thing, n) VALUES ('{}', '{}', {})",
                env.id, p.key, p.n
            ))?;
            if p.poison {
                return Err(HandlerError::Transient("poisoned".into()));
            }
            let id = env.id.to_string();
            let mut once = fail_once.lock().unwrap();
            if let Some(i) = once.iter().position(|x| *x == id) {
                once.remove(i);
                return Err(HandlerError::Transient("crashed after writing".into()));
            }
            Ok(())
        };
        let consumer = Consumer::new(self.sub.name.clone(), self.db.clone(), handler);
        self.bus
            .subscribe(self.sub.clone(), consumer)
            .await
            .unwrap()
    }

    /// One domain write and its event, in one transaction.
    pub async fn write(&self, key: &str, n: u32, poison: bool) -> Envelope {
        let key = key.to_owned();
        self.db
            .transaction(move |c| {
                c.batch_execute(&format!("INSERT INTO things (id, n) VALUES ('{key}', {n})"))?;
                let origin = Origin::new(Some("tenant-1".into()), "user-1", Utc::now()).traced(
                    Some(format!(
                        "00-{}-{}-01",
                        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
                    )),
                );
                emit(c, &origin, &Pinged { key, n, poison }).map_err(StoreError::from)
            })
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        self.db
            .run(move |c| {
                diesel::sql_query(sql)
                    .get_result::<N>(c)
                    .map(|r| r.n)
                    .map_err(StoreError::from)
            })
            .await
            .unwrap()
    }

    /// Effects per event id that has more than one.
    pub async fn doubled(&self) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = Text)]
            event_id: String,
        }
        self.db
            .run(|c| {
                diesel::sql_query(
                    "SELECT event_id FROM effects GROUP BY event_id HAVING COUNT(*) > 1",
                )
                .load::<Id>(c)
                .map(|v| v.into_iter().map(|i| i.event_id).collect())
                .map_err(StoreError::from)
            })
            .await
            .unwrap()
    }

    pub async fn effects(&self) -> i64 {
        self.count("SELECT COUNT(*) AS n FROM effects").await
    }

    pub async fn unsent(&self) -> i64 {
        self.count("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            .await
    }

    pub async fn dead(&self) -> Vec<(Incoming, String)> {
        if let Some(amqp) = &self.amqp {
            return amqp.take_dead(&self.sub).await.unwrap();
        }
        self.local
            .as_ref()
            .unwrap()
            .dead(&self.sub.name)
            .await
            .unwrap()
    }

    pub async fn cleanup(&self) {
        if let Some(amqp) = &self.amqp {
            if let Some(p) = &self.proxy {
                p.heal();
            }
            let _ = amqp.delete(&self.sub).await;
            let _ = amqp.delete_exchange().await;
        }
    }
}

/// Waits up to `secs` for `check` to hold.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bus that counts how often each message id is published, over a real bus.
pub struct Counting {
    pub inner: Arc<dyn Bus>,
    pub published: Mutex<std::collections::HashMap<String, u32>>,
}

impl Bus for Counting {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn publish<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Vec<Result<(), BusError>>> {
        Box::pin(async move {
            {
                let mut p = self.published.lock().unwrap();
                for m in batch {
                    *p.entry(m.id.clone()).or_default() += 1;
                }
            }
            self.inner.publish(batch).await
        })
    }
    fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn fleetdesk_events::Deliver>,
    ) -> BoxFuture<'_, Result<SubscriptionHandle, BusError>> {
        self.inner.subscribe(subscription, handler)
    }
    fn check(&self) -> BoxFuture<'_, Result<(), BusError>> {
        self.inner.check()
    }
}

/// The value of a counter in the Prometheus rendering, 0 when absent.
pub fn counter(name: &str, queue: &str) -> f64 {
    let text = fleetdesk_telemetry::render_metrics();
    let prefix = format!("{name}{{queue=\"{queue}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
