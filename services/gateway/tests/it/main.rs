//! The gateway over HTTP, in front of a real identity and an echo server standing in for the
//! other services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod edge;
mod forwarding;
mod limits;
mod rig;
mod wire;
