//! Optimistic concurrency: resources carry a `version`, GET answers an `ETag`, writes honour
//! `If-Match` with a 412 on a stale version.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;

/// The strong ETag of a version: `"<version>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A 200 JSON response with the resource's `ETag`.
pub fn with_etag<T: Serialize>(body: &T, version: i64) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// The request's `If-Match`, if any.
#[derive(Debug, Clone, Default)]
pub struct IfMatch(Option<Vec<String>>);

impl IfMatch {
    /// Refuses with 412 `version_mismatch` when `If-Match` was sent and names another version.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        let Some(tags) = &self.0 else { return Ok(()) };
        let current = etag(current);
        if tags
            .iter()
            .any(|t| t == "*" || t.trim_start_matches("W/") == current)
        {
            Ok(())
        } else {
            Err(ApiError::stale_version(format!(
                "the resource changed: its current ETag is {current}; reload and retry"
            )))
        }
    }

    /// Whether the header was sent.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Vec<String> = req
            .headers()
            .get_all(header::IF_MATCH)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        std::future::ready(Ok(IfMatch((!values.is_empty()).then_some(values))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_if_match_is_a_412_and_a_current_one_passes() {
        let m = IfMatch(Some(vec!["\"3\"".into()]));
        assert!(m.check(3).is_ok());
        assert_eq!(m.check(4).unwrap_err().code(), "version_mismatch");
        assert!(
            IfMatch(Some(vec!["W/\"4\"".into(), "\"9\"".into()]))
                .check(4)
                .is_ok()
        );
        assert!(IfMatch(Some(vec!["*".into()])).check(7).is_ok());
        assert!(IfMatch(None).check(7).is_ok());
    }
}
