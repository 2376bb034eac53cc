//! Fleetdesk's event backbone (DESIGN.md §6).
//!
//! - [`Envelope`] and the [`Event`] trait; the [`catalogue`] of every event type, from which
//!   proto-docs/asyncapi.yaml is generated.
//! - [`emit`]: writes an event to the outbox inside the caller's transaction.
//! - [`Bus`] with two implementations: [`AmqpBus`] (RabbitMQ through lapin) and [`LocalBus`]
//!   (durable, in-process, for the one-binary mode).
//! - [`Relay`]: publishes the outbox through a bus.
//! - [`Consumer`]: runs a [`Handler`] once per event id, its writes and the id in one
//!   transaction.

pub mod amqp;
pub mod bus;
pub mod catalogue;
pub mod connect;
pub mod consumer;
pub mod emit;
pub mod envelope;
pub mod identity;
pub mod local;
pub mod relay;
pub mod tickets;
pub mod vault;

pub use amqp::{AmqpBus, AmqpConfig};
pub use bus::{
    Bus, BusError, Deliver, Incoming, Message, Outcome, Subscription, SubscriptionHandle,
};
pub use catalogue::{EventSpec, catalogue};
pub use connect::BusConfig;
pub use consumer::{Consumer, Handler, HandlerError};
pub use emit::{Origin, emit};
pub use envelope::{DecodeError, Envelope, Event, Subject};
pub use local::LocalBus;
pub use relay::{Relay, RelayOptions};
