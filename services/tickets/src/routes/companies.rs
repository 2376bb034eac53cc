//! Companies: the customer accounts tickets belong to.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::emit;
use fleetdesk_events::tickets as ev;
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, Caller, FieldErrors, Json, Query, Require};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::search_text;
use crate::AppState;
use crate::domain::fields;
use crate::idempotency::{self, Created, IdempotencyKey};
use crate::store::companies::{self, CompanyChanges, CompanyRow};
use crate::store::{list_from_json, list_to_json};
use crate::views::CompanyView;

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_companies)
        .service(create_company)
        .service(get_company)
        .service(update_company)
        .service(delete_company);
}

/// 404 for a company that is absent or another tenant's.
pub fn company_not_found() -> ApiError {
    ApiError::not_found("company_not_found", "no such company in this tenant")
}

/// A company of the tenant, or 404.
pub fn load(conn: &mut DbConn, tenant_id: &str, id: &str) -> Result<CompanyRow, ApiError> {
    companies::find(conn, tenant_id, id)?.ok_or_else(company_not_found)
}

fn state_of(c: &CompanyRow) -> ev::CompanyState {
    ev::CompanyState {
        company_id: c.id.clone(),
        name: c.name.clone(),
        identifier: c.identifier.clone(),
        email_domains: list_from_json(&c.email_domains),
        external_ref: c.external_ref.clone(),
    }
}

fn check_domains(list: &[String], errors: &mut FieldErrors) -> Option<Vec<String>> {
    if list.len() > 50 {
        errors.push("emailDomains", "at most 50 domains");
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for (i, d) in list.iter().enumerate() {
        match fields::email_domain(d) {
            Ok(d) if !out.contains(&d) => out.push(d),
            Ok(_) => {}
            Err(m) => {
                errors.push(&format!("emailDomains[{i}]"), m);
                return None;
            }
        }
    }
    Some(out)
}

fn check_address(a: &Value, errors: &mut FieldErrors) -> Option<String> {
    let text = a.to_string();
    if !a.is_object() {
        errors.push(
            "address",
            "must be an object (street, city, postcode, country, …)",
        );
        None
    } else if text.len() > 4_000 {
        errors.push("address", "must be at most 4000 characters of JSON");
        None
    } else {
        Some(text)
    }
}

fn check_external_ref(r: &str, errors: &mut FieldErrors) -> Option<String> {
    errors.check("externalRef", fields::line(r, 200))
}

/// 409 unless every domain is free (or already this company's).
fn ensure_domains_free(
    conn: &mut DbConn,
    tenant_id: &str,
    company_id: &str,
    domains: &[String],
) -> Result<(), ApiError> {
    for d in domains {
        if let Some(owner) = companies::owner_of_domain(conn, tenant_id, d)?
            && owner != company_id
        {
            return Err(ApiError::conflict(
                "email_domain_taken",
                format!("{d} already belongs to another company"),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    /// Unique in the tenant (e.g. a customer number).
    pub identifier: String,
    /// A requester whose email has one of these domains is linked to this company.
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<Value>,
    #[serde(default)]
    pub notes: String,
    pub external_ref: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CompanyListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    /// Text in the name, identifier or an email domain.
    pub q: Option<String>,
    /// Include addresses (needs `company.read.address`).
    pub include_address: Option<bool>,
}

/// Whether the caller asked for addresses, refusing the ask without the node.
fn with_address(caller: &Caller, asked: Option<bool>) -> Result<bool, ApiError> {
    if asked == Some(true) {
        caller.require("company.read.address")?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// The tenant's companies, by name.
#[utoipa::path(tag = "companies", params(CompanyListQuery), responses((status = 200, body = Paginated<CompanyView>)), security(("bearer" = ["company.read"])))]
#[get("/companies")]
async fn list_companies(
    state: Data<AppState>,
    caller: Require<perm::CompanyRead>,
    query: Query<CompanyListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    let q = search_text(query.q)?;
    let address = with_address(&caller, query.include_address)?;
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .read(move |conn| {
            let (rows, total) =
                companies::list(conn, &tenant, q.as_deref(), page.offset(), page.limit_i64())?;
            Ok::<_, ApiError>(
                page.wrap(
                    rows.into_iter()
                        .map(|r| CompanyView::new(r, address))
                        .collect(),
                    total,
                ),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Create a company.
#[utoipa::path(
    tag = "companies",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first response")),
    responses((status = 201, body = CompanyView), (status = 409, description = "`company_identifier_taken`, `email_domain_taken`")),
    security(("bearer" = ["company.create"]))
)]
#[post("/companies")]
async fn create_company(
    state: Data<AppState>,
    caller: Require<perm::CompanyCreate>,
    key: IdempotencyKey,
    body: Json<NewCompany>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", fields::line(&body.name, 200));
    let identifier = errors.check("identifier", fields::identifier(&body.identifier));
    let domains = check_domains(&body.email_domains, &mut errors);
    let address = body.address.as_ref().map(|a| check_address(a, &mut errors));
    let notes = errors.check("notes", fields::free_text(&body.notes, 10_000));
    let external_ref = body
        .external_ref
        .as_deref()
        .map(|r| check_external_ref(r, &mut errors));
    errors.finish()?;
    let (Some(name), Some(identifier), Some(domains), Some(notes)) =
        (name, identifier, domains, notes)
    else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let (address, external_ref) = (address.flatten(), external_ref.flatten());
    let tenant = caller.tenant_id.clone();
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let include_address = caller.allows("company.read.address");
    idempotency::once(
        &state,
        &caller,
        key,
        "POST /companies",
        &body,
        move |conn| {
            if companies::identifier_taken(conn, &tenant, &identifier, None)? {
                return Err(ApiError::conflict(
                    "company_identifier_taken",
                    format!("a company with identifier {identifier} exists"),
                ));
            }
            let id = new_id();
            ensure_domains_free(conn, &tenant, &id, &domains)?;
            let row = CompanyRow {
                id,
                tenant_id: tenant.clone(),
                name: name.clone(),
                identifier: identifier.clone(),
                email_domains: list_to_json(&domains),
                address: address.clone(),
                notes: notes.clone(),
                external_ref: external_ref.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            companies::insert(conn, &row)?;
            companies::set_domains(conn, &tenant, &row.id, &domains)?;
            emit(
                conn,
                &origin,
                &ev::CompanyCreated {
                    company: state_of(&row),
                },
            )?;
            Created::new(StatusCode::CREATED, &CompanyView::new(row, include_address))
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CompanyQuery {
    /// Include the address (needs `company.read.address`).
    pub include_address: Option<bool>,
}

/// One company.
#[utoipa::path(tag = "companies", params(CompanyQuery), responses((status = 200, body = CompanyView), (status = 404, description = "`company_not_found`")), security(("bearer" = ["company.read"])))]
#[get("/companies/{id}")]
async fn get_company(
    state: Data<AppState>,
    caller: Require<perm::CompanyRead>,
    id: Path<String>,
    query: Query<CompanyQuery>,
) -> Result<HttpResponse, ApiError> {
    let address = with_address(&caller, query.into_inner().include_address)?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .read(move |conn| load(conn, &tenant, &id).map(|r| CompanyView::new(r, address)))
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyUpdate {
    pub name: Option<String>,
    pub identifier: Option<String>,
    pub email_domains: Option<Vec<String>>,
    /// An object, or `null` to remove it (needs `company.read.address` too).
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<Object>)]
    pub address: Option<Option<Value>>,
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub external_ref: Option<Option<String>>,
}

/// Change a company.
#[utoipa::path(
    tag = "companies",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = CompanyView), (status = 404, description = "`company_not_found`"), (status = 409, description = "`company_identifier_taken`, `email_domain_taken`"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["company.update"]))
)]
#[patch("/companies/{id}")]
async fn update_company(
    state: Data<AppState>,
    caller: Require<perm::CompanyUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<CompanyUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.address.is_some() {
        // Writing an address you may not read would let you probe it.
        caller.require("company.read.address")?;
    }
    let mut errors = FieldErrors::default();
    let mut changes = CompanyChanges::default();
    let mut changed = Vec::new();
    if let Some(n) = &body.name {
        changes.name = errors.check("name", fields::line(n, 200));
        changed.push("name".to_owned());
    }
    if let Some(i) = &body.identifier {
        changes.identifier = errors.check("identifier", fields::identifier(i));
        changed.push("identifier".to_owned());
    }
    let domains = body
        .email_domains
        .as_ref()
        .and_then(|d| check_domains(d, &mut errors));
    if let Some(d) = &domains {
        changes.email_domains = Some(list_to_json(d));
        changed.push("emailDomains".to_owned());
    }
    match &body.address {
        Some(Some(a)) => changes.address = check_address(a, &mut errors).map(Some),
        Some(None) => changes.address = Some(None),
        None => {}
    }
    if body.address.is_some() {
        changed.push("address".to_owned());
    }
    if let Some(n) = &body.notes {
        changes.notes = errors.check("notes", fields::free_text(n, 10_000));
        changed.push("notes".to_owned());
    }
    match &body.external_ref {
        Some(Some(r)) => changes.external_ref = check_external_ref(r, &mut errors).map(Some),
        Some(None) => changes.external_ref = Some(None),
        None => {}
    }
    if body.external_ref.is_some() {
        changed.push("externalRef".to_owned());
    }
    errors.finish()?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let include_address = caller.allows("company.read.address");
    let view = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            if_match.check(row.version)?;
            if let Some(i) = &changes.identifier
                && companies::identifier_taken(conn, &tenant, i, Some(&row.id))?
            {
                return Err(ApiError::conflict(
                    "company_identifier_taken",
                    format!("a company with identifier {i} exists"),
                ));
            }
            if let Some(d) = &domains {
                ensure_domains_free(conn, &tenant, &row.id, d)?;
                companies::set_domains(conn, &tenant, &row.id, d)?;
            }
            if !companies::update(conn, &row.id, row.version, &changes, now)? {
                return Err(ApiError::stale_version(
                    "the company changed meanwhile; reload and retry",
                ));
            }
            let fresh = load(conn, &tenant, &row.id)?;
            if !changed.is_empty() {
                emit(
                    conn,
                    &origin,
                    &ev::CompanyUpdated {
                        company: state_of(&fresh),
                        changed,
                    },
                )?;
            }
            Ok::<_, ApiError>(CompanyView::new(fresh, include_address))
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Delete a company. Its tickets keep their history and their link (shown as an id).
#[utoipa::path(tag = "companies", responses((status = 204, description = "Deleted"), (status = 404, description = "`company_not_found`")), security(("bearer" = ["company.delete"])))]
#[delete("/companies/{id}")]
async fn delete_company(
    state: Data<AppState>,
    caller: Require<perm::CompanyDelete>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            companies::delete(conn, &row.id)?;
            emit(
                conn,
                &origin,
                &ev::CompanyDeleted {
                    company_id: row.id.clone(),
                    identifier: row.identifier.clone(),
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
