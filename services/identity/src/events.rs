//! Identity's side of the event backbone: where its events come from (the origin of each
//! change), the bus it uses, and the consumers it runs (the audit log).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleetdesk_auth::TokenType;
use fleetdesk_events::{AmqpBus, AmqpConfig, Bus, LocalBus, Origin};
use fleetdesk_store::Db;
use fleetdesk_web::Caller;
use fleetdesk_web::health::Probe;

use crate::{IdentityConfig, SERVICE};

/// The actor of a caller: the user id, or `service:<client>` for service tokens.
pub fn actor(caller: &Caller) -> String {
    match caller.kind {
        TokenType::Service => format!("service:{}", caller.subject),
        _ => caller.subject.clone(),
    }
}

/// The trace context of the request being served, if any.
fn traceparent() -> Option<String> {
    fleetdesk_web::context::current().map(|c| c.traceparent())
}

/// The origin of a change a caller makes. Build it before entering a transaction: the
/// request's trace context is not visible on the blocking thread.
pub fn by(caller: &Caller, now: DateTime<Utc>) -> Origin {
    Origin::new(Some(caller.tenant_id.clone()), actor(caller), now).traced(traceparent())
}

/// The origin of a change with no authenticated caller (login, registration, reset).
pub fn anonymous(tenant_id: Option<&str>, actor: &str, now: DateTime<Utc>) -> Origin {
    Origin::new(tenant_id.map(str::to_owned), actor, now).traced(traceparent())
}

/// Readiness of the bus, for `/health/ready`.
pub struct BusProbe(pub Arc<dyn Bus>);

impl Probe for BusProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move { self.0.check().await.map_err(|e| e.to_string()) })
    }
}

/// The bus the configuration asks for: RabbitMQ when `FLEETDESK_AMQP_URL` is set, else the
/// in-process bus in identity's own database (a standalone identity then still audits its
/// own events).
pub fn bus_from_config(config: &IdentityConfig, db: &Db) -> Arc<dyn Bus> {
    match &config.amqp_url {
        Some(url) => {
            let mut amqp = AmqpConfig::new(url.clone(), SERVICE);
            amqp.exchange = config.amqp_exchange.clone();
            Arc::new(AmqpBus::new(amqp))
        }
        None => Arc::new(LocalBus::new(db.clone())),
    }
}
