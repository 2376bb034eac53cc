//! JSON body and query-string extractors whose errors are 400 problems naming the field.
//!
//! actix's own `Json` reports serde's message without the field for type errors ("invalid
//! type: integer, expected a string at line 1 column 12"); these go through
//! `serde_path_to_error` so the problem says `requester.email` or `permissions[2]`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::PathConfig;
use actix_web::{FromRequest, HttpRequest};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind};

/// The default cap on a JSON body: 256 KiB.
pub const DEFAULT_JSON_LIMIT: usize = 256 * 1024;

/// Overrides the JSON body cap for an app or scope (`app_data(JsonLimit(n))`).
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

/// A JSON request body, deserialized strictly.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let limit = req
            .app_data::<JsonLimit>()
            .map_or(DEFAULT_JSON_LIMIT, |l| l.0);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = actix_web::web::Payload::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            let too_large = || {
                ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    "payload_too_large",
                    format!("the body is larger than {limit} bytes"),
                )
            };
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let bytes = match body
                .await
                .map_err(ApiError::internal)?
                .to_bytes_limited(limit)
                .await
            {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => {
                    return Err(ApiError::bad_request(
                        "unreadable_body",
                        "the body could not be read",
                    ));
                }
                Err(_) => return Err(too_large()),
            };
            parse_json(&bytes).map(Json)
        })
    }
}

/// Deserializes JSON, turning any error into a 400 problem that names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            field_error(&path, &strip_position(&inner.to_string()))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C" to its messages; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Turns a serde message at `path` into a field error, naming the missing or unknown field
/// itself rather than its parent.
fn field_error(path: &str, message: &str) -> ApiError {
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) = quoted("missing field `") {
        ApiError::invalid_field(join(&name), "is required")
    } else if let Some(name) = quoted("unknown field `") {
        // serde_path_to_error's path already ends at the unknown field.
        let field = if path.ends_with(&name) {
            path.to_owned()
        } else {
            join(&name)
        };
        ApiError::invalid_field(field, "is not a field of this request")
    } else {
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        };
        ApiError::invalid_field(field, message)
    }
}

/// A query string, deserialized with errors naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Deserializes a query string, turning any error into a 400 naming the parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        field_error(&path, &e.into_inner().to_string())
    })
}

/// For PATCH fields that may be set to `null`: absent stays `None`, `null` becomes
/// `Some(None)`. Use with `#[serde(default, deserialize_with = "...::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Path segments that do not parse name nothing that exists: 404.
pub fn path_config() -> PathConfig {
    PathConfig::default().error_handler(|_, _| {
        ApiError::not_found("not_found", "the resource does not exist").into()
    })
}

/// Trims an optional search text (`q`): `None` when empty, 400 naming `q` when over 200
/// characters.
pub fn search_text(q: Option<String>) -> Result<Option<String>, ApiError> {
    match q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()) {
        Some(q) if q.chars().count() > 200 => Err(ApiError::invalid_field(
            "q",
            "must be at most 200 characters",
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Requester {
        name: String,
        email: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        title: String,
        requester: Requester,
        tags: Vec<String>,
    }

    fn field_of(json: &str) -> String {
        let e = parse_json::<Body>(json.as_bytes()).unwrap_err();
        e.problem().errors[0].field.clone()
    }

    #[test]
    fn type_errors_name_the_nested_field() {
        assert_eq!(
            field_of(r#"{"title":"t","requester":{"name":"n","email":5},"tags":[]}"#),
            "requester.email"
        );
        assert_eq!(
            field_of(r#"{"title":"t","requester":{"name":"n","email":"e"},"tags":["a",3]}"#),
            "tags[1]"
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named_themselves() {
        assert_eq!(field_of(r#"{"title":"t","tags":[]}"#), "requester");
        assert_eq!(
            field_of(r#"{"title":"t","requester":{"name":"n"},"tags":[]}"#),
            "requester.email"
        );
        assert_eq!(
            field_of(r#"{"title":"t","requester":{"name":"n","email":"e"},"tags":[],"x":1}"#),
            "x"
        );
    }

    #[test]
    fn broken_json_is_malformed_not_a_field_error() {
        let e = parse_json::<Body>(b"{\"title\": ").unwrap_err();
        assert_eq!(e.code(), "malformed_json");
        let e = parse_json::<Body>(
            br#"{"title":"t","requester":{"name":"n","email":"e"},"tags":[]} trailing"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "malformed_json");
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct List {
        page: Option<u32>,
        q: Option<String>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<List>("page=abc").unwrap_err();
        assert_eq!(e.problem().errors[0].field, "page");
        let ok = parse_query::<List>("page=2&q=a%20b").unwrap();
        assert_eq!((ok.page, ok.q.as_deref()), (Some(2), Some("a b")));
    }
}
