//! The bus abstraction shared by RabbitMQ and the in-process bus.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, so [`Bus`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message to publish: one outbox row.
#[derive(Debug, Clone)]
pub struct Message {
    /// Event id, used as the message id.
    pub id: String,
    /// Routing key (the event type).
    pub routing_key: String,
    /// The serialised envelope.
    pub payload: Vec<u8>,
    /// Trace context, also sent as the `traceparent` header.
    pub traceparent: Option<String>,
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Message id (the event id), if the publisher set one.
    pub id: Option<String>,
    /// Routing key.
    pub routing_key: String,
    /// Body.
    pub payload: Vec<u8>,
    /// 1 for the first delivery, then one more per retry.
    pub attempt: u32,
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (or already handled before): acknowledge.
    Done,
    /// Failed; its effects were rolled back. Retry later, then park it after the last try.
    Retry(String),
    /// Can never succeed (not an event, unknown version): park it now.
    Reject(String),
}

/// Runs one delivery; implemented by [`crate::Consumer`].
pub trait Deliver: Send + Sync + 'static {
    /// Handles `message` and says what to do with it.
    fn deliver<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome>;

    /// Handles `messages`, in order, and says what to do with each (in the same order). One by
    /// one unless the implementation can do better ([`crate::Consumer`] handles them in one
    /// transaction).
    fn deliver_all<'a>(&'a self, messages: &'a [Incoming]) -> BoxFuture<'a, Vec<Outcome>> {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(messages.len());
            for message in messages {
                outcomes.push(self.deliver(message).await);
            }
            outcomes
        })
    }
}

/// A consuming service's queue and what it listens to.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Queue prefix, normally the service name: queues `<name>.events`, `<name>.retry.<n>`
    /// and `<name>.dead`.
    pub name: String,
    /// Routing-key patterns (`user.*`, `#`).
    pub bindings: Vec<String>,
    /// Delay before each retry; a message is tried `retry_delays.len() + 1` times and then
    /// parked in `<name>.dead`.
    pub retry_delays: Vec<Duration>,
    /// Deliveries in flight at once (handled one after another, in order).
    pub prefetch: u16,
}

impl Subscription {
    /// A subscription with the default retry schedule: 1 s, 5 s, 30 s, 2 min, 10 min.
    pub fn new(name: impl Into<String>, bindings: &[&str]) -> Self {
        Self {
            name: name.into(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            retry_delays: [1, 5, 30, 120, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            prefetch: 256,
        }
    }

    /// Replaces the retry schedule.
    pub fn with_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.retry_delays = delays;
        self
    }

    /// How many times a message is tried before it is parked.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.retry_delays.len()).unwrap_or(u32::MAX - 1) + 1
    }

    /// The delay before attempt `attempt + 1`, after attempt `attempt` failed.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.max(1) - 1).ok()?;
        self.retry_delays.get(index).copied()
    }

    /// The main queue.
    pub fn queue(&self) -> String {
        format!("{}.events", self.name)
    }

    /// The parking queue.
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.name)
    }

    /// Whether one of the bindings matches `routing_key`.
    pub fn matches(&self, routing_key: &str) -> bool {
        self.bindings.iter().any(|p| topic_matches(p, routing_key))
    }
}

/// AMQP topic matching: words split on `.`, `*` is exactly one word, `#` zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

/// Why the bus could not do something.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached right now.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the message (negative confirm).
    #[error("message refused by the broker: {0}")]
    Refused(String),
    /// Anything else.
    #[error("message bus error: {0}")]
    Other(String),
}

/// Stops a subscription's consumer task when dropped or on [`SubscriptionHandle::stop`].
#[derive(Debug)]
pub struct SubscriptionHandle {
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl SubscriptionHandle {
    /// Stops consuming. Unacknowledged messages go back to the queue.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for SubscriptionHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A message bus: RabbitMQ ([`crate::AmqpBus`]) or in-process ([`crate::LocalBus`]).
pub trait Bus: Send + Sync + 'static {
    /// `rabbitmq` or `in-process`, for logs and readiness.
    fn kind(&self) -> &'static str;

    /// Publishes a batch in order and waits for the broker to take each message. The answer
    /// has one result per message, in order.
    fn publish<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Vec<Result<(), BusError>>>;

    /// Declares the subscription's queues and starts delivering to `handler` until the handle
    /// is dropped. Reconnects by itself.
    fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Deliver>,
    ) -> BoxFuture<'_, Result<SubscriptionHandle, BusError>>;

    /// Whether the bus can be used now (readiness).
    fn check(&self) -> BoxFuture<'_, Result<(), BusError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_rabbitmq() {
        assert!(topic_matches("#", "user.created"));
        assert!(topic_matches("user.*", "user.created"));
        assert!(!topic_matches("user.*", "user.created.extra"));
        assert!(topic_matches("user.#", "user"));
        assert!(topic_matches("user.#", "user.a.b"));
        assert!(topic_matches("*.created", "role.created"));
        assert!(!topic_matches("*.created", "role.updated"));
        assert!(topic_matches(
            "auth.password_reset_requested",
            "auth.password_reset_requested"
        ));
        assert!(!topic_matches("auth.x", "auth.y"));
        assert!(topic_matches("#.deleted", "a.b.deleted"));
    }

    #[test]
    fn attempts_follow_the_delays() {
        let s = Subscription::new("svc", &["#"])
            .with_retry_delays(vec![Duration::from_millis(10), Duration::from_millis(20)]);
        assert_eq!(s.max_attempts(), 3);
        assert_eq!(s.delay_after(1), Some(Duration::from_millis(10)));
        assert_eq!(s.delay_after(2), Some(Duration::from_millis(20)));
        assert_eq!(s.delay_after(3), None);
        assert_eq!(s.queue(), "svc.events");
        assert_eq!(s.dead_queue(), "svc.dead");
    }
}
