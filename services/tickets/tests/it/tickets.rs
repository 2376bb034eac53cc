//! Tickets: raising, reading by id or key, listing, searching, editing and deleting.

use serde_json::{Value, json};

use crate::helpers::*;

async fn product(app: &TestApp) -> String {
    app.create_product("PAY", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_ticket_is_raised_triaged_numbered_and_read_by_id_or_key() {
    let app = spawn().await;
    let pid = product(&app).await;
    let t = app
        .raise(&pid, "Checkout is down", "All users get a 503 since 10:00")
        .await;
    assert_eq!(t["key"], "PAY-1");
    assert_eq!(t["number"], 1);
    assert_eq!(t["status"], "new");
    assert_eq!(t["severity"], "P0");
    assert_eq!(t["type"], "incident");
    assert_eq!(t["triage"]["provenance"]["source"], "rules");
    assert!(t["triage"]["confidence"].as_f64().unwrap() > 0.5);
    assert_eq!(t["requester"]["email"], "rita@customer.test");
    assert_eq!(t["sla"]["clock"], "running");
    assert!(t["slaDueAt"].is_string());
    assert_eq!(
        t["links"]["comments"],
        format!("/api/v1/tickets/{}/comments", t["id"].as_str().unwrap())
    );

    let second = app
        .raise(&pid, "How do I export invoices?", "Where is the button")
        .await;
    assert_eq!(second["key"], "PAY-2");
    assert_eq!(second["type"], "question");

    let by_key = app.get("/api/v1/tickets/PAY-1").await;
    assert_eq!(by_key.status, 200);
    assert_eq!(by_key.body["id"], t["id"]);
    assert_eq!(by_key.header("etag"), Some("\"1\""));
    let by_id = app
        .get(&format!("/api/v1/tickets/{}", t["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_id.body["key"], "PAY-1");
}

#[tokio::test]
async fn ticket_numbers_are_per_tenant() {
    let app = spawn().await;
    let pid = product(&app).await;
    app.raise(&pid, "One", "x").await;
    let other = app.issuer.token(OTHER_TENANT, "boss-b", &["*"]);
    let p = app
        .http
        .post("/api/v1/products")
        .bearer(&other)
        .json(&json!({"key": "WEB", "name": "Web"}))
        .send()
        .await;
    let t = app
        .raise_as(&other, p.body["id"].as_str().unwrap(), "First", "x")
        .await;
    assert_eq!(t.body["key"], "WEB-1", "{}", t.text);
    let peek = app
        .http
        .get("/api/v1/tickets/PAY-1")
        .bearer(&other)
        .send()
        .await;
    assert_problem(&peek, 404, "ticket_not_found");
}

#[tokio::test]
async fn bad_tickets_are_refused_naming_each_field() {
    let app = spawn().await;
    let pid = product(&app).await;
    let a = app
        .http
        .post("/api/v1/tickets")
        .bearer(&app.admin)
        .json(&json!({"productId": pid, "title": "", "description": "x", "requester": {"name": "R", "email": "nope"}, "channel": "fax", "tags": ["has space"]}))
        .send()
        .await;
    for field in ["title", "requester.email", "channel", "tags"] {
        assert_invalid_field(&a, field);
    }
    let a = app
        .http
        .post("/api/v1/tickets")
        .bearer(&app.admin)
        .json(&json!({"productId": pid, "title": "t", "description": "x", "channel": "web"}))
        .send()
        .await;
    assert_invalid_field(&a, "requester");
    let a = app
        .http
        .post("/api/v1/tickets")
        .bearer(&app.admin)
        .json(&json!({"productId": "missing", "title": "t", "description": "x", "requester": {"name": "R", "email": "r@x.test"}, "channel": "web"}))
        .send()
        .await;
    assert_problem(&a, 404, "product_not_found");
    let a = app
        .http
        .post("/api/v1/tickets")
        .body("text/plain", "hi")
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.status, 415, "{}", a.text);
    let none = app
        .http
        .post("/api/v1/tickets")
        .json(&json!({}))
        .send()
        .await;
    assert_problem(&none, 401, "missing_token");
    let weak = app.token("weak", &["ticket.read"]);
    let a = app.raise_as(&weak, &pid, "t", "x").await;
    assert_problem(&a, 403, "permission_denied");
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_ticket_and_another_body_is_a_422() {
    let app = spawn().await;
    let pid = product(&app).await;
    let body = json!({"productId": pid, "title": "Login fails", "description": "error 500", "requester": {"name": "R", "email": "r@x.test"}, "channel": "api"});
    let send = |b: &Value| {
        app.http
            .post("/api/v1/tickets")
            .bearer(&app.admin)
            .header("idempotency-key", "k-1")
            .json(b)
            .send()
    };
    let first = send(&body).await;
    assert_eq!(first.status, 201);
    let again = send(&body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["key"], "PAY-1");
    let mut other = body.clone();
    other["title"] = json!("Something else");
    assert_problem(&send(&other).await, 422, "idempotency_key_reused");
    let list = app.get("/api/v1/tickets").await;
    assert_eq!(
        list.body["pagination"]["total"], 1,
        "one ticket, however many retries"
    );
    let bad = app
        .http
        .post("/api/v1/tickets")
        .bearer(&app.admin)
        .header("idempotency-key", "")
        .json(&body)
        .send()
        .await;
    assert_invalid_field(&bad, "Idempotency-Key");
}

#[tokio::test]
async fn lists_filter_sort_and_paginate() {
    let app = spawn().await;
    let pid = product(&app).await;
    let (agent, _) = app.agent("ann").await;
    let down = app
        .raise(&pid, "Site is down", "all users affected, outage")
        .await;
    let q = app.raise(&pid, "How do I change my plan", "question").await;
    let bug = app
        .raise(&pid, "Export crashes", "the export crashes with an error")
        .await;
    let id = |t: &Value| t["id"].as_str().unwrap().to_owned();
    app.http
        .patch(&format!("/api/v1/tickets/{}/assign", id(&bug)))
        .bearer(&app.admin)
        .json(&json!({"userId": agent}))
        .send()
        .await;
    app.status(&id(&q), "pending").await;
    app.http
        .patch(&format!("/api/v1/tickets/{}", id(&down)))
        .bearer(&app.admin)
        .json(&json!({"tags": ["outage", "eu"]}))
        .send()
        .await;

    let total = |a: &fleetdesk_testkit::Answer| a.body["pagination"]["total"].as_i64().unwrap();
    assert_eq!(
        total(&app.get("/api/v1/tickets?status=new,pending").await),
        3
    );
    assert_eq!(total(&app.get("/api/v1/tickets?status=pending").await), 1);
    assert_eq!(total(&app.get("/api/v1/tickets?severity=P0").await), 1);
    assert_eq!(total(&app.get("/api/v1/tickets?type=bug").await), 1);
    assert_eq!(
        total(
            &app.get(&format!("/api/v1/tickets?assigneeId={agent}"))
                .await
        ),
        1
    );
    assert_eq!(total(&app.get("/api/v1/tickets?assigneeId=none").await), 2);
    assert_eq!(total(&app.get("/api/v1/tickets?tag=EU").await), 1);
    assert_eq!(total(&app.get("/api/v1/tickets?channel=web").await), 3);
    assert_eq!(
        total(
            &app.get("/api/v1/tickets?requesterEmail=RITA@customer.test")
                .await
        ),
        3
    );
    assert_eq!(
        total(
            &app.get(&format!("/api/v1/tickets?productId={pid}&channel=email"))
                .await
        ),
        0
    );
    assert_eq!(
        total(
            &app.get(
                "/api/v1/tickets?createdFrom=2000-01-01T00:00:00Z&createdTo=2999-01-01T00:00:00Z"
            )
            .await
        ),
        3
    );
    assert_eq!(
        total(
            &app.get("/api/v1/tickets?updatedSince=2999-01-01T00:00:00Z")
                .await
        ),
        0
    );

    let by_severity = app.get("/api/v1/tickets?sort=severity").await;
    assert_eq!(by_severity.body["data"][0]["severity"], "P0");
    let newest = app.get("/api/v1/tickets").await;
    assert_eq!(
        newest.body["data"][0]["key"], "PAY-3",
        "newest first by default"
    );
    let oldest = app
        .get("/api/v1/tickets?sort=createdAt&limit=2&page=2")
        .await;
    assert_eq!(oldest.body["data"][0]["key"], "PAY-3");
    assert_eq!(oldest.body["pagination"]["pages"], 2);
    let due = app.get("/api/v1/tickets?sort=slaDue").await;
    assert_eq!(
        due.body["data"][2]["status"], "pending",
        "a paused clock sorts last"
    );

    for (query, field) in [
        ("status=done", "status"),
        ("severity=P7", "severity"),
        ("sort=title", "sort"),
        ("createdFrom=yesterday", "createdFrom"),
        ("limit=500", "limit"),
        ("q=%20--%20", "q"),
    ] {
        let a = app.get(&format!("/api/v1/tickets?{query}")).await;
        assert_invalid_field(&a, field);
    }
}

#[tokio::test]
async fn search_finds_words_in_titles_descriptions_and_comments_but_internal_notes_only_for_those_who_may_read_them()
 {
    let app = spawn().await;
    let pid = product(&app).await;
    let a = app
        .raise(&pid, "Invoice totals wrong", "The VAT line is missing")
        .await;
    let b = app.raise(&pid, "Login slow", "Takes a minute").await;
    let c = app.raise(&pid, "Dark mode", "please add").await;
    app.comment(
        b["id"].as_str().unwrap(),
        json!({"body": "Customer mentions the proxy cache", "visibility": "public"}),
    )
    .await;
    app.comment(
        c["id"].as_str().unwrap(),
        json!({"body": "Related to the ledger migration", "visibility": "internal"}),
    )
    .await;

    let keys = |a: &fleetdesk_testkit::Answer| -> Vec<String> {
        a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        keys(&app.get("/api/v1/tickets?q=vat").await),
        vec![a["key"].as_str().unwrap()]
    );
    assert_eq!(
        keys(&app.get("/api/v1/tickets?q=invoice%20totals").await).len(),
        1
    );
    assert_eq!(
        keys(&app.get("/api/v1/tickets?q=proxy").await),
        vec![b["key"].as_str().unwrap()]
    );
    assert_eq!(
        keys(&app.get("/api/v1/tickets?q=ledger").await),
        vec![c["key"].as_str().unwrap()]
    );
    assert!(
        keys(&app.get("/api/v1/tickets?q=invoice%20proxy").await).is_empty(),
        "every word must match"
    );
    let agent = app.token("reader", &["ticket.read"]);
    let hidden = app
        .http
        .get("/api/v1/tickets?q=ledger")
        .bearer(&agent)
        .send()
        .await;
    assert_eq!(
        hidden.body["pagination"]["total"], 0,
        "internal notes are not searchable without read_internal"
    );
    let injected = app.get("/api/v1/tickets?q=%22vat%22%20OR%20*").await;
    assert_eq!(
        injected.status, 200,
        "search syntax is not interpreted: {}",
        injected.text
    );
}

#[tokio::test]
async fn a_search_gives_the_same_pages_whether_found_among_the_newest_tickets_or_through_the_text_index()
 {
    // On PostgreSQL a search looks through the first `window` tickets of the list, then goes to
    // the text indexes for a word expected to be rare, or walks the list once for a common
    // one; small windows and thresholds send the same questions down every path. (Without
    // statistics PostgreSQL guesses 0.5 % of the rows for any word: below one of these
    // dozen tickets, so a threshold of 0 makes every word common.)
    let apps = [
        spawn_with_search(1, 1000.0).await,
        spawn_with_search(3, 1000.0).await,
        spawn_with_search(1, 0.0).await,
        spawn_with_search(3, 0.0).await,
        spawn_with_search(1000, 1000.0).await,
    ];
    for app in &apps {
        let pid = product(app).await;
        for i in 0..12 {
            let words = match i {
                0 => "common rare",
                1..=5 => "common refund",
                _ => "common",
            };
            let t = app
                .raise(&pid, &format!("Ticket {i}"), &format!("about {words}"))
                .await;
            if i == 2 {
                app.comment(
                    t["id"].as_str().unwrap(),
                    json!({"body": "the zebra again", "visibility": "public"}),
                )
                .await;
            }
            app.advance_minutes(1);
        }
    }
    let numbers = |a: &fleetdesk_testkit::Answer| -> Vec<String> {
        a.body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("a page: {}", a.text))
            .iter()
            .map(|t| t["key"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, total) in [
        ("q=common", 12_i64),
        ("q=common&sort=createdAt", 12),
        ("q=refund", 5),
        ("q=refund&sort=createdAt", 5),
        ("q=rare", 1),
        ("q=zebra", 1),
        ("q=common%20refund&sort=-severity", 5),
        ("q=nothing", 0),
    ] {
        for page in 1..=3_i64 {
            let path = format!("/api/v1/tickets?{query}&limit=2&page={page}");
            let mut answers = Vec::new();
            for app in &apps {
                answers.push(app.get(&path).await);
            }
            let expected = numbers(&answers[4]);
            let shown = 2 * (page - 1) + expected.len() as i64;
            assert_eq!(
                expected.len(),
                (total - 2 * (page - 1)).clamp(0, 2) as usize,
                "{path}: {}",
                answers[4].text
            );
            for answer in &answers {
                assert_eq!(answer.status, 200, "{path}: {}", answer.text);
                assert_eq!(numbers(answer), expected, "{path}: {}", answer.text);
                let counted = answer.body["pagination"]["total"].as_i64().unwrap();
                if answer.body["pagination"]["totalIsLowerBound"] == json!(true) {
                    assert!(
                        counted >= shown && counted <= total,
                        "{path}: a lower bound between what was shown and all: {}",
                        answer.text
                    );
                } else {
                    assert_eq!(counted, total, "{path}: {}", answer.text);
                }
            }
        }
    }
    // The farthest page a request can name: an empty page, on every path.
    for app in &apps {
        let far = app
            .get("/api/v1/tickets?q=common&limit=100&page=4294967295")
            .await;
        assert_eq!(far.status, 200, "{}", far.text);
        assert_eq!(far.body["data"], json!([]), "{}", far.text);
    }
}

#[tokio::test]
async fn a_ticket_is_edited_under_if_match_with_history_and_deleted_for_good() {
    let app = spawn().await;
    let pid = product(&app).await;
    let t = app.raise(&pid, "Typo on the pricing page", "pricng").await;
    let id = t["id"].as_str().unwrap();
    let patch = |etag: &str, body: Value| {
        app.http
            .patch(&format!("/api/v1/tickets/{id}"))
            .bearer(&app.admin)
            .header("if-match", etag)
            .json(&body)
            .send()
    };
    let changed = patch(
        "\"1\"",
        json!({"title": "Typo on pricing", "type": "task", "tags": ["web"]}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["title"], "Typo on pricing");
    assert_eq!(changed.body["version"], 2);
    let stale = patch("\"1\"", json!({"title": "Lost update"})).await;
    assert_problem(&stale, 412, "version_mismatch");
    let bad = patch("\"2\"", json!({"companyId": "nope"})).await;
    assert_invalid_field(&bad, "companyId");

    let history = app.get(&format!("/api/v1/tickets/{id}/history")).await;
    let fields: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["created", "title", "type", "tags"]);
    assert_eq!(history.body["data"][1]["from"], "Typo on the pricing page");
    assert_eq!(history.body["data"][1]["actor"], "admin-1");
    // The created entry is read off the ticket, the rest stored: pages of any size walk
    // the same history, and every page counts it.
    let created = &history.body["data"][0];
    assert_eq!(created["to"], t["key"]);
    assert_eq!(created["actor"], "admin-1");
    assert_eq!(created["at"], t["createdAt"]);
    assert_eq!(history.body["pagination"]["total"], 4);
    for limit in 1..=3 {
        let mut walked = Vec::new();
        for page in 1..=5 {
            let p = app
                .get(&format!(
                    "/api/v1/tickets/{id}/history?limit={limit}&page={page}"
                ))
                .await;
            assert_eq!(p.status, 200, "{}", p.text);
            assert_eq!(p.body["pagination"]["total"], 4, "{}", p.text);
            walked.extend(p.body["data"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(
            Value::Array(walked),
            history.body["data"],
            "pages of {limit}"
        );
    }

    let agent = app.token("agent", &["ticket.*"]);
    let deleted = app
        .http
        .delete(&format!("/api/v1/tickets/{id}"))
        .bearer(&agent)
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    assert_problem(
        &app.get(&format!("/api/v1/tickets/{id}")).await,
        404,
        "ticket_not_found",
    );
    assert_eq!(
        app.get("/api/v1/tickets").await.body["pagination"]["total"],
        0
    );
    let weak = app.token("weak", &["ticket.read", "ticket.update"]);
    let t2 = app.raise(&pid, "Another", "x").await;
    let refused = app
        .http
        .delete(&format!("/api/v1/tickets/{}", t2["id"].as_str().unwrap()))
        .bearer(&weak)
        .send()
        .await;
    assert_problem(&refused, 403, "permission_denied");
}

/// A create's write is one statement of one shape whatever the ticket holds (its tags go as
/// one array), so PostgreSQL keeps one prepared statement for it, found by type; every tag
/// lands.
#[tokio::test]
async fn a_creates_write_is_one_prepared_statement_on_postgres() {
    use fleetdesk_store::diesel::sql_types::Text;
    use fleetdesk_store::diesel::{QueryableByName, RunQueryDsl};

    // One connection: the one whose prepared statements PostgreSQL lists below.
    let app = spawn_with(&[("FLEETDESK_DB_POOL_SIZE", "1")]).await;
    if app.state.db.backend() != fleetdesk_store::Backend::Postgres {
        return; // SQLite keeps no plans on a server; nothing to check.
    }
    let pid = product(&app).await;
    for tags in [json!([]), json!(["eu"]), json!(["eu", "vip", "billing"])] {
        let a = app
            .http
            .post("/api/v1/tickets")
            .bearer(&app.admin)
            .json(&json!({
                "productId": pid, "title": "Export crashes", "description": "On large files",
                "requester": {"name": "Rita", "email": "rita@customer.test"},
                "channel": "api", "tags": tags
            }))
            .send()
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.body["tags"], tags);
    }
    let total = |a: &fleetdesk_testkit::Answer| a.body["pagination"]["total"].as_i64().unwrap();
    assert_eq!(total(&app.get("/api/v1/tickets?tag=eu").await), 2);
    assert_eq!(total(&app.get("/api/v1/tickets?tag=billing").await), 1);

    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = Text)]
        statement: String,
    }
    let kept = app
        .state
        .db
        .run(|c| {
            fleetdesk_store::diesel::sql_query("SELECT statement FROM pg_prepared_statements")
                .load::<Kept>(c)
                .map_err(fleetdesk_store::StoreError::from)
        })
        .await
        .unwrap();
    let writes = kept
        .iter()
        .filter(|k| k.statement.starts_with("WITH w0 AS (INSERT INTO tickets ("))
        .count();
    assert_eq!(writes, 1, "one prepared write for three shapes of ticket");
}

/// Creates that commit by themselves and arrive while another's runs go together: their reads
/// in one query, their writes in one statement (PostgreSQL). Each gets its own product, company,
/// number, key, clock, tags and event.
#[tokio::test]
async fn concurrent_creates_go_together_and_each_lands_whole() {
    let app = spawn_with(&[("FLEETDESK_DB_POOL_SIZE", "8")]).await;
    let pay = product(&app).await;
    let ops = app.create_product("OPS", json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let company = app
        .create_company(json!({"name": "Customer Corp", "identifier": "CUST-1", "emailDomains": ["customer.test"]}))
        .await;
    let postgres = app.state.db.backend() == fleetdesk_store::Backend::Postgres;
    let mut raised = Vec::new();
    // Rounds of concurrent creates until a query and a statement each carried several (the
    // first round, as a rule; on SQLite creates never go together). Even ones go to PAY from
    // the company's domain, odd ones to OPS from elsewhere.
    for round in 0..5 {
        let creates = (0..24).map(|i| {
            let n = round * 24 + i;
            let (pid, email) = if n % 2 == 0 {
                (&pay, "rita@customer.test")
            } else {
                (&ops, "otto@elsewhere.test")
            };
            app.http
                .post("/api/v1/tickets")
                .bearer(&app.admin)
                .json(&json!({
                    "productId": pid, "title": format!("Export {n} crashes"),
                    "description": "On large files",
                    "requester": {"name": "Rita", "email": email},
                    "channel": "api", "tags": ["batch", format!("n{n}")]
                }))
                .send()
        });
        for a in futures_util::future::join_all(creates).await {
            assert_eq!(a.status, 201, "{}", a.text);
            raised.push(a.body);
        }
        let (statements, writes) = app.state.creates.counts();
        let (queries, reads) = app.state.creates.read_counts();
        if !postgres || (writes > statements && reads > queries) {
            break;
        }
    }
    let (statements, writes) = app.state.creates.counts();
    let (queries, reads) = app.state.creates.read_counts();
    if postgres {
        assert!(
            writes > statements,
            "{writes} writes in {statements} statements"
        );
        assert!(reads > queries, "{reads} reads in {queries} queries");
        assert_eq!(writes, raised.len() as u64);
        assert_eq!(reads, raised.len() as u64);
    } else {
        assert_eq!((statements, writes, queries, reads), (0, 0, 0, 0));
    }
    for t in &raised {
        let n: u32 = t["title"]
            .as_str()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let (pid, prefix, company_id) = if n.is_multiple_of(2) {
            (&pay, "PAY-", company["id"].clone())
        } else {
            (&ops, "OPS-", Value::Null)
        };
        assert_eq!(t["productId"], json!(pid), "{t}");
        assert!(t["key"].as_str().unwrap().starts_with(prefix), "{t}");
        assert_eq!(t["companyId"], company_id, "{t}");
    }

    let mut numbers: Vec<i64> = raised
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        raised.len(),
        "every create has its own number"
    );
    let total = |a: &fleetdesk_testkit::Answer| a.body["pagination"]["total"].as_i64().unwrap();
    assert_eq!(
        total(&app.get("/api/v1/tickets?tag=batch").await),
        raised.len() as i64
    );
    assert_eq!(app.outbox("ticket.created").await, raised.len() as i64);
    for t in &raised {
        let title = t["title"].as_str().unwrap();
        let n = title.split(' ').nth(1).unwrap();
        let read = app
            .get(&format!("/api/v1/tickets/{}", t["key"].as_str().unwrap()))
            .await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.body["id"], t["id"]);
        assert_eq!(read.body["title"], title);
        assert_eq!(read.body["tags"], json!(["batch", format!("n{n}")]));
        assert_eq!(
            total(&app.get(&format!("/api/v1/tickets?tag=n{n}")).await),
            1
        );
        let sla = app
            .get(&format!(
                "/api/v1/tickets/{}/sla",
                t["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(sla.status, 200, "{}", sla.text);
        assert_eq!(sla.body["clock"], "running");
        assert_eq!(sla.body["resolution"]["dueAt"], t["sla"]["resolutionDueAt"]);
        assert_eq!(sla.body["ledger"][0]["kind"], "start");
    }
}
