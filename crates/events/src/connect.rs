//! Which bus a service uses, from its configuration.

use std::sync::Arc;

use fleetdesk_store::Db;

use crate::{AmqpBus, AmqpConfig, Bus, LocalBus};

/// The bus settings every service reads (`FLEETDESK_AMQP_URL` or `AMQP_URL`,
/// `FLEETDESK_AMQP_EXCHANGE`, `FLEETDESK_AMQP_QUEUE_PREFIX`).
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// RabbitMQ; `None`: the in-process bus in the service's own database.
    pub url: Option<String>,
    /// The topic exchange (default `fleetdesk.events`).
    pub exchange: String,
    /// Put before queue names, so several installations can share one broker.
    pub queue_prefix: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: None,
            exchange: "fleetdesk.events".into(),
            queue_prefix: String::new(),
        }
    }
}

impl BusConfig {
    /// The bus these settings ask for: RabbitMQ when a URL is set, else the in-process bus
    /// in `db` (a standalone service then still consumes its own events).
    pub fn connect(&self, service: &str, db: &Db) -> Arc<dyn Bus> {
        match &self.url {
            Some(url) => {
                let mut amqp = AmqpConfig::new(url.clone(), service);
                amqp.exchange = self.exchange.clone();
                amqp.declare = crate::topology::all(&self.queue_prefix);
                Arc::new(AmqpBus::new(amqp))
            }
            None => Arc::new(LocalBus::new(db.clone())),
        }
    }
}
