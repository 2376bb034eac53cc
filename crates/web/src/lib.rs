//! Actix glue shared by every Fleetdesk service.
//!
//! - [`error`]: `ApiError`, the one error path, answered as RFC 9457 problem+json.
//! - [`context`]: request id and trace id per request, its span, access log and metrics.
//! - [`extract`]: JSON and query extractors whose errors name the offending field.
//! - [`caller`]: the verified caller of a request and `Require<permission>`.
//! - [`pagination`]: `page`/`limit` checking and the list envelope.
//! - [`version`]: `ETag`/`If-Match` for resources that carry a version.
//! - [`health`], [`docs`]: health, readiness, metrics, OpenAPI and the offline docs page.
//! - [`config`]: typed configuration from the environment and an optional TOML file.

pub mod address;
pub mod caller;
pub mod config;
pub mod context;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod pagination;
pub mod service;
pub mod version;

pub use caller::{Caller, Require};
pub use error::{ApiError, FieldError, FieldErrors};
pub use extract::{Json, Query};
pub use pagination::{Page, PageInfo, Paginated};

/// The version every service reports in `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
