//! What the gateway adds at the edge: CORS for configured origins, security headers, and the
//! merged OpenAPI document of every service.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fleetdesk_web::ApiError;
use futures_util::future::join_all;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::Gateway;
use crate::body::{self, GwBody};
use crate::limits::Decision;

// Header values made at compile time: `HeaderValue::from_static` outside a constant checks
// its text on every call.
const EXPOSED: HeaderValue = HeaderValue::from_static(
    "ETag, Location, Retry-After, X-Request-Id, RateLimit, RateLimit-Policy, \
     X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset",
);
const ALLOWED_HEADERS: HeaderValue = HeaderValue::from_static(
    "Authorization, Content-Type, If-Match, Idempotency-Key, X-API-Key, X-Request-Id, traceparent",
);
const ALLOWED_METHODS: HeaderValue =
    HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");

const TRUE: HeaderValue = HeaderValue::from_static("true");
const ORIGIN_VARY: HeaderValue = HeaderValue::from_static("Origin");

/// The request's `Origin` when it is one of the configured CORS origins.
pub fn allowed_origin(gw: &Gateway, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    gw.cors_origins
        .iter()
        .any(|a| a == text || a == "*")
        .then(|| origin.clone())
}

/// The answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), given here: no token, nothing forwarded.
pub fn preflight(
    method: &Method,
    headers: &HeaderMap,
    allowed: Option<&HeaderValue>,
) -> Option<Response<GwBody>> {
    if method != Method::OPTIONS
        || !headers.contains_key(header::ORIGIN)
        || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let mut response = Response::new(GwBody::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Some(origin) = allowed {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        h.insert(header::VARY, ORIGIN_VARY);
    }
    Some(response)
}

/// The fields the gateway adds to everything it answers: the request id, CORS for an
/// allowed origin, security headers, and the rate-limit fields of the tightest policy that
/// applied. They are written straight into the answer's head by [`crate::h1`], not put in
/// its header map: on a forwarded answer that was ten inserts into a hash map and ten drops
/// after, about a tenth of the gateway's instructions per request. Each takes the place of
/// any field of the same name the answer has (see [`Added::replaces`]).
#[derive(Default)]
pub struct Added<'g> {
    /// `X-Request-Id`.
    pub request_id: Option<HeaderValue>,
    /// The request's `Origin`, when it is one of the configured CORS origins.
    pub origin: Option<HeaderValue>,
    /// The docs page's framing rules rather than the API's.
    pub docs: bool,
    /// The tightest rate-limit decision, for the `RateLimit*` fields.
    pub rate: Option<Decision<'g>>,
}

impl Added<'_> {
    /// Whether the gateway writes a field of this name itself, in place of the answer's.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        match name.as_str() {
            "x-content-type-options" | "referrer-policy" | "x-frame-options" => true,
            "access-control-allow-origin"
            | "access-control-allow-credentials"
            | "access-control-expose-headers"
            | "vary" => self.origin.is_some(),
            "x-request-id" => self.request_id.is_some(),
            "ratelimit-policy"
            | "ratelimit"
            | "x-ratelimit-limit"
            | "x-ratelimit-remaining"
            | "x-ratelimit-reset" => self.rate.is_some(),
            _ => false,
        }
    }

    /// Writes the fields as head lines; `has_policy`: the answer has its own
    /// `Content-Security-Policy`, which is then kept. In few, long pieces: the fixed lines
    /// are made once (here, or with the rate-limit policy).
    pub fn write(&self, out: &mut Vec<u8>, has_policy: bool) {
        if let Some(id) = &self.request_id {
            for part in [b"x-request-id: ", id.as_bytes(), b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
        if let Some(d) = &self.rate {
            // `RateLimit-Policy` and `RateLimit` (IETF httpapi draft) and the `X-RateLimit-*`
            // trio.
            let mut remaining = itoa::Buffer::new();
            let remaining = remaining.format(d.remaining).as_bytes();
            let mut reset = itoa::Buffer::new();
            let reset = reset.format(d.reset).as_bytes();
            for part in [
                d.policy.lines.as_bytes(),
                remaining,
                b";t=",
                reset,
                b"\r\nx-ratelimit-remaining: ",
                remaining,
                b"\r\nx-ratelimit-reset: ",
                reset,
                b"\r\n",
            ] {
                out.extend_from_slice(part);
            }
        }
        if let Some(origin) = &self.origin {
            for part in [
                b"access-control-allow-origin: ",
                origin.as_bytes(),
                b"\r\naccess-control-allow-credentials: true\r\n\
                  access-control-expose-headers: ",
                EXPOSED.as_bytes(),
                b"\r\nvary: Origin\r\n",
            ] {
                out.extend_from_slice(part);
            }
        }
        out.extend_from_slice(match (self.docs, has_policy) {
            (true, _) => SECURITY_DOCS,
            (false, true) => SECURITY,
            (false, false) => SECURITY_NO_CONTENT,
        });
    }
}

// The security headers as head lines: the API's (with the answer's own content policy, or
// none allowed), and the docs page's (which may be framed by the gateway's own pages).
const SECURITY: &[u8] =
    b"x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\nx-frame-options: DENY\r\n";
const SECURITY_NO_CONTENT: &[u8] = b"x-content-type-options: nosniff\r\n\
    referrer-policy: no-referrer\r\nx-frame-options: DENY\r\n\
    content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n";
const SECURITY_DOCS: &[u8] = b"x-content-type-options: nosniff\r\n\
    referrer-policy: no-referrer\r\nx-frame-options: SAMEORIGIN\r\n";

/// `GET /api/docs/<file>`: the vendored Swagger UI, pointed at the merged document.
pub fn docs(file: &str) -> Response<GwBody> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("/api/openapi.json")))
        .clone();
    match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(file)) => {
            let mut response = Response::new(GwBody::Full(Some(file.bytes.into_owned().into())));
            if let Ok(v) = HeaderValue::from_str(&file.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            response
        }
        Ok(None) => body::problem(&ApiError::not_found(
            "route_not_found",
            "the docs have no such file",
        )),
        Err(e) => body::problem(&ApiError::internal(e)),
    }
}

/// The merged document, cached for a short while.
#[derive(Default)]
pub struct MergedDocs(Mutex<Option<(Instant, Value)>>);

const DOCS_TTL: Duration = Duration::from_secs(30);

/// Merges service documents: paths, component schemas, responses and security schemes, tags.
pub fn merge(docs: &[(String, Option<Value>)]) -> Value {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    let mut missing = Vec::new();
    for (service, doc) in docs {
        let Some(doc) = doc else {
            missing.push(service.clone());
            continue;
        };
        if let Some(p) = doc["paths"].as_object() {
            for (k, v) in p {
                paths.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if let Some(c) = doc["components"].as_object() {
            for (section, entries) in c {
                let target = components
                    .entry(section.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Some(target), Some(entries)) = (target.as_object_mut(), entries.as_object())
                {
                    for (name, schema) in entries {
                        target.entry(name.clone()).or_insert_with(|| schema.clone());
                    }
                }
            }
        }
        if let Some(t) = doc["tags"].as_array() {
            for tag in t {
                if !tags.iter().any(|x| x["name"] == tag["name"]) {
                    tags.push(tag.clone());
                }
            }
        }
    }
    let mut description =
        "Every Fleetdesk service's API, as served through the gateway.".to_owned();
    if !missing.is_empty() {
        description.push_str(&format!(
            " Not included (unreachable just now): {}.",
            missing.join(", ")
        ));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Fleetdesk API", "version": env!("CARGO_PKG_VERSION"), "description": description},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": components,
        "tags": tags,
    })
}

/// `GET /api/openapi.json`: every service's document, merged.
pub async fn openapi(gw: &Gateway) -> Response<GwBody> {
    if let Ok(cache) = gw.docs.0.lock()
        && let Some((at, doc)) = cache.as_ref()
        && at.elapsed() < DOCS_TTL
    {
        return fresh_for_a_while(body::json(StatusCode::OK, doc));
    }
    let answers = gw
        .get_from_each_upstream("/openapi.json", Duration::from_secs(3))
        .await;
    let docs = join_all(answers.into_iter().map(|(name, answer)| async move {
        let doc = match answer {
            Some(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .ok()
                .filter(|d| d["openapi"].is_string() && d["paths"].is_object()),
            _ => None,
        };
        (name, doc)
    }))
    .await;
    if docs.iter().all(|(_, d)| d.is_none()) {
        return body::problem(&ApiError::unavailable(
            "upstream_unavailable",
            "no service's API document could be fetched",
            5,
        ));
    }
    let merged = merge(&docs);
    if docs.iter().all(|(_, d)| d.is_some())
        && let Ok(mut cache) = gw.docs.0.lock()
    {
        *cache = Some((Instant::now(), merged.clone()));
    }
    fresh_for_a_while(body::json(StatusCode::OK, &merged))
}

/// Merged here for a short while, so clients must ask again rather than keep it.
fn fresh_for_a_while(mut response: Response<GwBody>) -> Response<GwBody> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_merge_and_missing_ones_are_named() {
        let a = json!({"paths": {"/api/v1/users": {"get": {}}}, "components": {"schemas": {"User": {"type": "object"}, "Problem": {"type": "object"}}}, "tags": [{"name": "users"}]});
        let b = json!({"paths": {"/api/v1/tickets": {"get": {}}}, "components": {"schemas": {"Ticket": {}, "Problem": {"type": "string"}}, "securitySchemes": {"bearer": {}}}, "tags": [{"name": "tickets"}, {"name": "users"}]});
        let merged = merge(&[
            ("identity".into(), Some(a)),
            ("tickets".into(), Some(b)),
            ("vault".into(), None),
        ]);
        assert!(merged["paths"]["/api/v1/users"].is_object());
        assert!(merged["paths"]["/api/v1/tickets"].is_object());
        assert_eq!(merged["components"]["schemas"]["Problem"]["type"], "object");
        assert!(merged["components"]["securitySchemes"]["bearer"].is_object());
        assert_eq!(merged["tags"].as_array().unwrap().len(), 2);
        assert!(
            merged["info"]["description"]
                .as_str()
                .unwrap()
                .contains("vault")
        );
    }
}
