//! Fault-proof tests of the event backbone, on RabbitMQ (when FLEETDESK_TEST_AMQP_URL is set;
//! required in CI) and on the in-process bus, over SQLite or PostgreSQL
//! (FLEETDESK_TEST_DATABASE_URL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod outbox;
mod rig;
mod topology;
