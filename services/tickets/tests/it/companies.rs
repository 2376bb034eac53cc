//! Companies: CRUD, search, the guarded address, and linking tickets by email domain.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn companies_are_created_searched_changed_and_deleted() {
    let app = spawn().await;
    let c = app.create_company(json!({"name": "Customer Corp", "identifier": "CUST-1", "emailDomains": ["Customer.test"], "address": {"city": "Lyon"}, "externalRef": "psa-77"}),
    )
    .await;
    assert_eq!(c["emailDomains"], json!(["customer.test"]));
    assert_eq!(c["address"]["city"], "Lyon", "the admin may read addresses");
    app.create_company(json!({"name": "Other Ltd", "identifier": "OTH"}))
        .await;
    let id = c["id"].as_str().unwrap();

    for q in ["custom", "cust-1", "customer.test"] {
        let list = app.get(&format!("/api/v1/companies?q={q}")).await;
        assert_eq!(list.body["pagination"]["total"], 1, "q={q}: {}", list.text);
    }
    let all = app.get("/api/v1/companies").await;
    assert_eq!(all.body["pagination"]["total"], 2);
    assert!(
        all.body["data"][0].get("address").is_none(),
        "addresses only when asked for"
    );

    let etag = app
        .get(&format!("/api/v1/companies/{id}"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let changed = app
        .http
        .patch(&format!("/api/v1/companies/{id}"))
        .bearer(&app.admin)
        .header("if-match", &etag)
        .json(&json!({"notes": "VIP", "externalRef": null, "emailDomains": ["customer.test", "cust.example"]}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["externalRef"], serde_json::Value::Null);
    assert_eq!(changed.body["emailDomains"].as_array().unwrap().len(), 2);

    let gone = app
        .http
        .delete(&format!("/api/v1/companies/{id}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(gone.status, 204);
    let a = app.get(&format!("/api/v1/companies/{id}")).await;
    assert_problem(&a, 404, "company_not_found");
}

#[tokio::test]
async fn the_address_needs_its_own_node() {
    let app = spawn().await;
    let c = app
        .create_company(
            json!({"name": "C", "identifier": "C1", "address": {"street": "1 Main St"}}),
        )
        .await;
    let id = c["id"].as_str().unwrap();
    let reader = app.token("reader", &["company.read"]);
    let plain = app
        .http
        .get(&format!("/api/v1/companies/{id}"))
        .bearer(&reader)
        .send()
        .await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.get("address").is_none());
    let asked = app
        .http
        .get(&format!("/api/v1/companies/{id}?includeAddress=true"))
        .bearer(&reader)
        .send()
        .await;
    assert_problem(&asked, 403, "permission_denied");
    let allowed = app.token("allowed", &["company.read", "company.read.address"]);
    let a = app
        .http
        .get(&format!("/api/v1/companies/{id}?includeAddress=true"))
        .bearer(&allowed)
        .send()
        .await;
    assert_eq!(a.body["address"]["street"], "1 Main St");
}

#[tokio::test]
async fn identifiers_and_domains_are_unique_and_inputs_are_checked() {
    let app = spawn().await;
    app.create_company(json!({"name": "A", "identifier": "A1", "emailDomains": ["a.test"]}))
        .await;
    let dup = app
        .http
        .post("/api/v1/companies")
        .bearer(&app.admin)
        .json(&json!({"name": "B", "identifier": "A1"}))
        .send()
        .await;
    assert_problem(&dup, 409, "company_identifier_taken");
    let dom = app
        .http
        .post("/api/v1/companies")
        .bearer(&app.admin)
        .json(&json!({"name": "B", "identifier": "B1", "emailDomains": ["a.test"]}))
        .send()
        .await;
    assert_problem(&dom, 409, "email_domain_taken");
    let bad = app
        .http
        .post("/api/v1/companies")
        .bearer(&app.admin)
        .json(
            &json!({"name": "B", "identifier": "B1", "emailDomains": ["ok.test", "not a domain"]}),
        )
        .send()
        .await;
    assert_invalid_field(&bad, "emailDomains[1]");
    let bad = app
        .http
        .post("/api/v1/companies")
        .bearer(&app.admin)
        .json(&json!({"name": "B", "identifier": "B 1", "address": "text"}))
        .send()
        .await;
    assert_invalid_field(&bad, "identifier");
    assert_invalid_field(&bad, "address");
}

#[tokio::test]
async fn a_requesters_email_domain_links_the_new_ticket_to_its_company() {
    let app = spawn().await;
    let c = app
        .create_company(
            json!({"name": "Customer", "identifier": "CUST", "emailDomains": ["customer.test"]}),
        )
        .await;
    let p = app.create_product("PAY", json!({})).await;
    let t = app
        .raise(
            p["id"].as_str().unwrap(),
            "Hello",
            "Question about invoices",
        )
        .await;
    assert_eq!(t["companyId"], c["id"]);
    let list = app
        .get(&format!(
            "/api/v1/tickets?companyId={}",
            c["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(list.body["pagination"]["total"], 1);
}

#[tokio::test]
async fn a_named_company_wins_over_the_domain_and_a_bad_one_or_product_writes_nothing() {
    let app = spawn().await;
    app.create_company(
        json!({"name": "Customer", "identifier": "CUST", "emailDomains": ["customer.test"]}),
    )
    .await;
    let other = app
        .create_company(json!({"name": "Other", "identifier": "OTHER"}))
        .await;
    let p = app.create_product("PAY", json!({})).await;
    let raise = |product: &str, company: &str| {
        app.http
            .post("/api/v1/tickets")
            .bearer(&app.admin)
            .json(&json!({
                "productId": product, "companyId": company, "title": "Hello",
                "description": "Invoices", "channel": "web",
                "requester": {"name": "Rita", "email": "rita@customer.test"}
            }))
            .send()
    };
    let pid = p["id"].as_str().unwrap();
    let named = raise(pid, other["id"].as_str().unwrap()).await;
    assert_eq!(named.status, 201, "{}", named.text);
    assert_eq!(named.body["companyId"], other["id"]);
    assert_eq!(named.body["number"], 1);
    assert_problem(&raise(pid, "nope").await, 404, "company_not_found");
    // The product is checked first.
    assert_problem(&raise("nope", "nope").await, 404, "product_not_found");
    let archived = app
        .http
        .delete(&format!("/api/v1/products/{pid}"))
        .bearer(&app.admin)
        .send()
        .await;
    assert!(archived.status < 300, "{}", archived.text);
    assert_problem(&raise(pid, "nope").await, 409, "product_archived");
    let list = app.get("/api/v1/tickets").await;
    assert_eq!(list.body["pagination"]["total"], 1, "{}", list.text);
}
