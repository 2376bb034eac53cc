//! Credentials: typed field values, secure ones sealed; audited reveals; history and restore.

use std::collections::BTreeMap;

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put};
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::vault as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, etag, with_etag};
use fleetdesk_web::{ApiError, Caller, FieldErrors, Json, Query, Require};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use zeroize::Zeroizing;

use super::search_text;
use crate::AppState;
use crate::crypto;
use crate::domain::one_line;
use crate::domain::types::scope_node;
use crate::domain::values::{self, Mode, ValueInput};
use crate::keys::Keyring;
use crate::secrets;
use crate::store::credentials::{self as store, CredentialRow, Filter, NewValue, ValueRow};
use crate::store::types::TypeRow;
use crate::store::{companies, contains_pattern, lower, settings, types};
use crate::views::{
    CredentialView, FieldVersionView, RevealedFieldView, RevealedView, StoredFieldView, defs_of,
    utc,
};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_credentials)
        .service(create_credential)
        .service(get_credential)
        .service(update_credential)
        .service(put_fields)
        .service(get_fields)
        .service(reveal_all)
        .service(reveal_one)
        .service(field_history)
        .service(restore_field)
        .service(delete_credential);
}

pub fn credential_not_found() -> ApiError {
    ApiError::not_found("credential_not_found", "no such credential in this tenant")
}

/// A credential of the tenant with its type, or 404.
pub fn load(
    conn: &mut DbConn,
    tenant_id: &str,
    id: &str,
) -> Result<(CredentialRow, TypeRow), ApiError> {
    let row = store::find(conn, tenant_id, id)?.ok_or_else(credential_not_found)?;
    let ty = types::find(conn, tenant_id, &row.type_id)?
        .ok_or_else(|| ApiError::internal("a credential's type is missing"))?;
    Ok((row, ty))
}

fn view(conn: &mut DbConn, row: CredentialRow, ty: &TypeRow) -> Result<CredentialView, ApiError> {
    let values = store::current_values(conn, std::slice::from_ref(&row.id))?;
    let company = companies::find(conn, &row.tenant_id, &row.company_id)?.map(|c| c.name);
    Ok(CredentialView::new(row, ty, company, &values))
}

pub(super) fn state_of(row: &CredentialRow) -> ev::CredentialState {
    ev::CredentialState {
        credential_id: row.id.clone(),
        name: row.name.clone(),
        type_id: row.type_id.clone(),
        company_id: row.company_id.clone(),
    }
}

fn check_notes(notes: &str) -> Result<String, String> {
    if notes.chars().count() > 10_000 {
        Err("must be at most 10000 characters".into())
    } else {
        Ok(notes.trim().to_owned())
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CredentialListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    pub company_id: Option<String>,
    pub type_id: Option<String>,
    /// Text in the name.
    pub q: Option<String>,
}

/// A page of the tenant's credentials for a query (also used by a type's credential list).
pub async fn list_for(
    state: &AppState,
    tenant: String,
    query: CredentialListQuery,
) -> Result<Paginated<CredentialView>, ApiError> {
    let page = Page::new(query.page, query.limit)?;
    let q = search_text(query.q)?;
    let filter = Filter {
        company_id: query.company_id,
        type_id: query.type_id,
        name_like: q.map(|q| contains_pattern(&lower(&q))),
    };
    state
        .db
        .run(move |conn| {
            let (rows, total) =
                store::list(conn, &tenant, &filter, page.offset(), page.limit_i64())?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let values = store::current_values(conn, &ids)?;
            let company_ids: Vec<String> = rows.iter().map(|r| r.company_id.clone()).collect();
            let names = companies::names(conn, &company_ids)?;
            let mut type_cache: BTreeMap<String, TypeRow> = BTreeMap::new();
            let mut data = Vec::with_capacity(rows.len());
            for row in rows {
                if !type_cache.contains_key(&row.type_id)
                    && let Some(t) = types::find(conn, &tenant, &row.type_id)?
                {
                    type_cache.insert(t.id.clone(), t);
                }
                let Some(ty) = type_cache.get(&row.type_id) else {
                    continue;
                };
                let mine: Vec<ValueRow> = values
                    .iter()
                    .filter(|v| v.credential_id == row.id)
                    .cloned()
                    .collect();
                let company = names
                    .iter()
                    .find(|(id, _)| *id == row.company_id)
                    .map(|(_, n)| n.clone());
                data.push(CredentialView::new(row, ty, company, &mine));
            }
            Ok::<_, ApiError>(page.wrap(data, total))
        })
        .await
}

/// The tenant's credentials, by name; values of secure fields are `null`.
#[utoipa::path(tag = "credentials", params(CredentialListQuery), responses((status = 200, body = Paginated<CredentialView>)), security(("bearer" = ["credential.read"])))]
#[get("/credentials")]
async fn list_credentials(
    state: Data<AppState>,
    caller: Require<perm::CredentialRead>,
    query: Query<CredentialListQuery>,
) -> Result<HttpResponse, ApiError> {
    let list = list_for(&state, caller.tenant_id.clone(), query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCredential {
    pub name: String,
    #[serde(default)]
    pub notes: String,
    pub type_id: String,
    /// A company of the tenant (as tickets announced it).
    pub company_id: String,
    pub fields: Vec<ValueInput>,
}

/// Create a credential; secure values are sealed before they are stored.
#[utoipa::path(tag = "credentials", request_body = NewCredential, responses((status = 201, body = CredentialView), (status = 400, description = "`validation_failed` naming each field and rule")), security(("bearer" = ["credential.create"])))]
#[post("/credentials")]
async fn create_credential(
    state: Data<AppState>,
    caller: Require<perm::CredentialCreate>,
    body: Json<NewCredential>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", one_line(&body.name, 200));
    let notes = errors.check("notes", check_notes(&body.notes));
    if body.type_id.trim().is_empty() {
        errors.push("typeId", "is required");
    }
    if body.company_id.trim().is_empty() {
        errors.push("companyId", "is required");
    }
    errors.finish()?;
    let (Some(name), Some(notes)) = (name, notes) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let tenant = caller.tenant_id.clone();
    let origin = caller.origin(state.clock.now());
    let actor = caller.actor();
    let now = state.clock.now().naive_utc();
    let st = state.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let ty = types::find(conn, &tenant, &body.type_id)?.ok_or_else(|| {
                ApiError::invalid_field("typeId", "is not a credential type of this tenant")
            })?;
            if companies::find(conn, &tenant, &body.company_id)?.is_none() {
                return Err(ApiError::invalid_field(
                    "companyId",
                    "is not a company of this tenant",
                ));
            }
            let defs = defs_of(&ty);
            let mut errors = FieldErrors::default();
            let checked = values::check(
                &defs,
                &body.fields,
                Mode::Complete,
                &[],
                "fields",
                &mut errors,
            );
            errors.finish()?;
            let checked = checked.unwrap_or_default();
            let id = new_id();
            let (dk, wrapped, kek_version) = st.ring.new_data_key(conn, &tenant, &id)?;
            let row = CredentialRow {
                id,
                tenant_id: tenant.clone(),
                type_id: ty.id.clone(),
                company_id: body.company_id.clone(),
                name_lower: lower(&name),
                name,
                notes,
                data_key: wrapped,
                kek_version,
                version: 1,
                created_by: actor.clone(),
                updated_by: actor.clone(),
                created_at: now,
                updated_at: now,
            };
            store::insert(conn, &row)?;
            if !Keyring::still_active(conn, kek_version)? {
                return Err(ApiError::unavailable(
                    "key_rotating",
                    "the vault's key version changed during this request; retry",
                    1,
                ));
            }
            let field_ids = secrets::write(conn, &dk, &row, &[], checked, &actor, now)?;
            emit(
                conn,
                &origin,
                &ev::CredentialCreated {
                    credential: state_of(&row),
                    field_ids,
                },
            )?;
            view(conn, row, &ty)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("etag", etag(view.version)))
        .json(view))
}

/// One credential; values of secure fields are `null` (reveal them with `secure-values`).
#[utoipa::path(tag = "credentials", responses((status = 200, body = CredentialView), (status = 404, description = "`credential_not_found`")), security(("bearer" = ["credential.read"])))]
#[get("/credentials/{id}")]
async fn get_credential(
    state: Data<AppState>,
    caller: Require<perm::CredentialRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .run(move |conn| {
            let (row, ty) = load(conn, &tenant, &id)?;
            view(conn, row, &ty)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialUpdate {
    pub name: Option<String>,
    pub notes: Option<String>,
    /// Values to change; fields not named keep theirs. `null` clears an optional field.
    pub fields: Option<Vec<ValueInput>>,
}

/// Writes a name/notes/value change as one new version of the credential.
#[allow(clippy::too_many_arguments)]
fn apply_change(
    conn: &mut DbConn,
    st: &AppState,
    origin: &Origin,
    (row, ty): (CredentialRow, TypeRow),
    name: Option<String>,
    notes: Option<String>,
    fields: Option<(&[ValueInput], Mode)>,
    actor: &str,
    now: chrono::NaiveDateTime,
) -> Result<CredentialView, ApiError> {
    let mut changed = Vec::new();
    let mut field_ids = Vec::new();
    if let Some((input, mode)) = fields {
        let current = store::current_values(conn, std::slice::from_ref(&row.id))?;
        let present: Vec<String> = current
            .iter()
            .filter(|v| v.value.is_some())
            .map(|v| v.field_id.clone())
            .collect();
        let mut errors = FieldErrors::default();
        let checked = values::check(&defs_of(&ty), input, mode, &present, "fields", &mut errors);
        errors.finish()?;
        let dk = secrets::data_key(conn, &st.ring, &row)?;
        field_ids = secrets::write(
            conn,
            &dk,
            &row,
            &current,
            checked.unwrap_or_default(),
            actor,
            now,
        )?;
        if !field_ids.is_empty() {
            changed.push("fields".to_owned());
        }
    }
    if name.as_ref().is_some_and(|n| *n != row.name) {
        changed.push("name".to_owned());
    }
    if notes.as_ref().is_some_and(|n| *n != row.notes) {
        changed.push("notes".to_owned());
    }
    let new_name = name.unwrap_or_else(|| row.name.clone());
    let new_notes = notes.unwrap_or_else(|| row.notes.clone());
    if !changed.is_empty() {
        if !store::touch(conn, &row, &new_name, &new_notes, actor, now)? {
            return Err(ApiError::stale_version(
                "the credential changed meanwhile; reload and retry",
            ));
        }
        let (fresh, _) = load(conn, &row.tenant_id, &row.id)?;
        emit(
            conn,
            origin,
            &ev::CredentialUpdated {
                credential: state_of(&fresh),
                changed,
                field_ids,
                restored_version: None,
            },
        )?;
        return view(conn, fresh, &ty);
    }
    view(conn, row, &ty)
}

/// Change a credential's name, notes or some field values (each change kept as a version).
#[utoipa::path(
    tag = "credentials",
    request_body = CredentialUpdate,
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = CredentialView), (status = 404, description = "`credential_not_found`"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["credential.update"]))
)]
#[patch("/credentials/{id}")]
async fn update_credential(
    state: Data<AppState>,
    caller: Require<perm::CredentialUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<CredentialUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = body
        .name
        .as_deref()
        .and_then(|n| errors.check("name", one_line(n, 200)));
    let notes = body
        .notes
        .as_deref()
        .and_then(|n| errors.check("notes", check_notes(n)));
    errors.finish()?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let actor = caller.actor();
    let now = state.clock.now().naive_utc();
    let st = state.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let loaded = load(conn, &tenant, &id)?;
            if_match.check(loaded.0.version)?;
            let fields = body.fields.as_deref().map(|f| (f, Mode::Partial));
            apply_change(conn, &st, &origin, loaded, name, notes, fields, &actor, now)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldsBody {
    /// Every value the credential has from now on: required fields must be there, fields left
    /// out are cleared.
    pub fields: Vec<ValueInput>,
}

/// Replace every field value of a credential.
#[utoipa::path(
    tag = "credentials",
    request_body = FieldsBody,
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = CredentialView), (status = 404, description = "`credential_not_found`"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["credential.fields.update"]))
)]
#[put("/credentials/{id}/fields")]
async fn put_fields(
    state: Data<AppState>,
    caller: Require<perm::CredentialFieldsUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<FieldsBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let actor = caller.actor();
    let now = state.clock.now().naive_utc();
    let st = state.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let loaded = load(conn, &tenant, &id)?;
            if_match.check(loaded.0.version)?;
            let fields = Some((body.fields.as_slice(), Mode::Complete));
            apply_change(conn, &st, &origin, loaded, None, None, fields, &actor, now)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// The stored field values: plain ones as they are, secure ones only as ciphertext.
#[utoipa::path(tag = "credentials", responses((status = 200, body = Vec<StoredFieldView>), (status = 404, description = "`credential_not_found`")), security(("bearer" = ["credential.fields.read"])))]
#[get("/credentials/{id}/fields")]
async fn get_fields(
    state: Data<AppState>,
    caller: Require<perm::CredentialFieldsRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let list = state
        .db
        .run(move |conn| {
            let (row, _) = load(conn, &tenant, &id)?;
            let values = store::current_values(conn, std::slice::from_ref(&row.id))?;
            let kek = crypto::wrapped_kek_version(&row.data_key).unwrap_or(row.kek_version);
            Ok::<_, ApiError>(
                values
                    .iter()
                    .map(|v| StoredFieldView::new(v, kek))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct RevealQuery {
    /// Why you need the secret (or the `X-Reveal-Reason` header); recorded in the audit log,
    /// required when the tenant's vault settings say so.
    pub reason: Option<String>,
}

/// The reveal reason from the query or the header, checked.
fn reveal_reason(req: &HttpRequest, query: RevealQuery) -> Result<Option<String>, ApiError> {
    let header = req
        .headers()
        .get("x-reveal-reason")
        .map(|h| {
            h.to_str().map(str::to_owned).map_err(|_| {
                ApiError::invalid_field("X-Reveal-Reason", "must be visible ASCII text")
            })
        })
        .transpose()?;
    let reason = query
        .reason
        .or(header)
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    match reason {
        Some(r) if r.chars().count() > 500 || r.contains(['\n', '\r']) => Err(
            ApiError::invalid_field("reason", "must be one line of at most 500 characters"),
        ),
        other => Ok(other),
    }
}

/// Checks the caller may reveal this type's secrets: `credential.secure_values.read` (from
/// the route), the type's `<scope>.read`, and a reason where the tenant requires one.
fn may_reveal(
    conn: &mut DbConn,
    caller: &Caller,
    ty: &TypeRow,
    reason: &Option<String>,
) -> Result<(), ApiError> {
    if let Some(scope) = &ty.permission_scope {
        caller.require(&scope_node(scope))?;
    }
    if reason.is_none() && settings::require_reason(conn, &caller.tenant_id)? {
        return Err(ApiError::invalid_field(
            "reason",
            "this tenant requires a reason for every reveal (query `reason` or header `X-Reveal-Reason`)",
        ));
    }
    Ok(())
}

/// Records a reveal in the caller's transaction: the audit event (never the values) and the
/// metric. The values are returned only if this commits.
fn record_reveal(
    conn: &mut DbConn,
    origin: &Origin,
    row: &CredentialRow,
    field_ids: Vec<String>,
    reason: Option<String>,
) -> Result<(), ApiError> {
    emit(
        conn,
        origin,
        &ev::CredentialSecretRevealed {
            credential: state_of(row),
            field_ids,
            version: None,
            reason,
        },
    )?;
    metrics::counter!("vault_reveals_total").increment(1);
    Ok(())
}

fn no_store(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Reveal every secure value of a credential. Audited: publishes `credential.secret_revealed`
/// (who, which fields, why; never the values) in the same transaction.
#[utoipa::path(tag = "credentials", params(RevealQuery, ("X-Reveal-Reason" = Option<String>, Header, description = "The reason, instead of the query")), responses((status = 200, body = RevealedView), (status = 403, description = "`permission_denied` (also for a type's scope node)"), (status = 404, description = "`credential_not_found`")), security(("bearer" = ["credential.secure_values.read"])))]
#[get("/credentials/{id}/secure-values")]
async fn reveal_all(
    state: Data<AppState>,
    caller: Require<perm::CredentialSecureValuesRead>,
    id: Path<String>,
    query: Query<RevealQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let reason = reveal_reason(&req, query.into_inner())?;
    let caller = caller.into_inner();
    let id = id.into_inner();
    let origin = caller.origin(state.clock.now());
    let st = state.clone();
    let out = state
        .db
        .transaction(move |conn| {
            let (row, ty) = load(conn, &caller.tenant_id, &id)?;
            may_reveal(conn, &caller, &ty, &reason)?;
            let current = store::current_values(conn, std::slice::from_ref(&row.id))?;
            let dk = secrets::data_key(conn, &st.ring, &row)?;
            let mut values = BTreeMap::new();
            for v in current.iter().filter(|v| v.secure) {
                if let Some(plain) = secrets::open(&dk, &row, v)? {
                    values.insert(v.field_id.clone(), plain.to_string());
                }
            }
            record_reveal(
                conn,
                &origin,
                &row,
                values.keys().cloned().collect(),
                reason,
            )?;
            Ok::<_, ApiError>(RevealedView {
                credential_id: row.id,
                values,
            })
        })
        .await?;
    let resp = no_store(HttpResponse::Ok().json(&out));
    for v in out.values.into_values() {
        drop(Zeroizing::new(v));
    }
    Ok(resp)
}

/// Reveal one secure value (audited like every reveal).
#[utoipa::path(tag = "credentials", params(RevealQuery), responses((status = 200, body = RevealedFieldView), (status = 403, description = "`permission_denied`"), (status = 404, description = "`credential_not_found`, `secure_field_not_found`")), security(("bearer" = ["credential.secure_values.read"])))]
#[get("/credentials/{id}/secure-values/{fieldId}")]
async fn reveal_one(
    state: Data<AppState>,
    caller: Require<perm::CredentialSecureValuesRead>,
    path: Path<(String, String)>,
    query: Query<RevealQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let reason = reveal_reason(&req, query.into_inner())?;
    let caller = caller.into_inner();
    let (id, field_id) = path.into_inner();
    let origin = caller.origin(state.clock.now());
    let st = state.clone();
    let out = state
        .db
        .transaction(move |conn| {
            let (row, ty) = load(conn, &caller.tenant_id, &id)?;
            may_reveal(conn, &caller, &ty, &reason)?;
            let current = store::current_values(conn, std::slice::from_ref(&row.id))?;
            let not_found = || {
                ApiError::not_found(
                    "secure_field_not_found",
                    format!("the credential has no secure value for {field_id:?}"),
                )
            };
            let v = current
                .iter()
                .find(|v| v.field_id == field_id && v.secure && v.value.is_some())
                .ok_or_else(not_found)?;
            let dk = secrets::data_key(conn, &st.ring, &row)?;
            let plain = secrets::open(&dk, &row, v)?.ok_or_else(not_found)?;
            record_reveal(conn, &origin, &row, vec![field_id.clone()], reason)?;
            Ok::<_, ApiError>(RevealedFieldView {
                credential_id: row.id,
                field_id: field_id.clone(),
                version: v.version,
                value: plain.to_string(),
            })
        })
        .await?;
    let resp = no_store(HttpResponse::Ok().json(&out));
    drop(Zeroizing::new(out.value));
    Ok(resp)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct HistoryQuery {
    /// Include secure values (needs reveal rights; audited as a reveal).
    pub include_values: Option<bool>,
    pub reason: Option<String>,
}

/// Every version of one field: who changed it and when; secure values only on request with
/// reveal rights.
#[utoipa::path(tag = "credentials", params(HistoryQuery), responses((status = 200, body = Vec<FieldVersionView>), (status = 404, description = "`credential_not_found`, `field_not_found`")), security(("bearer" = ["credential.history.read"])))]
#[get("/credentials/{id}/fields/{fieldId}/history")]
async fn field_history(
    state: Data<AppState>,
    caller: Require<perm::CredentialHistoryRead>,
    path: Path<(String, String)>,
    query: Query<HistoryQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let include = query.include_values == Some(true);
    let reason = reveal_reason(
        &req,
        RevealQuery {
            reason: query.reason,
        },
    )?;
    let caller = caller.into_inner();
    if include {
        caller.require("credential.secure_values.read")?;
    }
    let (id, field_id) = path.into_inner();
    let origin = caller.origin(state.clock.now());
    let st = state.clone();
    let list = state
        .db
        .transaction(move |conn| {
            let (row, ty) = load(conn, &caller.tenant_id, &id)?;
            let versions = store::history(conn, &row.id, &field_id)?;
            if versions.is_empty() && !defs_of(&ty).iter().any(|d| d.id == field_id) {
                return Err(ApiError::not_found(
                    "field_not_found",
                    format!("the credential has no field {field_id:?}"),
                ));
            }
            let any_secure = versions.iter().any(|v| v.secure && v.value.is_some());
            let reveal = include && any_secure;
            let dk = if reveal {
                may_reveal(conn, &caller, &ty, &reason)?;
                Some(secrets::data_key(conn, &st.ring, &row)?)
            } else {
                None
            };
            let mut out = Vec::with_capacity(versions.len());
            for v in &versions {
                let value = match (&dk, v.secure) {
                    (_, false) => v.value.clone(),
                    (Some(dk), true) => secrets::open(dk, &row, v)?.map(|p| p.to_string()),
                    (None, true) => None,
                };
                out.push(FieldVersionView {
                    version: v.version,
                    current: v.current,
                    secure: v.secure,
                    has_value: v.value.is_some(),
                    value,
                    changed_by: v.changed_by.clone(),
                    changed_at: utc(v.changed_at),
                    restored_from: v.restored_from,
                });
            }
            if reveal {
                record_reveal(conn, &origin, &row, vec![field_id.clone()], reason)?;
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    Ok(no_store(HttpResponse::Ok().json(list)))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreBody {
    pub version: i32,
}

/// Make an earlier version of a field current again (as a new version; nothing is lost).
#[utoipa::path(tag = "credentials", request_body = RestoreBody, responses((status = 200, body = CredentialView), (status = 404, description = "`credential_not_found`, `field_version_not_found`"), (status = 409, description = "`field_removed`, `value_no_longer_valid`")), security(("bearer" = ["credential.restore"])))]
#[post("/credentials/{id}/fields/{fieldId}/restore")]
async fn restore_field(
    state: Data<AppState>,
    caller: Require<perm::CredentialRestore>,
    path: Path<(String, String)>,
    body: Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let version = body.into_inner().version;
    if version < 1 {
        return Err(ApiError::invalid_field("version", "must be 1 or more"));
    }
    let (id, field_id) = path.into_inner();
    let tenant = caller.tenant_id.clone();
    let origin = caller.origin(state.clock.now());
    let actor = caller.actor();
    let now = state.clock.now().naive_utc();
    let st = state.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let (row, ty) = load(conn, &tenant, &id)?;
            let old = store::value_version(conn, &row.id, &field_id, version)?.ok_or_else(|| {
                ApiError::not_found("field_version_not_found", format!("{field_id} has no version {version}"))
            })?;
            let Some(def) = defs_of(&ty).into_iter().find(|d| d.id == field_id) else {
                return Err(ApiError::conflict("field_removed", format!("the type no longer has a field {field_id}")));
            };
            let dk = secrets::data_key(conn, &st.ring, &row)?;
            let plain = secrets::open(&dk, &row, &old)?;
            match &plain {
                Some(p) => {
                    if let Err(rule) = def.value_type.check(p) {
                        return Err(ApiError::conflict(
                            "value_no_longer_valid",
                            format!("version {version} of {field_id} is not {rule}, as the type now asks"),
                        ));
                    }
                }
                None if def.required => {
                    return Err(ApiError::conflict(
                        "value_no_longer_valid",
                        format!("version {version} of {field_id} is empty and the field is required"),
                    ));
                }
                None => {}
            }
            let stored = plain.as_ref().map(|p| {
                if def.secure {
                    crypto::seal_value(&dk, &row.tenant_id, &row.id, &field_id, p)
                } else {
                    p.to_string()
                }
            });
            store::set_value(
                conn,
                NewValue {
                    credential_id: &row.id,
                    field_id: &field_id,
                    secure: def.secure,
                    value: stored,
                    by: &actor,
                    at: now,
                    restored_from: Some(version),
                },
            )?;
            if !store::touch(conn, &row, &row.name, &row.notes, &actor, now)? {
                return Err(ApiError::stale_version("the credential changed meanwhile; retry"));
            }
            let (fresh, _) = load(conn, &tenant, &row.id)?;
            emit(
                conn,
                &origin,
                &ev::CredentialUpdated {
                    credential: state_of(&fresh),
                    changed: vec!["fields".to_owned()],
                    field_ids: vec![field_id.clone()],
                    restored_version: Some(version),
                },
            )?;
            view(conn, fresh, &ty)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Delete a credential with every version of its values.
#[utoipa::path(tag = "credentials", responses((status = 204, description = "Deleted"), (status = 404, description = "`credential_not_found`")), security(("bearer" = ["credential.delete"])))]
#[delete("/credentials/{id}")]
async fn delete_credential(
    state: Data<AppState>,
    caller: Require<perm::CredentialDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    state
        .db
        .transaction(move |conn| {
            let (row, _) = load(conn, &tenant, &id)?;
            store::delete(conn, &row.id)?;
            emit(
                conn,
                &origin,
                &ev::CredentialDeleted {
                    credential: state_of(&row),
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
