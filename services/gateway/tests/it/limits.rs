//! Rate limits and their headers, in memory and shared through Redis.

use serde_json::json;

use crate::rig::*;

#[tokio::test]
async fn limited_answers_carry_the_headers_and_429_has_retry_after() {
    let r = rig(&[(
        "FLEETDESK_GATEWAY_RATE_LIMITS",
        "tickets subject 3/1m; identity/api/v1/auth/login ip 3/1m",
    )])
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let a = r
            .http
            .get("/api/v1/tickets")
            .bearer(&r.admin_token)
            .send()
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.header("ratelimit-policy"),
            Some("\"tickets-subject\";q=3;w=60")
        );
        assert_eq!(a.header("x-ratelimit-limit"), Some("3"));
        let reset = a.header("x-ratelimit-reset").unwrap();
        assert!(reset.parse::<u64>().unwrap() <= 60, "{reset}");
        let left = a.header("x-ratelimit-remaining").unwrap();
        assert_eq!(
            a.header("ratelimit"),
            Some(format!("\"tickets-subject\";r={left};t={reset}").as_str())
        );
        remaining.push(left.to_owned());
    }
    assert_eq!(remaining, vec!["2", "1", "0"]);
    let before = r.hits();
    let refused = r
        .http
        .get("/api/v1/tickets")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_problem(&refused, 429, "rate_limited");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        r.hits(),
        before,
        "a limited request does not reach the upstream"
    );

    // Another caller has a budget of its own.
    let other = r.mint(&r.claims());
    let a = r.http.get("/api/v1/tickets").bearer(&other).send().await;
    assert_eq!(a.status, 200);

    // Sign-in is limited per address (the rig logged in once already), before any password
    // is checked.
    for _ in 0..2 {
        let a = r
            .http
            .post("/api/v1/auth/login")
            .json(&json!({"email": "x@y.test", "password": "whatever password"}))
            .send()
            .await;
        assert_eq!(a.status, 401);
    }
    let a = r
        .http
        .post("/api/v1/auth/login")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await;
    assert_problem(&a, 429, "rate_limited");
    // Routes no policy covers carry no headers.
    let me = r
        .http
        .get("/api/v1/users/me")
        .bearer(&r.admin_token)
        .send()
        .await;
    assert_eq!(me.status, 200);
    assert!(me.header("ratelimit").is_none());
}

#[tokio::test]
async fn redis_limits_hold_across_two_gateways() {
    let Some(url) = fleetdesk_testkit::redis_server() else {
        eprintln!("FLEETDESK_TEST_REDIS_URL is not set: the Redis variant did not run here");
        return;
    };
    // A policy name of its own, so runs and tests do not share keys.
    let unique = format!(
        "tickets/api/v1/tickets/{} subject 4/1m",
        uuid::Uuid::new_v4().simple()
    );
    let path = unique
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("tickets")
        .to_owned();
    let settings = [
        ("FLEETDESK_GATEWAY_RATE_LIMITS", unique.as_str()),
        ("FLEETDESK_GATEWAY_REDIS_URL", url.as_str()),
    ];
    let a = rig(&settings).await;
    let b = second_gateway(&a, &settings).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let http = if i % 2 == 0 { &a.http } else { &b };
        statuses.push(http.get(&path).bearer(&a.admin_token).send().await.status);
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 429, 429],
        "one budget across both"
    );
}
