//! Credential types: the shapes credentials take.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::emit;
use fleetdesk_events::vault as ev;
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::Require;
use fleetdesk_web::error::ErrorKind;
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, Caller, FieldError, FieldErrors, Json, Query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::credentials::{CredentialListQuery, list_for, state_of as credential_state};
use crate::AppState;
use crate::crypto;
use crate::domain::one_line;
use crate::domain::types::{self, FieldDef, FieldInput};
use crate::domain::value_types::ValueType;
use crate::secrets;
use crate::store::credentials::{self as creds, NewValue};
use crate::store::lower;
use crate::store::types::{self as store, TypeChanges, TypeRow};
use crate::views::{CredentialView, TypeView, defs_of};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(value_types)
        .service(list_types)
        .service(create_type)
        .service(get_type)
        .service(update_type)
        .service(delete_type)
        .service(type_credentials);
}

pub fn type_not_found() -> ApiError {
    ApiError::not_found(
        "credential_type_not_found",
        "no such credential type in this tenant",
    )
}

/// A type of the tenant by id, or 404.
pub fn load(conn: &mut DbConn, tenant_id: &str, id: &str) -> Result<TypeRow, ApiError> {
    store::find(conn, tenant_id, id)?.ok_or_else(type_not_found)
}

fn state_of(row: &TypeRow) -> ev::CredentialTypeState {
    ev::CredentialTypeState {
        type_id: row.id.clone(),
        name: row.name.clone(),
        permission_scope: row.permission_scope.clone(),
        field_ids: defs_of(row).into_iter().map(|d| d.id).collect(),
    }
}

fn count_of(conn: &mut DbConn, id: &str) -> Result<i64, ApiError> {
    Ok(store::credential_counts(conn, &[id.to_owned()])?
        .first()
        .map_or(0, |(_, n)| *n))
}

/// A value type and the rule its values follow.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueTypeView {
    pub name: ValueType,
    pub rule: &'static str,
    /// Whether fields of this type are secure unless the type says otherwise.
    pub secure_by_default: bool,
}

/// The value types fields can have, with their rules.
#[utoipa::path(tag = "credential-types", responses((status = 200, body = Vec<ValueTypeView>)), security(("bearer" = [])))]
#[get("/credential-types/value-types")]
async fn value_types(_caller: Caller) -> HttpResponse {
    let list: Vec<ValueTypeView> = ValueType::ALL
        .into_iter()
        .map(|t| ValueTypeView {
            name: t,
            rule: t.rule(),
            secure_by_default: matches!(
                t,
                ValueType::Password | ValueType::GenericSecret | ValueType::BitlockerKey
            ),
        })
        .collect();
    HttpResponse::Ok().json(list)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct TypeListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
}

/// The tenant's credential types, by name, with how many credentials each has.
#[utoipa::path(tag = "credential-types", params(TypeListQuery), responses((status = 200, body = Paginated<TypeView>)), security(("bearer" = ["credential_type.read"])))]
#[get("/credential-types")]
async fn list_types(
    state: Data<AppState>,
    caller: Require<perm::CredentialTypeRead>,
    query: Query<TypeListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .run(move |conn| {
            let (rows, total) = store::list(conn, &tenant, page.offset(), page.limit_i64())?;
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            let counts = store::credential_counts(conn, &ids)?;
            let data = rows
                .into_iter()
                .map(|r| {
                    let n = counts
                        .iter()
                        .find(|(id, _)| *id == r.id)
                        .map_or(0, |(_, n)| *n);
                    TypeView::new(r, n)
                })
                .collect();
            Ok::<_, ApiError>(page.wrap(data, total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewType {
    pub name: String,
    pub icon: Option<String>,
    /// e.g. `aws.credentials`: reveals then also need `aws.credentials.read`.
    pub permission_scope: Option<String>,
    pub fields: Vec<FieldInput>,
}

/// Create a credential type.
#[utoipa::path(tag = "credential-types", request_body = NewType, responses((status = 201, body = TypeView), (status = 409, description = "`credential_type_name_taken`")), security(("bearer" = ["credential_type.create"])))]
#[post("/credential-types")]
async fn create_type(
    state: Data<AppState>,
    caller: Require<perm::CredentialTypeCreate>,
    body: Json<NewType>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", one_line(&body.name, 100));
    let icon = body
        .icon
        .as_deref()
        .map(|i| errors.check("icon", types::icon(i)));
    let scope = body
        .permission_scope
        .as_deref()
        .map(|s| errors.check("permissionScope", types::permission_scope(s)));
    let fields = types::check_fields(&body.fields, &mut errors);
    errors.finish()?;
    let (Some(name), Some(fields)) = (name, fields) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let (icon, scope) = (icon.flatten(), scope.flatten());
    let tenant = caller.tenant_id.clone();
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            if store::find_by_name(conn, &tenant, &name)?.is_some() {
                return Err(ApiError::conflict(
                    "credential_type_name_taken",
                    format!("a credential type named {name} exists"),
                ));
            }
            let row = TypeRow {
                id: new_id(),
                tenant_id: tenant.clone(),
                name_lower: lower(&name),
                name,
                icon,
                permission_scope: scope,
                fields: serde_json::to_string(&fields).map_err(ApiError::internal)?,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            store::insert(conn, &row)?;
            emit(
                conn,
                &origin,
                &ev::CredentialTypeCreated {
                    credential_type: state_of(&row),
                },
            )?;
            Ok::<_, ApiError>(TypeView::new(row, 0))
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("etag", fleetdesk_web::version::etag(view.version)))
        .json(view))
}

/// One credential type, by id or by name (case-insensitive).
#[utoipa::path(tag = "credential-types", responses((status = 200, body = TypeView), (status = 404, description = "`credential_type_not_found`")), security(("bearer" = ["credential_type.read"])))]
#[get("/credential-types/{idOrName}")]
async fn get_type(
    state: Data<AppState>,
    caller: Require<perm::CredentialTypeRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, key) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .run(move |conn| {
            let row = match store::find(conn, &tenant, &key)? {
                Some(r) => r,
                None => store::find_by_name(conn, &tenant, &key)?.ok_or_else(type_not_found)?,
            };
            let n = count_of(conn, &row.id)?;
            Ok::<_, ApiError>(TypeView::new(row, n))
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypeUpdate {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub icon: Option<Option<String>>,
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub permission_scope: Option<Option<String>>,
    /// The whole new field list. Existing credentials must stay valid under it, or the change
    /// is refused (409) naming each credential and field that would break. A field whose
    /// `secure` flag changes has its values re-stored (sealed or opened) as a new version.
    pub fields: Option<Vec<FieldInput>>,
}

/// What a field-list change does to one credential's current values.
fn breaks(
    conn: &mut DbConn,
    state: &AppState,
    new_defs: &[FieldDef],
    old_defs: &[FieldDef],
    cred: &creds::CredentialRow,
    values: &[creds::ValueRow],
    problems: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    let at = |field: &str| format!("credentials[{}].fields.{field}", cred.id);
    let mut dk = None;
    for v in values.iter().filter(|v| v.value.is_some()) {
        let Some(def) = new_defs.iter().find(|d| d.id == v.field_id) else {
            problems.push(FieldError::new(
                at(&v.field_id),
                format!(
                    "{:?} has a value for {}, which the change removes",
                    cred.name, v.field_id
                ),
            ));
            continue;
        };
        let old = old_defs.iter().find(|d| d.id == v.field_id);
        if old.is_some_and(|o| o.value_type == def.value_type) {
            continue;
        }
        if dk.is_none() {
            dk = Some(secrets::data_key(conn, &state.ring, cred)?);
        }
        let Some(dk) = dk.as_ref() else { continue };
        if let Some(value) = secrets::open(dk, cred, v)?
            && let Err(rule) = def.value_type.check(&value)
        {
            problems.push(FieldError::new(
                at(&v.field_id),
                format!("{:?}: the value of {} is not {rule}", cred.name, v.field_id),
            ));
        }
    }
    for def in new_defs.iter().filter(|d| d.required) {
        if !values
            .iter()
            .any(|v| v.field_id == def.id && v.value.is_some())
        {
            problems.push(FieldError::new(
                at(&def.id),
                format!(
                    "{:?} has no value for {}, which the change makes required",
                    cred.name, def.id
                ),
            ));
        }
    }
    Ok(())
}

/// Re-stores values of fields whose `secure` flag changed, as new versions; a credential that
/// had any gets a new version of its own and a `credential.updated` event naming the fields,
/// as if someone had edited them.
fn reseal(
    conn: &mut DbConn,
    state: &AppState,
    new_defs: &[FieldDef],
    cred: &creds::CredentialRow,
    values: &[creds::ValueRow],
    origin: &fleetdesk_events::Origin,
    (by, now): (&str, chrono::NaiveDateTime),
) -> Result<(), ApiError> {
    let mut resealed = Vec::new();
    let mut dk = None;
    for v in values.iter().filter(|v| v.value.is_some()) {
        let Some(def) = new_defs.iter().find(|d| d.id == v.field_id) else {
            continue;
        };
        if def.secure == v.secure {
            continue;
        }
        if dk.is_none() {
            dk = Some(secrets::data_key(conn, &state.ring, cred)?);
        }
        let Some(dk) = dk.as_ref() else { continue };
        let Some(value) = secrets::open(dk, cred, v)? else {
            continue;
        };
        let stored = if def.secure {
            crypto::seal_value(dk, &cred.tenant_id, &cred.id, &def.id, &value)
        } else {
            value.to_string()
        };
        creds::set_value(
            conn,
            NewValue {
                credential_id: &cred.id,
                field_id: &def.id,
                secure: def.secure,
                value: Some(stored),
                by,
                at: now,
                restored_from: None,
            },
        )?;
        resealed.push(def.id.clone());
    }
    if resealed.is_empty() {
        return Ok(());
    }
    if !creds::touch(conn, cred, &cred.name, &cred.notes, by, now)? {
        return Err(ApiError::stale_version(
            "a credential of this type changed meanwhile; reload and retry",
        ));
    }
    emit(
        conn,
        origin,
        &ev::CredentialUpdated {
            credential: credential_state(cred),
            changed: vec!["fields".to_owned()],
            field_ids: resealed,
            restored_version: None,
        },
    )?;
    Ok(())
}

/// Change a credential type.
#[utoipa::path(
    tag = "credential-types",
    request_body = TypeUpdate,
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = TypeView), (status = 404, description = "`credential_type_not_found`"), (status = 409, description = "`credential_type_name_taken`, `credential_type_change_breaks_credentials` (each credential and field in `errors`)"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["credential_type.update"]))
)]
#[patch("/credential-types/{id}")]
async fn update_type(
    state: Data<AppState>,
    caller: Require<perm::CredentialTypeUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<TypeUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let mut changes = TypeChanges::default();
    let mut changed = Vec::new();
    if let Some(n) = &body.name {
        if let Some(n) = errors.check("name", one_line(n, 100)) {
            changes.name_lower = Some(lower(&n));
            changes.name = Some(n);
        }
        changed.push("name".to_owned());
    }
    match &body.icon {
        Some(Some(i)) => changes.icon = errors.check("icon", types::icon(i)).map(Some),
        Some(None) => changes.icon = Some(None),
        None => {}
    }
    if body.icon.is_some() {
        changed.push("icon".to_owned());
    }
    match &body.permission_scope {
        Some(Some(s)) => {
            changes.permission_scope = errors
                .check("permissionScope", types::permission_scope(s))
                .map(Some)
        }
        Some(None) => changes.permission_scope = Some(None),
        None => {}
    }
    if body.permission_scope.is_some() {
        changed.push("permissionScope".to_owned());
    }
    let new_defs = body
        .fields
        .as_ref()
        .and_then(|f| types::check_fields(f, &mut errors));
    if body.fields.is_some() {
        changed.push("fields".to_owned());
    }
    errors.finish()?;
    if let Some(d) = &new_defs {
        changes.fields = Some(serde_json::to_string(d).map_err(ApiError::internal)?);
    }
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let actor = caller.actor();
    let now = state.clock.now().naive_utc();
    let st = state.clone();
    let view = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            if_match.check(row.version)?;
            if let Some(n) = &changes.name
                && store::find_by_name(conn, &tenant, n)?.is_some_and(|o| o.id != row.id)
            {
                return Err(ApiError::conflict(
                    "credential_type_name_taken",
                    format!("a credential type named {n} exists"),
                ));
            }
            if let Some(new_defs) = &new_defs {
                let old_defs = defs_of(&row);
                // Each credential with its current values, read once for the check and the
                // re-sealing.
                let mut all: Vec<(creds::CredentialRow, Vec<creds::ValueRow>)> = Vec::new();
                for chunk in creds::of_type(conn, &row.id)?.chunks(200) {
                    let ids: Vec<String> = chunk.iter().map(|c| c.id.clone()).collect();
                    let mut values = creds::current_values(conn, &ids)?;
                    for cred in chunk {
                        let (mine, rest) =
                            values.into_iter().partition(|v| v.credential_id == cred.id);
                        values = rest;
                        all.push((cred.clone(), mine));
                    }
                }
                let mut problems = Vec::new();
                for (cred, values) in &all {
                    breaks(conn, &st, new_defs, &old_defs, cred, values, &mut problems)?;
                    if problems.len() >= 100 {
                        break;
                    }
                }
                if !problems.is_empty() {
                    return Err(ApiError::new(
                        ErrorKind::Conflict,
                        "credential_type_change_breaks_credentials",
                        format!(
                            "the new fields would leave {} value(s) of existing credentials invalid; change or clear them first (each is listed in errors)",
                            problems.len()
                        ),
                    )
                    .with_errors(problems));
                }
                for (cred, values) in &all {
                    reseal(conn, &st, new_defs, cred, values, &origin, (&actor, now))?;
                }
            }
            if !store::update(conn, &row.id, row.version, &changes, now)? {
                return Err(ApiError::stale_version("the credential type changed meanwhile; reload and retry"));
            }
            let fresh = load(conn, &tenant, &row.id)?;
            if !changed.is_empty() {
                emit(
                    conn,
                    &origin,
                    &ev::CredentialTypeUpdated { credential_type: state_of(&fresh), changed },
                )?;
            }
            let n = count_of(conn, &fresh.id)?;
            Ok::<_, ApiError>(TypeView::new(fresh, n))
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// How many credentials went with a deleted type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeDeleted {
    pub id: String,
    pub deleted_credentials: i64,
}

/// Delete a credential type and every credential of it (with all their values).
#[utoipa::path(tag = "credential-types", responses((status = 200, body = TypeDeleted), (status = 404, description = "`credential_type_not_found`")), security(("bearer" = ["credential_type.delete"])))]
#[delete("/credential-types/{id}")]
async fn delete_type(
    state: Data<AppState>,
    caller: Require<perm::CredentialTypeDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let out = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            let n = creds::delete_of_type(conn, &row.id)?;
            store::delete(conn, &row.id)?;
            emit(
                conn,
                &origin,
                &ev::CredentialTypeDeleted {
                    type_id: row.id.clone(),
                    name: row.name.clone(),
                    credentials_deleted: n,
                },
            )?;
            Ok::<_, ApiError>(TypeDeleted {
                id: row.id,
                deleted_credentials: n,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// The credentials of one type.
#[utoipa::path(tag = "credential-types", params(CredentialListQuery), responses((status = 200, body = Paginated<CredentialView>), (status = 404, description = "`credential_type_not_found`")), security(("bearer" = ["credential.read"])))]
#[get("/credential-types/{id}/credentials")]
async fn type_credentials(
    state: Data<AppState>,
    caller: Require<perm::CredentialRead>,
    id: Path<String>,
    query: Query<CredentialListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require("credential_type.read")?;
    let mut query = query.into_inner();
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let t = tenant.clone();
    let type_id = id.clone();
    state
        .db
        .run(move |conn| load(conn, &t, &type_id).map(drop))
        .await?;
    query.type_id = Some(id);
    let list = list_for(&state, tenant, query).await?;
    Ok(HttpResponse::Ok().json(list))
}
