//! Refresh-token rotation, reuse detection and logout.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn refresh_rotates_and_accepts_body_header_or_cookie() {
    let app = spawn().await;
    let s = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let by_body = app
        .http
        .post("/api/v1/auth/refresh")
        .json(&json!({"refreshToken": s.refresh}))
        .send()
        .await;
    assert_eq!(by_body.status, 200, "{}", by_body.text);
    let second = by_body.body["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, s.refresh);
    let by_header = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &second)
        .send()
        .await;
    assert_eq!(by_header.status, 200, "{}", by_header.text);
    let third = by_header.body["refreshToken"].as_str().unwrap().to_owned();
    let by_cookie = app
        .http
        .post("/api/v1/auth/refresh")
        .header("cookie", &format!("fd_refresh={third}"))
        .send()
        .await;
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.text);
    let token = by_cookie.body["accessToken"].as_str().unwrap();
    assert_eq!(
        app.http
            .get("/api/v1/users/me")
            .bearer(token)
            .send()
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn reusing_a_rotated_token_revokes_the_whole_family() {
    let app = spawn().await;
    let s = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let other = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rotated = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &s.refresh)
        .send()
        .await;
    let newest = rotated.body["refreshToken"].as_str().unwrap().to_owned();
    let replay = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &s.refresh)
        .send()
        .await;
    assert_problem(&replay, 401, "refresh_token_reused");
    let legit = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &newest)
        .send()
        .await;
    assert_problem(&legit, 401, "invalid_refresh_token");
    // Another session (another family) is untouched.
    let unrelated = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &other.refresh)
        .send()
        .await;
    assert_eq!(unrelated.status, 200, "{}", unrelated.text);
}

#[tokio::test]
async fn garbage_and_missing_refresh_tokens_are_401() {
    let app = spawn().await;
    assert_problem(
        &app.http.post("/api/v1/auth/refresh").send().await,
        401,
        "invalid_refresh_token",
    );
    let garbage = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", "nope")
        .send()
        .await;
    assert_problem(&garbage, 401, "invalid_refresh_token");
    let bad_body = app
        .http
        .post("/api/v1/auth/refresh")
        .json(&json!({"refreshToken": 5}))
        .send()
        .await;
    assert_invalid_field(&bad_body, "refreshToken");
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let app = spawn().await;
    let s = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.clock.advance(chrono::Duration::days(15));
    let late = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &s.refresh)
        .send()
        .await;
    assert_problem(&late, 401, "refresh_token_expired");
}

#[tokio::test]
async fn logout_ends_the_presented_session_and_clears_the_cookie() {
    let app = spawn().await;
    let s = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let other = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let out = app
        .http
        .post("/api/v1/auth/logout")
        .bearer(&s.token)
        .header("x-refresh-token", &s.refresh)
        .send()
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    assert!(out.cookies().iter().any(|c| c.starts_with("fd_refresh=;")
        || c.starts_with("fd_refresh=\"\"")
        || c.contains("Max-Age=0")));
    let after = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &s.refresh)
        .send()
        .await;
    assert_problem(&after, 401, "invalid_refresh_token");
    assert_eq!(
        app.http
            .post("/api/v1/auth/refresh")
            .header("x-refresh-token", &other.refresh)
            .send()
            .await
            .status,
        200
    );
    // Without a token to name, logout ends every session of the caller.
    let third = login_ok(&app.http, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        app.http
            .post("/api/v1/auth/logout")
            .bearer(&third.token)
            .send()
            .await
            .status,
        204
    );
    let gone = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &third.refresh)
        .send()
        .await;
    assert_problem(&gone, 401, "invalid_refresh_token");
    assert_problem(
        &app.http.post("/api/v1/auth/logout").send().await,
        401,
        "missing_token",
    );
}
