//! Roles, the permission catalogue and the tenant.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn roles_are_created_read_changed_and_deleted() {
    let app = spawn().await;
    let created = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "night_shift", "title": "Night shift", "permissions": ["ticket.read", "ticket.read", "ticket.comment.*"]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["permissions"],
        json!(["ticket.comment.*", "ticket.read"])
    );
    assert_eq!(created.body["system"], false);
    let id = created.body["id"].as_str().unwrap();
    let by_moniker = app
        .http
        .get("/api/v1/roles/night_shift")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(by_moniker.body["id"], id);
    let etag = by_moniker.header("etag").unwrap().to_owned();
    let changed = app
        .http
        .patch(&format!("/api/v1/roles/{id}"))
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"title": "Nights", "moniker": "nights"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["moniker"], "nights");
    let stale = app
        .http
        .patch(&format!("/api/v1/roles/{id}"))
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"title": "Lost"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");
    let added = app
        .http
        .post("/api/v1/roles/nights/permissions")
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["user.read"]}))
        .send()
        .await;
    assert_eq!(
        added.body["permissions"],
        json!(["ticket.comment.*", "ticket.read", "user.read"])
    );
    let removed = app
        .http
        .delete("/api/v1/roles/nights/permissions")
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["ticket.read"]}))
        .send()
        .await;
    assert_eq!(
        removed.body["permissions"],
        json!(["ticket.comment.*", "user.read"])
    );
    let member = app.member("night@acme.test", &["nights"]).await;
    let holders = app
        .http
        .get("/api/v1/roles/nights/users")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(holders.body["data"][0]["id"], member.user_id.as_str());
    assert_eq!(
        app.http
            .delete(&format!("/api/v1/roles/{id}"))
            .bearer(&app.admin.token)
            .send()
            .await
            .status,
        204
    );
    let roles = app
        .http
        .get(&format!("/api/v1/users/{}/roles", member.user_id))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(roles.body, json!([]));
    assert_problem(
        &app.http
            .get("/api/v1/roles/nights")
            .bearer(&app.admin.token)
            .send()
            .await,
        404,
        "role_not_found",
    );
}

#[tokio::test]
async fn system_roles_keep_their_shape() {
    let app = spawn().await;
    assert_problem(
        &app.http
            .delete("/api/v1/roles/agent")
            .bearer(&app.admin.token)
            .send()
            .await,
        409,
        "system_role",
    );
    let rename = app
        .http
        .patch("/api/v1/roles/agent")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "agents"}))
        .send()
        .await;
    assert_problem(&rename, 409, "system_role");
    let strip = app
        .http
        .patch("/api/v1/roles/admin")
        .bearer(&app.admin.token)
        .json(&json!({"permissions": []}))
        .send()
        .await;
    assert_problem(&strip, 409, "system_role");
    let retitle = app
        .http
        .patch("/api/v1/roles/agent")
        .bearer(&app.admin.token)
        .json(&json!({"title": "Support"}))
        .send()
        .await;
    assert_eq!(retitle.status, 200, "{}", retitle.text);
}

#[tokio::test]
async fn role_input_is_validated_and_unique() {
    let app = spawn().await;
    let bad = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(
            &json!({"moniker": "Bad Name", "title": "", "permissions": ["ticket.read", "nope.*"]}),
        )
        .send()
        .await;
    assert_invalid_field(&bad, "moniker");
    assert_invalid_field(&bad, "title");
    let bad_node = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(
            &json!({"moniker": "ok_name", "title": "T", "permissions": ["ticket.read", "nope.*"]}),
        )
        .send()
        .await;
    assert_invalid_field(&bad_node, "permissions[1]");
    let dup = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "agent", "title": "Again"}))
        .send()
        .await;
    assert_problem(&dup, 409, "role_exists");
}

#[tokio::test]
async fn another_tenants_role_is_a_404() {
    let app = spawn().await;
    let other = app.other_tenant_admin().await;
    let mine = app
        .http
        .get("/api/v1/roles/agent")
        .bearer(&app.admin.token)
        .send()
        .await;
    let id = mine.body["id"].as_str().unwrap();
    assert_problem(
        &app.http
            .get(&format!("/api/v1/roles/{id}"))
            .bearer(&other.token)
            .send()
            .await,
        404,
        "role_not_found",
    );
    let theirs = app
        .http
        .get("/api/v1/roles/agent")
        .bearer(&other.token)
        .send()
        .await;
    assert_ne!(theirs.body["id"], id);
}

#[tokio::test]
async fn the_catalogue_is_served_by_category_and_flat() {
    let app = spawn().await;
    let all = app
        .http
        .get("/api/v1/permissions")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(all.status, 200);
    for key in [
        "global",
        "user",
        "ticket",
        "knowledge",
        "change_request",
        "credential",
        "notification",
        "webhook",
    ] {
        assert!(all.body.get(key).is_some(), "category {key} missing");
    }
    let nodes = app
        .http
        .get("/api/v1/permissions/nodes")
        .bearer(&app.admin.token)
        .send()
        .await;
    let list = nodes.body.as_array().unwrap();
    let secure = list
        .iter()
        .find(|n| n["node"] == "credential.secure_values.read")
        .unwrap();
    assert_eq!(secure["dependencies"], json!(["credential.read"]));
    let one = app
        .http
        .get("/api/v1/permissions/credential")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(one.body["name"], "Credentials");
    let missing = app
        .http
        .get("/api/v1/permissions/wizardry")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_problem(&missing, 404, "permission_category_not_found");
}

#[tokio::test]
async fn the_tenant_can_be_renamed_and_configured() {
    let app = spawn().await;
    let t = app
        .http
        .get("/api/v1/tenants/current")
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(t.body["name"], "Acme");
    let etag = t.header("etag").unwrap().to_owned();
    let changed = app
        .http
        .patch("/api/v1/tenants/current")
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"name": "Acme Corp", "settings": {"revealReasonRequired": true}}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["settings"]["revealReasonRequired"], true);
    let not_object = app
        .http
        .patch("/api/v1/tenants/current")
        .bearer(&app.admin.token)
        .json(&json!({"settings": [1]}))
        .send()
        .await;
    assert_invalid_field(&not_object, "settings");
    let stale = app
        .http
        .patch("/api/v1/tenants/current")
        .bearer(&app.admin.token)
        .header("if-match", &etag)
        .json(&json!({"name": "Lost"}))
        .send()
        .await;
    assert_problem(&stale, 412, "version_mismatch");
}

#[tokio::test]
async fn user_events_carry_what_the_user_may_do_now_and_role_changes_reach_every_holder() {
    let app = spawn().await;
    let created = app
        .http
        .post("/api/v1/roles")
        .bearer(&app.admin.token)
        .json(&json!({"moniker": "triage", "title": "Triage", "permissions": ["ticket.read"]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let role = created.body["id"].as_str().unwrap().to_owned();
    let member = app.member("tria@acme.test", &["triage"]).await;
    let registered = app
        .events
        .wait_for("user.registered", |d| {
            d["userId"] == member.user_id.as_str()
        })
        .await;
    let perms = registered.data["access"]["permissions"]
        .as_array()
        .unwrap()
        .clone();
    assert!(perms.contains(&json!("ticket.read")), "{perms:?}");
    assert_eq!(registered.data["access"]["status"], "active");

    let changed = app
        .http
        .patch(&format!("/api/v1/roles/{role}"))
        .bearer(&app.admin.token)
        .json(&json!({"permissions": ["ticket.read", "ticket.assign"]}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let updated = app
        .events
        .wait_for("user.updated", |d| {
            d["userId"] == member.user_id.as_str()
                && d["access"]["permissions"]
                    .as_array()
                    .is_some_and(|p| p.contains(&json!("ticket.assign")))
        })
        .await;
    assert_eq!(updated.data["changed"], json!(["permissions"]));

    let deleted = app
        .http
        .delete(&format!("/api/v1/roles/{role}"))
        .bearer(&app.admin.token)
        .send()
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    app.events
        .wait_for("user.updated", |d| {
            d["userId"] == member.user_id.as_str()
                && d["access"]["permissions"]
                    .as_array()
                    .is_some_and(|p| !p.contains(&json!("ticket.read")))
        })
        .await;
}
