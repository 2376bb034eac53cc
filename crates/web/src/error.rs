//! The one error type handlers return, answered as RFC 9457 `application/problem+json`.
//!
//! Every error has a stable snake_case `code` and one [`ErrorKind`] that fixes its status and
//! title. A 5xx body never carries the cause: the cause is logged with the trace id, and the
//! caller gets the trace id to quote.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use fleetdesk_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::context;

/// The kinds of failure, each with one status and title (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed or invalid input.
    BadRequest,
    /// 401: no token, or a bad one.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: absent, or another tenant's.
    NotFound,
    /// 405: the route does not answer this method.
    MethodNotAllowed,
    /// 408: the client did not send its request in time (the gateway).
    RequestTimeout,
    /// 409: a state or uniqueness conflict.
    Conflict,
    /// 412: `If-Match` does not match the current version.
    PreconditionFailed,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 414: the request target is too long (the gateway).
    UriTooLong,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` reused with another body.
    Unprocessable,
    /// 428: a write that needs `If-Match` came without it.
    PreconditionRequired,
    /// 429: rate-limited or locked out.
    TooManyRequests,
    /// 431: the request's header fields are too large (the gateway).
    HeadersTooLarge,
    /// 500: a fault of ours.
    Internal,
    /// 503: a dependency is down.
    Unavailable,
    /// 502: an upstream answered with something unusable or broke off (the gateway).
    BadGateway,
    /// 504: an upstream did not answer in time (the gateway).
    GatewayTimeout,
}

impl ErrorKind {
    /// The HTTP status and the problem title of this kind.
    pub fn status_and_title(self) -> (StatusCode, &'static str) {
        match self {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "Bad request"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            ErrorKind::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
            ErrorKind::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "Request timeout"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
            ErrorKind::PreconditionFailed => {
                (StatusCode::PRECONDITION_FAILED, "Precondition failed")
            }
            ErrorKind::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Payload too large"),
            ErrorKind::UriTooLong => (StatusCode::URI_TOO_LONG, "URI too long"),
            ErrorKind::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported media type")
            }
            ErrorKind::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable content"),
            ErrorKind::PreconditionRequired => {
                (StatusCode::PRECONDITION_REQUIRED, "Precondition required")
            }
            ErrorKind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            ErrorKind::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Request header fields too large",
            ),
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
            ErrorKind::BadGateway => (StatusCode::BAD_GATEWAY, "Bad gateway"),
            ErrorKind::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "Gateway timeout"),
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, e.g. `requester.email` or `permissions[2]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects the invalid fields of one request, so a 400 names all of them at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The value of a parse, or `None` after recording its message against `field`.
    pub fn check<T, M: Into<String>>(&mut self, field: &str, parsed: Result<T, M>) -> Option<T> {
        parsed
            .map_err(|m| self.0.push(FieldError::new(field, m)))
            .ok()
    }

    /// Records a message against `field`.
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// The 400 naming every recorded field (for when a parse came back `None`).
    pub fn into_error(self) -> ApiError {
        ApiError::invalid(self.0)
    }

    /// `Ok` when nothing was recorded, else the 400 naming every field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0))
        }
    }
}

/// The problem+json body (RFC 9457) with Fleetdesk's extension members.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the problem type: `urn:fleetdesk:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this occurrence.
    pub detail: String,
    /// A stable snake_case code, e.g. `user_not_found`.
    pub code: String,
    /// Per-field validation messages (may be empty).
    pub errors: Vec<FieldError>,
    /// The trace id of the request, to quote when reporting a problem.
    pub trace_id: String,
}

/// The error every handler returns.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    code: Cow<'static, str>,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind` with a stable `code` and a safe, human `detail`.
    pub fn new(
        kind: ErrorKind,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            kind,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with one invalid field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// 400 with several invalid fields (`validation_failed`).
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self {
            errors,
            ..Self::new(ErrorKind::BadRequest, "validation_failed", detail)
        }
    }

    /// 400 that is not about one field.
    pub fn bad_request(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::BadRequest, code, detail)
    }

    /// 401.
    pub fn unauthorized(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unauthorized, code, detail)
    }

    /// 403.
    pub fn forbidden(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Forbidden, code, detail)
    }

    /// 403 `permission_denied`, naming the node that is missing.
    pub fn missing_permission(node: &str) -> Self {
        Self::forbidden(
            "permission_denied",
            format!("this needs the permission `{node}`"),
        )
    }

    /// 404.
    pub fn not_found(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, code, detail)
    }

    /// 409.
    pub fn conflict(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Conflict, code, detail)
    }

    /// 412 `version_mismatch`: the resource changed since the caller read it.
    pub fn stale_version(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, "version_mismatch", detail)
    }

    /// 429 with `Retry-After`.
    pub fn too_many(
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
        retry_after: u64,
    ) -> Self {
        Self::new(ErrorKind::TooManyRequests, code, detail).with_retry_after(retry_after)
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
        retry_after: u64,
    ) -> Self {
        Self::new(ErrorKind::Unavailable, code, detail).with_retry_after(retry_after)
    }

    /// 500: the cause is logged with the trace id, the caller sees neither.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(trace_id = %context::trace_id(), cause = %cause, "internal error");
        Self::new(
            ErrorKind::Internal,
            "internal_error",
            "an internal error occurred; quote the trace id when reporting it",
        )
    }

    /// Adds per-item details (e.g. each credential a refused change would break).
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds a `Retry-After` of this many seconds.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The `Retry-After` seconds it answers with, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The problem document this error answers with.
    pub fn problem(&self) -> Problem {
        let (status, title) = self.kind.status_and_title();
        Problem {
            type_uri: format!("urn:fleetdesk:problem:{}", self.code),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail.to_string(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
            trace_id: context::trace_id(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status_and_title().0
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.kind == ErrorKind::Unauthorized {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fleetdesk\""),
            ));
        }
        response.json(self.problem())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not_found", "the resource does not exist"),
            StoreError::Conflict(what) => {
                tracing::info!(constraint = %what, "write refused by a constraint");
                ApiError::conflict("conflict", "the write conflicts with existing data")
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "database unavailable");
                ApiError::unavailable(
                    "database_unavailable",
                    "the database is unavailable; retry shortly",
                    5,
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}
