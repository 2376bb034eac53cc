//! CORS, security headers, and the merged API document.

use crate::rig::*;

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let r = rig(&[("FLEETDESK_GATEWAY_CORS_ORIGINS", "https://app.example.com")]).await;
    let before = r.hits();
    let pre = r
        .http
        .call("OPTIONS", "/api/v1/tickets")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await;
    assert_eq!(pre.status, 204, "{}", pre.text);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        pre.header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    assert!(
        pre.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    assert_eq!(r.hits(), before, "preflights are answered by the gateway");
    let evil = r
        .http
        .call("OPTIONS", "/api/v1/tickets")
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await;
    assert!(evil.header("access-control-allow-origin").is_none());
    let get = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .header("origin", "https://app.example.com")
        .send()
        .await;
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        get.header("access-control-expose-headers")
            .unwrap()
            .contains("RateLimit")
    );
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(get.header("x-frame-options"), Some("DENY"));
    assert_eq!(get.header("referrer-policy"), Some("no-referrer"));
    // Errors get them too.
    let e = r.http.get("/api/v1/nothing").send().await;
    assert_eq!(e.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn the_merged_document_and_docs_page_need_no_internet() {
    let r = rig(&[]).await;
    let doc = r.http.get("/api/openapi.json").send().await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    assert!(
        doc.body["paths"]["/api/v1/users/me"].is_object(),
        "identity's routes are in"
    );
    assert!(doc.body["components"]["schemas"]["Problem"].is_object());
    let description = doc.body["info"]["description"].as_str().unwrap();
    // The echo upstream answers no OpenAPI document and knowledge is down: both are named.
    assert!(description.contains("tickets, knowledge"), "{description}");
    let page = r.http.get("/api/docs/").send().await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("swagger"),
        "{}",
        &page.text[..page.text.len().min(200)]
    );
    assert!(!page.text.contains("https://cdn"), "served from the binary");
    let init = r.http.get("/api/docs/swagger-initializer.js").send().await;
    assert!(init.text.contains("/api/openapi.json"), "{}", init.text);
}
