//! What is stored: no plaintext secret anywhere in the database, ciphertexts bound to their
//! place, and a vault that refuses to start with the wrong master key.

use diesel::prelude::*;
use diesel::sql_types::Text;
use fleetdesk_store::StoreError;
use fleetdesk_vault::crypto::KeyBytes;
use fleetdesk_vault::store::schema::credential_values;
use serde_json::json;

use crate::helpers::*;

/// Every text of every row of every table, as one string per row.
async fn dump(app: &TestApp) -> Vec<String> {
    app.state
        .db
        .run(|c| {
            #[derive(QueryableByName)]
            struct Name {
                #[diesel(sql_type = Text)]
                name: String,
            }
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = Text)]
                row: String,
            }
            let tables: Vec<Name> = match c {
                fleetdesk_store::DbConn::Pg(_) => diesel::sql_query(
                    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()",
                )
                .load(c)?,
                fleetdesk_store::DbConn::Sqlite(_) => diesel::sql_query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .load(c)?,
            };
            let mut out = Vec::new();
            for t in tables {
                let sql = match c {
                    fleetdesk_store::DbConn::Pg(_) => format!("SELECT CAST(t.* AS TEXT) AS row FROM \"{}\" t", t.name),
                    fleetdesk_store::DbConn::Sqlite(_) => {
                        // SQLite has no row-to-text cast: concatenate every column.
                        #[derive(QueryableByName)]
                        struct Col {
                            #[diesel(sql_type = Text)]
                            name: String,
                        }
                        let cols: Vec<Col> = diesel::sql_query(format!("SELECT name FROM pragma_table_info('{}')", t.name)).load(c)?;
                        let expr = cols.iter().map(|col| format!("COALESCE(CAST(\"{}\" AS TEXT), '')", col.name)).collect::<Vec<_>>().join(" || '|' || ");
                        format!("SELECT {expr} AS row FROM \"{}\"", t.name)
                    }
                };
                for r in diesel::sql_query(sql).load::<Row>(c)? {
                    out.push(format!("{}: {}", t.name, r.row));
                }
            }
            Ok::<_, StoreError>(out)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn no_table_holds_a_secret_in_the_clear() {
    let app = spawn().await;
    let ty = app.login_type("Database", Some("db.credentials")).await;
    let company = app.company(TENANT, "Acme").await;
    let secrets = [
        "Tr0ub4dor&3-first",
        "Tr0ub4dor&3-second",
        "Tr0ub4dor&3-third",
    ];
    let cred = app
        .credential(ty["id"].as_str().unwrap(), &company, secrets[0])
        .await;
    let id = cred["id"].as_str().unwrap();
    for s in &secrets[1..] {
        let a = app
            .http
            .patch(&format!("/api/v1/credentials/{id}"))
            .bearer(&app.admin)
            .json(&json!({"fields": [{"fieldId": "password", "value": s}]}))
            .send()
            .await;
        assert_eq!(a.status, 200);
    }
    let a = app
        .http
        .get(&format!(
            "/api/v1/credentials/{id}/secure-values?reason=check"
        ))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(a.body["values"]["password"], secrets[2]);
    let rows = dump(&app).await;
    assert!(
        rows.iter().any(|r| r.contains("dbadmin")),
        "the dump sees plain values"
    );
    assert!(rows.iter().any(|r| r.starts_with("credential_values")));
    for s in secrets {
        for r in &rows {
            assert!(!r.contains(s), "{s} is stored in the clear: {r}");
        }
    }
    assert!(
        !rows.iter().any(|r| r.contains(&app.master_key)),
        "the master key is not stored"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_credential_or_field_is_an_integrity_error() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let type_id = ty["id"].as_str().unwrap();
    let company = app.company(TENANT, "Acme").await;
    let a = app.credential(type_id, &company, "alpha-secret").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.credential(type_id, &company, "bravo-secret").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Copy a's sealed password over b's.
    let (a2, b2) = (a.clone(), b.clone());
    app.state
        .db
        .run(move |c| {
            let sealed: Option<String> = credential_values::table
                .filter(credential_values::credential_id.eq(&a2))
                .filter(credential_values::field_id.eq("password"))
                .select(credential_values::value)
                .first(c)?;
            diesel::update(
                credential_values::table
                    .filter(credential_values::credential_id.eq(&b2))
                    .filter(credential_values::field_id.eq("password")),
            )
            .set(credential_values::value.eq(sealed))
            .execute(c)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let r = app
        .http
        .get(&format!("/api/v1/credentials/{b}/secure-values"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_problem(&r, 500, "integrity_error");
    assert!(!r.text.contains("alpha") && !r.text.contains("bravo"));
    // a itself is untouched, and no reveal was recorded for the failed one.
    let r = app
        .http
        .get(&format!("/api/v1/credentials/{a}/secure-values"))
        .bearer(&app.admin)
        .send()
        .await;
    assert_eq!(r.body["values"]["password"], "alpha-secret");
    let reveals = app
        .outbox()
        .await
        .into_iter()
        .filter(|(t, _)| t == "credential.secret_revealed")
        .count();
    assert_eq!(reveals, 1);
}

#[tokio::test]
async fn the_vault_refuses_to_start_with_another_master_key() {
    let app = spawn().await;
    let ty = app.login_type("Database", None).await;
    let company = app.company(TENANT, "Acme").await;
    app.credential(ty["id"].as_str().unwrap(), &company, "kept")
        .await;
    let db = app.db.clone();
    let original = app.master_key.clone();
    app.stop_background();

    let wrong = KeyBytes::generate().to_base64().to_string();
    let refused = spawn_on(db.clone(), &wrong).await;
    let message = refused.err().expect("a wrong key is refused").to_string();
    assert!(message.contains("does not match"), "{message}");

    // The right key still opens everything.
    let again = spawn_on(db, &original)
        .await
        .expect("the original key starts");
    let list = again
        .http
        .get("/api/v1/credentials")
        .bearer(&again.admin)
        .send()
        .await;
    let id = list.body["data"][0]["id"].as_str().unwrap();
    let r = again
        .http
        .get(&format!("/api/v1/credentials/{id}/secure-values"))
        .bearer(&again.admin)
        .send()
        .await;
    assert_eq!(r.body["values"]["password"], "kept");
}
