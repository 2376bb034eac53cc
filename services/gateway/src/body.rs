//! What the gateway answers with: nothing, bytes it made, or an upstream's body passed on.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::upstream::Returning;

/// A response body.
pub enum GwBody {
    /// No body.
    Empty,
    /// A whole body, until sent.
    Full(Option<Bytes>),
    /// An upstream's response body, frame by frame as it arrives.
    Upstream(Returning),
}

impl Body for GwBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            GwBody::Empty => Poll::Ready(None),
            GwBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            GwBody::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Empty => true,
            GwBody::Full(bytes) => bytes.is_none(),
            GwBody::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Empty => SizeHint::with_exact(0),
            GwBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            GwBody::Upstream(body) => body.size_hint(),
        }
    }
}

/// A response of `status` with `body` of `content_type`.
pub fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<GwBody> {
    let mut response = Response::new(GwBody::Full(Some(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `value` as a JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<GwBody> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(status, "application/json", body),
        Err(e) => problem(&fleetdesk_web::ApiError::internal(e)),
    }
}

/// The problem+json answer for `error`, with `Retry-After` and `WWW-Authenticate` where they
/// apply.
pub fn problem(error: &fleetdesk_web::ApiError) -> Response<GwBody> {
    let document = error.problem();
    let status = StatusCode::from_u16(document.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&document).unwrap_or_default();
    let mut response = bytes(status, "application/problem+json", body);
    let headers = response.headers_mut();
    if let Some(seconds) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"fleetdesk\""),
        );
    }
    response
}
