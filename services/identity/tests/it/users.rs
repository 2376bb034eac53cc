//! Users: own profile, the tenant's people, tenancy, guards against escalation.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn your_profile_carries_an_etag_and_if_match_guards_changes() {
    let app = spawn().await;
    let me = app
        .http
        .get("/api/v1/users/me")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(me.status, 200);
    let etag = me.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", me.body["version"]));
    let changed = app
        .http
        .patch("/api/v1/users/me")
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"name": "Ada Admin", "avatarUrl": "https://img.test/a.png"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["name"], "Ada Admin");
    let stale = app
        .http
        .patch("/api/v1/users/me")
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"name": "Lost Update"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");
    let cleared = app
        .http
        .patch("/api/v1/users/me")
        .bearer(&app.admin.token)
        .json(&json!({"avatarUrl": null}))
        .send()
        .await;
    assert_eq!(cleared.body["avatarUrl"], serde_json::Value::Null);
    assert_eq!(cleared.body["name"], "Ada Admin");
    let bad = app
        .http
        .patch("/api/v1/users/me")
        .bearer(&app.admin.token)
        .json(&json!({"avatarUrl": "ftp://x"}))
        .send()
        .await;
    assert_invalid_field(&bad, "avatarUrl");
    let unknown = app
        .http
        .patch("/api/v1/users/me")
        .bearer(&app.admin.token)
        .json(&json!({"role": "admin"}))
        .send()
        .await;
    assert_invalid_field(&unknown, "role");
}

#[tokio::test]
async fn changing_your_password_needs_the_current_one_and_ends_sessions() {
    let app = spawn().await;
    let wrong = app
        .http
        .post("/api/v1/users/me/change-password")
        .bearer(&app.admin.token)
        .json(&json!({"currentPassword": "nope nope nope", "newPassword": "a new password 2"}))
        .send()
        .await;
    assert_invalid_field(&wrong, "currentPassword");
    let ok = app
        .http
        .post("/api/v1/users/me/change-password")
        .bearer(&app.admin.token)
        .json(&json!({"currentPassword": ADMIN_PASSWORD, "newPassword": "a new password 2"}))
        .send()
        .await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    let refresh = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &app.admin.refresh)
        .send()
        .await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    assert_eq!(
        login(&app.http, ADMIN_EMAIL, "a new password 2")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn permission_checks_follow_roles_and_wildcards() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let a = app
        .http
        .post("/api/v1/users/me/check-permission")
        .bearer(&agent.token)
        .json(&json!({"permissions": ["ticket.read", "credential.secure_values.read", "role.delete"]}))
        .send()
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let has: Vec<bool> = a.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hasPermission"].as_bool().unwrap())
        .collect();
    assert_eq!(has, vec![true, false, false]);
    let read = app
        .http
        .get(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["email"], "agent@acme.test");
    assert_eq!(
        read.header("etag"),
        Some(format!("\"{}\"", read.body["version"]).as_str())
    );
    let own = app
        .http
        .get(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&agent.token)
        .send()
        .await;
    assert_eq!(
        own.status, 200,
        "reading yourself needs only user.read: {}",
        own.text
    );
    let other = app
        .http
        .post(&format!("/api/v1/users/{}/check-permission", agent.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["ticket.assign"]}))
        .send()
        .await;
    assert_eq!(other.body["results"][0]["hasPermission"], true);
}

#[tokio::test]
async fn listing_users_is_paginated_filtered_and_limited() {
    let app = spawn().await;
    for i in 0..3 {
        app.member(&format!("agent{i}@acme.test"), &["agent"]).await;
    }
    app.member("viewer@acme.test", &["viewer"]).await;
    let page = app
        .http
        .get("/api/v1/users?limit=2&page=2")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(
        page.body["pagination"],
        json!({"page": 2, "limit": 2, "total": 5, "pages": 3})
    );
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2);
    let agents = app
        .http
        .get("/api/v1/users?role=agent")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(agents.body["pagination"]["total"], 3);
    let q = app
        .http
        .get("/api/v1/users?q=VIEWER")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(q.body["data"][0]["email"], "viewer@acme.test");
    let wildcard = app
        .http
        .get("/api/v1/users?q=%25")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(
        wildcard.body["pagination"]["total"], 0,
        "a % in q is a literal, not a wildcard"
    );
    assert_invalid_field(
        &app.http
            .get("/api/v1/users?limit=101")
            .bearer(&app.admin.token)
            .send()
            .await,
        "limit",
    );
    assert_invalid_field(
        &app.http
            .get("/api/v1/users?page=0")
            .bearer(&app.admin.token)
            .send()
            .await,
        "page",
    );
    assert_invalid_field(
        &app.http
            .get("/api/v1/users?page=x")
            .bearer(&app.admin.token)
            .send()
            .await,
        "page",
    );
    assert_invalid_field(
        &app.http
            .get("/api/v1/users?status=gone")
            .bearer(&app.admin.token)
            .send()
            .await,
        "status",
    );
}

#[tokio::test]
async fn another_tenants_user_is_a_404() {
    let app = spawn().await;
    let other = app.other_tenant_admin().await;
    for path in [
        format!("/api/v1/users/{}", other.user_id),
        format!("/api/v1/users/{}/roles", other.user_id),
    ] {
        assert_problem(
            &app.http.get(&path).bearer(&app.admin.token).send().await,
            404,
            "user_not_found",
        );
    }
    let patch = app
        .http
        .patch(&format!("/api/v1/users/{}", other.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"name": "Hijacked"}))
        .send()
        .await;
    assert_problem(&patch, 404, "user_not_found");
    let deactivate = app
        .http
        .post(&format!("/api/v1/users/{}/deactivate", other.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_problem(&deactivate, 404, "user_not_found");
    let list = app
        .http
        .get("/api/v1/users")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert!(
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["tenantId"] == app.admin.tenant_id.as_str())
    );
}

#[tokio::test]
async fn changing_roles_needs_its_own_node_and_cannot_escalate() {
    let app = spawn().await;
    app.member("lead@acme.test", &["lead"]).await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    // A role that may edit users but not their roles.
    let editor = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "editor", "title": "Editor", "permissions": ["user.write.other", "user.read.other"]}))
        .send()
        .await;
    assert_eq!(editor.status, 201, "{}", editor.text);
    let ed = app.member("editor@acme.test", &["editor"]).await;
    let a = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&ed.token)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await;
    assert_problem(&a, 403, "permission_denied");
    let renamed = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&ed.token)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    // Give the lead the right to change roles: they still cannot hand out admin.
    app.http
        .post("/api/v1/roles/lead/permissions")
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["user.write.other", "user.roles.other"]}))
        .send()
        .await;
    // Grants are read at login: log in again to get them.
    let lead = login_ok(&app.http, "lead@acme.test", "member password 1")
        .await
        .token;
    let escalate = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&lead)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await;
    assert_problem(&escalate, 403, "grant_exceeds_own_permissions");
    let unknown = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"roles": ["agent", "wizard"]}))
        .send()
        .await;
    assert_invalid_field(&unknown, "roles[1]");
    let bad_node = app
        .http
        .patch(&format!("/api/v1/users/{}", agent.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["ticket.read", "ticket.fly"]}))
        .send()
        .await;
    assert_invalid_field(&bad_node, "permissions[1]");
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = spawn().await;
    let demote = app
        .http
        .patch(&format!("/api/v1/users/{}", app.admin.user_id))
        .bearer(&app.admin.token)
        .json(&json!({"roles": ["agent"]}))
        .send()
        .await;
    assert_problem(&demote, 409, "last_admin");
    let second = app.member("second@acme.test", &["admin"]).await;
    let delete_last = app
        .http
        .delete(&format!("/api/v1/users/{}", app.admin.user_id))
        .bearer(&second.token)
        .send()
        .await;
    assert_eq!(
        delete_last.status, 204,
        "with two admins one may go: {}",
        delete_last.text
    );
    let now_last = app
        .http
        .post(&format!("/api/v1/users/{}/deactivate", second.user_id))
        .bearer(&second.token)
        .send()
        .await;
    assert_problem(&now_last, 409, "cannot_deactivate_self");
}

#[tokio::test]
async fn deactivation_blocks_login_and_ends_sessions_until_reactivated() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let off = app
        .http
        .post(&format!("/api/v1/users/{}/deactivate", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.body["status"], "deactivated");
    assert_problem(
        &login(&app.http, "agent@acme.test", "member password 1").await,
        403,
        "account_deactivated",
    );
    let refresh = app
        .http
        .post("/api/v1/auth/refresh")
        .header("x-refresh-token", &agent.refresh)
        .send()
        .await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    let listed = app
        .http
        .get("/api/v1/users?status=deactivated")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(listed.body["pagination"]["total"], 1);
    let on = app
        .http
        .post(&format!("/api/v1/users/{}/reactivate", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(on.body["status"], "active");
    assert_eq!(
        login(&app.http, "agent@acme.test", "member password 1")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_admin_reset_sends_the_token_to_the_user() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let a = app
        .http
        .post(&format!("/api/v1/users/{}/reset-password", agent.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert!(a.text.is_empty(), "the token must not reach the admin");
    let token = app.events.reset_token("agent@acme.test").await;
    assert!(!a.text.contains(&token));
}

#[tokio::test]
async fn invitations_validate_and_refuse_existing_addresses() {
    let app = spawn().await;
    let bad = app
        .http
        .post("/api/v1/users/invite")
        .bearer(&app.admin.token)
        .json(&json!({"email": "nope", "name": "", "roles": []}))
        .send()
        .await;
    assert_invalid_field(&bad, "email");
    assert_invalid_field(&bad, "name");
    let taken = app
        .http
        .post("/api/v1/users/invite")
        .bearer(&app.admin.token)
        .json(&json!({"email": ADMIN_EMAIL, "name": "Again", "roles": []}))
        .send()
        .await;
    assert_problem(&taken, 409, "email_taken");
}

#[tokio::test]
async fn deleting_a_user_removes_them_and_frees_the_address() {
    let app = spawn().await;
    let agent = app.member("agent@acme.test", &["agent"]).await;
    let me = app
        .http
        .delete(&format!("/api/v1/users/{}", app.admin.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_problem(&me, 409, "cannot_delete_self");
    assert_eq!(
        app.http
            .delete(&format!("/api/v1/users/{}", agent.user_id))
            .bearer(&app.admin.token)
            .send()
            .await
            .status,
        204
    );
    assert_problem(
        &app.http
            .get(&format!("/api/v1/users/{}", agent.user_id))
            .bearer(&app.admin.token)
            .send()
            .await,
        404,
        "user_not_found",
    );
    assert_problem(
        &login(&app.http, "agent@acme.test", "member password 1").await,
        401,
        "invalid_credentials",
    );
}
