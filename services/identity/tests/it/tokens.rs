//! Every kind of bad access token is a 401 problem.

use fleetdesk_auth::SigningKey;
use fleetdesk_testkit::forge;

use crate::helpers::*;

async fn me(app: &TestApp, token: &str) -> fleetdesk_testkit::Answer {
    app.http.get("/api/v1/users/me").bearer(token).send().await
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn().await;
    let good = app.claims(&["*"]);
    let kid = jsonwebtoken::decode_header(&app.admin.token)
        .unwrap()
        .kid
        .unwrap();
    let jwks = app.http.get("/.well-known/jwks.json").send().await;
    let public_x = jwks.body["keys"][0]["x"].as_str().unwrap().to_owned();

    assert_eq!(me(&app, &app.mint(&good)).await.status, 200);

    assert_problem(
        &app.http.get("/api/v1/users/me").send().await,
        401,
        "missing_token",
    );
    let basic = app
        .http
        .get("/api/v1/users/me")
        .header("authorization", "Basic YTpi")
        .send()
        .await;
    assert_problem(&basic, 401, "invalid_token");
    assert_problem(&me(&app, "garbage").await, 401, "invalid_token");

    let mut expired = good.clone();
    expired.exp = chrono::Utc::now().timestamp() - 120;
    expired.iat = expired.exp - 900;
    expired.nbf = expired.iat;
    assert_problem(&me(&app, &app.mint(&expired)).await, 401, "token_expired");

    let mut early = good.clone();
    early.nbf = chrono::Utc::now().timestamp() + 600;
    assert_problem(&me(&app, &app.mint(&early)).await, 401, "invalid_token");

    assert_problem(
        &me(&app, &forge::alg_none(&good, &kid)).await,
        401,
        "invalid_token",
    );
    assert_problem(
        &me(&app, &forge::hs256_with_public_key(&good, &kid, &public_x)).await,
        401,
        "invalid_token",
    );

    let stranger = SigningKey::generate().unwrap();
    assert_problem(
        &me(&app, &stranger.sign(&good).unwrap()).await,
        401,
        "invalid_token",
    );

    let mut more = good.clone();
    more.perms = vec!["*".into(), "extra".into()];
    let viewer = app.mint(&app.claims(&["user.read"]));
    assert_problem(
        &me(&app, &forge::tampered(&viewer, &more)).await,
        401,
        "invalid_token",
    );

    let mut wrong_aud = good.clone();
    wrong_aud.aud = "another-api".into();
    assert_problem(&me(&app, &app.mint(&wrong_aud)).await, 401, "invalid_token");
    let mut wrong_iss = good.clone();
    wrong_iss.iss = "someone-else".into();
    assert_problem(&me(&app, &app.mint(&wrong_iss)).await, 401, "invalid_token");

    let a = me(&app, "garbage").await;
    assert!(
        a.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
}
