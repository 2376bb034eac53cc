//! RabbitMQ through lapin: publisher confirms, persistent messages, the consuming topology
//! (queue, TTL retry queues dead-lettering back, parking queue), and reconnection.
//!
//! Topology for a subscription named `svc`:
//! - exchange `fleetdesk.events` (topic, durable), shared by every service;
//! - `svc.events` (durable), bound to the subscription's routing keys;
//! - `svc.retry.<n>` (durable, `x-message-ttl` = the n-th delay, dead-lettering through the
//!   default exchange back to `svc.events`): a failed message is republished here with its
//!   attempt count, so it returns after the delay without holding up the messages behind it;
//! - `svc.dead` (durable): where a message lands after its last attempt, or at once when it
//!   can never be handled. It stays there for people to inspect.
//!
//! Every broken connection is dropped and opened again on next use (publishing) or after a
//! doubling pause of up to 10 s (consuming), with the topology declared again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::Mutex;

use crate::bus::{
    BoxFuture, Bus, BusError, Deliver, Incoming, Message, Outcome, Subscription, SubscriptionHandle,
};

const ATTEMPT: &str = "x-fleetdesk-attempt";
const LAST_ERROR: &str = "x-fleetdesk-error";
const TRACEPARENT: &str = "traceparent";

/// Where the broker is and what the exchange is called.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:5672/%2f` (add `?heartbeat=10` to notice dead peers sooner).
    pub url: String,
    /// The topic exchange (`fleetdesk.events`).
    pub exchange: String,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Shown in the broker's connection list.
    pub connection_name: String,
    /// Queues (with their bindings, retry and dead-letter queues) declared whenever the
    /// publisher connects, so that what is published before their consumers first start
    /// waits for them ([`crate::topology`]).
    pub declare: Vec<Subscription>,
}

impl AmqpConfig {
    /// The default exchange at `url`.
    pub fn new(url: impl Into<String>, connection_name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: "fleetdesk.events".into(),
            connect_timeout: Duration::from_secs(5),
            connection_name: connection_name.into(),
            declare: Vec::new(),
        }
    }
}

struct Link {
    _connection: Connection,
    channel: Channel,
}

/// The RabbitMQ bus.
pub struct AmqpBus {
    config: Arc<AmqpConfig>,
    publisher: Mutex<Option<Link>>,
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

async fn open(config: &AmqpConfig, purpose: &str) -> Result<Connection, BusError> {
    let props = ConnectionProperties::default()
        .with_connection_name(format!("{} {purpose}", config.connection_name).into());
    match tokio::time::timeout(
        config.connect_timeout,
        Connection::connect(&config.url, props),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(BusError::Unavailable(
            "timed out connecting to RabbitMQ".into(),
        )),
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), BusError> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)
}

fn retry_queue(sub: &Subscription, attempt: usize) -> String {
    format!("{}.retry.{attempt}", sub.name)
}

async fn declare_topology(
    channel: &Channel,
    config: &AmqpConfig,
    sub: &Subscription,
) -> Result<(), BusError> {
    declare_exchange(channel, &config.exchange).await?;
    let queue = sub.queue();
    channel
        .queue_declare(queue.as_str().into(), durable(), FieldTable::default())
        .await
        .map_err(unavailable)?;
    for pattern in &sub.bindings {
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
    }
    for (i, delay) in sub.retry_delays.iter().enumerate() {
        let mut args = FieldTable::default();
        let ttl = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX).max(1);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from("")),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(queue.as_str())),
        );
        channel
            .queue_declare(retry_queue(sub, i + 1).as_str().into(), durable(), args)
            .await
            .map_err(unavailable)?;
    }
    channel
        .queue_declare(
            sub.dead_queue().as_str().into(),
            durable(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

fn header_i64(props: &BasicProperties, name: &str) -> Option<i64> {
    let value = props.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}

/// The attempt number of a delivery (1 when the header is absent).
fn attempt_of(props: &BasicProperties) -> u32 {
    header_i64(props, ATTEMPT)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1)
        .max(1)
}

fn incoming(delivery: &Delivery) -> Incoming {
    let props = &delivery.properties;
    Incoming {
        id: props.message_id().as_ref().map(|s| s.as_str().to_owned()),
        // Retried messages come back with the retry queue's routing key; the event type is
        // kept in the `type` property.
        routing_key: props
            .kind()
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| delivery.routing_key.as_str().to_owned()),
        payload: delivery.data.clone(),
        attempt: attempt_of(props),
    }
}

/// Publishes `data` with `props` to a queue through the default exchange and waits for the
/// broker's confirm.
async fn send_to_queue(
    channel: &Channel,
    queue: &str,
    data: &[u8],
    props: BasicProperties,
) -> Result<(), BusError> {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            data,
            props,
        )
        .await
        .map_err(unavailable)?
        .await
        .map_err(unavailable)?;
    match confirm {
        Confirmation::Nack(_) => Err(BusError::Refused(format!("nack publishing to {queue}"))),
        _ => Ok(()),
    }
}

fn with_headers(props: &BasicProperties, attempt: u32, error: &str) -> BasicProperties {
    let mut headers = props.headers().clone().unwrap_or_default();
    headers.insert(ATTEMPT.into(), AMQPValue::LongLongInt(i64::from(attempt)));
    let error: String = error.chars().take(1000).collect();
    headers.insert(LAST_ERROR.into(), AMQPValue::LongString(error.into()));
    props.clone().with_headers(headers)
}

/// Handles `deliveries` together ([`Deliver::deliver_all`]: one transaction for a
/// [`crate::Consumer`]) and settles each.
async fn settle_all(
    out: &Channel,
    sub: &Subscription,
    handler: &dyn Deliver,
    deliveries: Vec<Delivery>,
) -> Result<(), BusError> {
    let messages: Vec<Incoming> = deliveries.iter().map(incoming).collect();
    let outcomes = handler.deliver_all(&messages).await;
    for ((delivery, message), outcome) in deliveries.into_iter().zip(&messages).zip(outcomes) {
        settle(out, sub, delivery, message, outcome).await?;
    }
    Ok(())
}

async fn settle(
    out: &Channel,
    sub: &Subscription,
    delivery: Delivery,
    message: &Incoming,
    outcome: Outcome,
) -> Result<(), BusError> {
    let queue = sub.queue();
    match outcome {
        Outcome::Done => {
            metrics::counter!("events_consumed_total", "queue" => queue).increment(1);
        }
        Outcome::Retry(error) if message.attempt < sub.max_attempts() => {
            let target = retry_queue(sub, message.attempt as usize);
            let props = with_headers(&delivery.properties, message.attempt + 1, &error);
            send_to_queue(out, &target, &delivery.data, props).await?;
            metrics::counter!("events_retried_total", "queue" => queue).increment(1);
        }
        Outcome::Retry(error) | Outcome::Reject(error) => {
            let props = with_headers(&delivery.properties, message.attempt, &error);
            send_to_queue(out, &sub.dead_queue(), &delivery.data, props).await?;
            tracing::error!(queue = %queue, id = ?message.id, routing_key = %message.routing_key, attempt = message.attempt, error = %error, "event parked in the dead-letter queue");
            metrics::counter!("events_dead_lettered_total", "queue" => queue).increment(1);
        }
    }
    // Acknowledged only once the copy (if any) is safely in its queue: a crash before this
    // point redelivers the message, and the consumer's idempotency absorbs it.
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn consume_session(
    config: &AmqpConfig,
    sub: &Subscription,
    handler: &dyn Deliver,
    ready: &tokio::sync::watch::Sender<bool>,
) -> Result<(), BusError> {
    let connection = open(config, &format!("consumer {}", sub.name)).await?;
    let channel = connection.create_channel().await.map_err(unavailable)?;
    declare_topology(&channel, config, sub).await?;
    channel
        .basic_qos(sub.prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(unavailable)?;
    let out = connection.create_channel().await.map_err(unavailable)?;
    out.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(unavailable)?;
    let mut consumer = channel
        .basic_consume(
            sub.queue().as_str().into(),
            format!("{}-{}", config.connection_name, uuid::Uuid::now_v7())
                .as_str()
                .into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    ready.send_replace(true);
    tracing::info!(queue = %sub.queue(), "consuming");
    let most = usize::from(sub.prefetch.max(1));
    while let Some(delivery) = consumer.next().await {
        // What else has already arrived (up to the prefetch) is handled with it.
        let mut deliveries = vec![delivery.map_err(unavailable)?];
        while deliveries.len() < most {
            match consumer.next().now_or_never() {
                Some(Some(delivery)) => deliveries.push(delivery.map_err(unavailable)?),
                _ => break,
            }
        }
        settle_all(&out, sub, handler, deliveries).await?;
    }
    Err(BusError::Unavailable("the consumer was cancelled".into()))
}

impl AmqpBus {
    /// A bus for `config`. Nothing connects until first use.
    pub fn new(config: AmqpConfig) -> Self {
        Self {
            config: Arc::new(config),
            publisher: Mutex::new(None),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    async fn link<'a>(&self, guard: &'a mut Option<Link>) -> Result<&'a Link, BusError> {
        let healthy = guard
            .as_ref()
            .is_some_and(|l| l.channel.status().connected());
        if !healthy {
            *guard = None;
            let connection = open(&self.config, "publisher").await?;
            let channel = connection.create_channel().await.map_err(unavailable)?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(unavailable)?;
            declare_exchange(&channel, &self.config.exchange).await?;
            // On a channel of its own: a queue declared elsewhere with other arguments closes
            // that channel, and must not stop publishing.
            if !self.config.declare.is_empty() {
                let declared = match connection.create_channel().await {
                    Ok(ch) => {
                        let mut result = Ok(());
                        for sub in &self.config.declare {
                            result = declare_topology(&ch, &self.config, sub).await;
                            if result.is_err() {
                                break;
                            }
                        }
                        let _ = ch.close(200, "declared".into()).await;
                        result
                    }
                    Err(e) => Err(unavailable(e)),
                };
                if let Err(e) = declared {
                    tracing::warn!(error = %e, "could not declare the consumers' queues; events published before a consumer first starts may be lost");
                }
            }
            tracing::info!(exchange = %self.config.exchange, "connected to RabbitMQ for publishing");
            *guard = Some(Link {
                _connection: connection,
                channel,
            });
        }
        guard
            .as_ref()
            .ok_or_else(|| BusError::Other("no publisher link".into()))
    }

    async fn publish_batch(&self, batch: &[Message]) -> Vec<Result<(), BusError>> {
        let mut guard = self.publisher.lock().await;
        let link = match self.link(&mut guard).await {
            Ok(link) => link,
            Err(e) => return vec![Err(e); batch.len()],
        };
        let mut broken = false;
        let mut pending = Vec::with_capacity(batch.len());
        for m in batch {
            let mut headers = FieldTable::default();
            if let Some(tp) = &m.traceparent {
                headers.insert(
                    TRACEPARENT.into(),
                    AMQPValue::LongString(tp.as_str().into()),
                );
            }
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(m.id.as_str().into())
                .with_type(ShortString::from(m.routing_key.as_str()))
                .with_headers(headers);
            let sent = if broken {
                Err(BusError::Unavailable(
                    "connection lost earlier in the batch".into(),
                ))
            } else {
                link.channel
                    .basic_publish(
                        self.config.exchange.as_str().into(),
                        m.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        &m.payload,
                        props,
                    )
                    .await
                    .map_err(unavailable)
            };
            if sent.is_err() {
                broken = true;
            }
            pending.push(sent);
        }
        let mut results = Vec::with_capacity(batch.len());
        for p in pending {
            results.push(match p {
                Ok(confirm) => match confirm.await {
                    Ok(Confirmation::Nack(_)) => {
                        Err(BusError::Refused("the broker refused the message".into()))
                    }
                    Ok(_) => Ok(()),
                    Err(e) => {
                        broken = true;
                        Err(unavailable(e))
                    }
                },
                Err(e) => Err(e),
            });
        }
        if broken {
            *guard = None;
        }
        results
    }

    /// Deletes a subscription's queues (tests and decommissioning).
    pub async fn delete(&self, sub: &Subscription) -> Result<(), BusError> {
        let connection = open(&self.config, "admin").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let mut queues = vec![sub.queue(), sub.dead_queue()];
        queues.extend((1..=sub.retry_delays.len()).map(|i| retry_queue(sub, i)));
        for q in queues {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Deletes the exchange (tests).
    pub async fn delete_exchange(&self) -> Result<(), BusError> {
        let connection = open(&self.config, "admin").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        channel
            .exchange_delete(
                self.config.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .map_err(unavailable)
    }

    /// Takes every message out of `<name>.dead`, with the error recorded on each.
    pub async fn take_dead(&self, sub: &Subscription) -> Result<Vec<(Incoming, String)>, BusError> {
        let connection = open(&self.config, "admin").await?;
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(got) = channel
            .basic_get(
                sub.dead_queue().as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .map_err(unavailable)?
        {
            let error = got
                .delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| match h.inner().get(LAST_ERROR) {
                    Some(AMQPValue::LongString(s)) => {
                        Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            out.push((incoming(&got.delivery), error));
        }
        Ok(out)
    }
}

impl Bus for AmqpBus {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn publish<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Vec<Result<(), BusError>>> {
        Box::pin(self.publish_batch(batch))
    }

    fn subscribe(
        &self,
        subscription: Subscription,
        handler: Arc<dyn Deliver>,
    ) -> BoxFuture<'_, Result<SubscriptionHandle, BusError>> {
        let config = self.config.clone();
        Box::pin(async move {
            let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move {
                let mut backoff = Duration::from_millis(100);
                loop {
                    let started = tokio::time::Instant::now();
                    if let Err(e) =
                        consume_session(&config, &subscription, handler.as_ref(), &ready_tx).await
                    {
                        tracing::warn!(queue = %subscription.queue(), error = %e, "consumer disconnected; reconnecting");
                    }
                    if started.elapsed() > Duration::from_secs(30) {
                        backoff = Duration::from_millis(100);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            });
            // Wait (briefly) for the first session, so queues exist when this returns while
            // the broker is up; when it is down the task keeps trying on its own.
            let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx.wait_for(|r| *r)).await;
            Ok(SubscriptionHandle { task })
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut guard = self.publisher.lock().await;
            self.link(&mut guard).await.map(|_| ())
        })
    }
}
