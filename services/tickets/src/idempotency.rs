//! `Idempotency-Key` on creates: a retry with the same key and body gets the first response;
//! the same key with another body is a 422. The remembered response commits in the same
//! transaction as the create, so a key can never point at a create that did not happen.

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDateTime};
use fleetdesk_store::{DbConn, StoreError};
use fleetdesk_web::error::ErrorKind;
use fleetdesk_web::{ApiError, Caller};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::store::idempotency::{self, IdempotencyRow};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::hours(24);

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let value = req.headers().get("idempotency-key").map(|v| {
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    )
                })
        });
        std::future::ready(match value {
            None => Ok(IdempotencyKey(None)),
            Some(Ok(k)) => Ok(IdempotencyKey(Some(k))),
            Some(Err(e)) => Err(e),
        })
    }
}

fn fingerprint(route: &str, body: &impl Serialize) -> Result<String, ApiError> {
    let json = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(&json);
    Ok(format!("{:x}", h.finalize()))
}

/// What a create produced.
pub struct Created {
    pub status: StatusCode,
    /// The response body, as JSON text (made once: sent, and remembered under a key).
    pub body: String,
}

impl Created {
    /// `status` with `view` as its body.
    pub fn new(status: StatusCode, view: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Self {
            status,
            body: serde_json::to_string(view).map_err(ApiError::internal)?,
        })
    }

    pub fn respond(self, replayed: bool) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if replayed {
            response.insert_header(("idempotent-replayed", "true"));
        }
        response
            .content_type(actix_web::http::header::ContentType::json())
            .body(self.body)
    }
}

fn replay(row: &IdempotencyRow, hash: &str) -> Result<Created, ApiError> {
    if row.request_hash != hash {
        return Err(ApiError::new(
            ErrorKind::Unprocessable,
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request",
        ));
    }
    Ok(Created {
        status: StatusCode::from_u16(u16::try_from(row.status).unwrap_or(201))
            .unwrap_or(StatusCode::CREATED),
        body: row.body.clone(),
    })
}

/// Runs `create` in a transaction, once per key: the first response is remembered with it,
/// in the same transaction, and a retry gets that response (with `Idempotent-Replayed: true`).
pub async fn once<F>(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    route: &'static str,
    request: &impl Serialize,
    create: F,
) -> Result<HttpResponse, ApiError>
where
    F: Fn(&mut DbConn) -> Result<Created, ApiError> + Send + Sync + Clone + 'static,
{
    let Some(key) = key.0 else {
        let created = state.db.transaction(create).await?;
        return Ok(created.respond(false));
    };
    let hash = fingerprint(route, request)?;
    let (tenant, who) = (caller.tenant_id.clone(), caller.actor());
    // Two attempts: a concurrent first use of the same key makes ours fail on the key's
    // primary key; the second attempt then finds its response.
    for attempt in 0..2 {
        let now: NaiveDateTime = state.clock.now().naive_utc();
        let since = now - KEEP;
        let (tenant, who, key, hash, create) = (
            tenant.clone(),
            who.clone(),
            key.clone(),
            hash.clone(),
            create.clone(),
        );
        let result = state
            .db
            .transaction(move |conn| {
                if let Some(row) = idempotency::find(conn, &tenant, &who, &key, since)? {
                    return replay(&row, &hash).map(|c| (c, true));
                }
                let created = create(conn)?;
                idempotency::insert(
                    conn,
                    &IdempotencyRow {
                        tenant_id: tenant,
                        caller: who,
                        key,
                        request_hash: hash,
                        status: i32::from(created.status.as_u16()),
                        body: created.body.clone(),
                        created_at: now,
                    },
                    since,
                )?;
                Ok::<_, ApiError>((created, false))
            })
            .await;
        match result {
            Ok((created, replayed)) => return Ok(created.respond(replayed)),
            Err(e) if attempt == 0 && e.kind() == ErrorKind::Conflict && e.code() == "conflict" => {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::from(StoreError::Conflict(
        "idempotency key".into(),
    )))
}
