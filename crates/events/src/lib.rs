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

/// Implements [`Event`] for a service's event struct: `service_event!("tickets"; Type,
/// "ticket.created", "description", [sensitive,] |e| aggregate, subject)`. Each service's
/// module wraps it in a macro of its own that fills in the source.
macro_rules! service_event {
    ($source:literal; $ty:ident, $name:literal, $desc:literal, |$e:ident| $aggregate:expr, $subject:expr) => {
        service_event!($source; $ty, $name, $desc, false, |$e| $aggregate, $subject);
    };
    ($source:literal; $ty:ident, $name:literal, $desc:literal, $sensitive:literal, |$e:ident| $aggregate:expr, $subject:expr) => {
        impl $crate::envelope::Event for $ty {
            const TYPE: &'static str = $name;
            const SOURCE: &'static str = $source;
            const DESCRIPTION: &'static str = $desc;
            const SENSITIVE: bool = $sensitive;
            fn aggregate(&self) -> String {
                let $e = self;
                $aggregate
            }
            fn subject(&self) -> $crate::envelope::Subject {
                let $e = self;
                $subject
            }
        }
    };
}

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
pub mod topology;
pub mod vault;

pub use amqp::{AmqpBus, AmqpConfig};
pub use bus::{
    Bus, BusError, Deliver, Incoming, Message, Outcome, Subscription, SubscriptionHandle,
};
pub use catalogue::{EventSpec, catalogue};
pub use connect::BusConfig;
pub use consumer::{Consumer, Handler, HandlerError};
pub use emit::{Origin, Outgoing, emit};
pub use envelope::{DecodeError, Envelope, Event, Subject};
pub use local::LocalBus;
pub use relay::{Relay, RelayOptions};
