//! Every consuming service's queue and the routing keys it binds (DESIGN.md §6), in one place.
//!
//! Each service consumes through its entry here, and every publisher declares all of them
//! when it connects to RabbitMQ ([`crate::BusConfig::connect`]). On a broker that has never
//! seen a consumer's queue, an event published before that consumer first starts would
//! otherwise reach no queue and be lost: docker-compose and Kubernetes start identity and
//! tickets together, and identity publishes its first administrator within a second.
//! Declaring is idempotent, so the services may start in any order.

use crate::bus::Subscription;

/// Identity's audit log: every event.
pub fn identity(queue_prefix: &str) -> Subscription {
    Subscription::new(format!("{queue_prefix}identity"), &["#"])
}

/// Tickets' read model of identity's users.
pub fn tickets(queue_prefix: &str) -> Subscription {
    Subscription::new(format!("{queue_prefix}tickets"), &["user.*"])
}

/// The vault's read model of tickets' companies.
pub fn vault(queue_prefix: &str) -> Subscription {
    Subscription::new(format!("{queue_prefix}vault"), &["company.*"])
}

/// Every consumer's subscription.
pub fn all(queue_prefix: &str) -> Vec<Subscription> {
    vec![
        identity(queue_prefix),
        tickets(queue_prefix),
        vault(queue_prefix),
    ]
}
