//! What the gateway adds at the edge: CORS for configured origins, security headers, and the
//! merged OpenAPI document of every service.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpResponse, ResponseError};
use fleetdesk_web::ApiError;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};

use crate::Gateway;

const EXPOSED: &str = "ETag, Location, Retry-After, X-Request-Id, RateLimit, RateLimit-Policy, \
     X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset";
const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, If-Match, Idempotency-Key, X-API-Key, X-Request-Id, traceparent";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

fn put(headers: &mut actix_web::http::header::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// CORS and security headers around everything the gateway answers.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody, impl MessageBody>>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let allowed = origin.as_ref().is_some_and(|o| {
        req.app_data::<Data<Gateway>>()
            .is_some_and(|g| g.cors_origins.iter().any(|a| a == o || a == "*"))
    });
    let docs = req.path().starts_with("/api/docs");
    // A CORS preflight is answered here: no token, nothing forwarded.
    if req.method() == Method::OPTIONS
        && origin.is_some()
        && req.headers().contains_key("access-control-request-method")
    {
        let mut response = HttpResponse::NoContent().finish();
        if allowed {
            let h = response.headers_mut();
            put(
                h,
                "access-control-allow-origin",
                origin.as_deref().unwrap_or(""),
            );
            put(h, "access-control-allow-methods", ALLOWED_METHODS);
            put(h, "access-control-allow-headers", ALLOWED_HEADERS);
            put(h, "access-control-allow-credentials", "true");
            put(h, "access-control-max-age", "600");
            put(h, "vary", "Origin");
        }
        return Ok(req.into_response(response).map_into_left_body());
    }
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    if allowed {
        put(
            h,
            "access-control-allow-origin",
            origin.as_deref().unwrap_or(""),
        );
        put(h, "access-control-allow-credentials", "true");
        put(h, "access-control-expose-headers", EXPOSED);
        put(h, "vary", "Origin");
    }
    put(h, "x-content-type-options", "nosniff");
    put(h, "referrer-policy", "no-referrer");
    if docs {
        put(h, "x-frame-options", "SAMEORIGIN");
    } else {
        put(h, "x-frame-options", "DENY");
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            put(
                h,
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'",
            );
        }
    }
    Ok(res.map_into_right_body())
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
pub async fn openapi(gw: Data<Gateway>) -> HttpResponse {
    if let Ok(cache) = gw.docs.0.lock()
        && let Some((at, doc)) = cache.as_ref()
        && at.elapsed() < DOCS_TTL
    {
        return HttpResponse::Ok().json(doc);
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
        let e = ApiError::unavailable(
            "upstream_unavailable",
            "no service's API document could be fetched",
            5,
        );
        return e.error_response();
    }
    let merged = merge(&docs);
    if docs.iter().all(|(_, d)| d.is_some())
        && let Ok(mut cache) = gw.docs.0.lock()
    {
        *cache = Some((Instant::now(), merged.clone()));
    }
    let mut response = HttpResponse::Ok().json(merged);
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
