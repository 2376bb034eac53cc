//! Products: what tickets are raised about, with their channels, SLA policy and triage rules.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post, put};
use fleetdesk_auth::permissions::perm;
use fleetdesk_events::tickets as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_store::{DbConn, new_id};
use fleetdesk_web::pagination::{Page, Paginated};
use fleetdesk_web::version::{IfMatch, with_etag};
use fleetdesk_web::{ApiError, FieldErrors, Json, Query, Require};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{ensure_agent, search_text};
use crate::AppState;
use crate::domain::fields;
use crate::domain::sla::Policy;
use crate::domain::triage::{self, RuleSet};
use crate::idempotency::{self, Created, IdempotencyKey};
use crate::store::products::{self, ProductChanges, ProductRow};
use crate::triage::rules_of;
use crate::views::{Channels, ProductView};

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_products)
        .service(create_product)
        .service(get_product)
        .service(update_product)
        .service(archive_product)
        .service(get_triage_rules)
        .service(replace_triage_rules)
        .service(reset_triage_rules);
}

/// 404 for a product that is absent or another tenant's.
pub fn product_not_found() -> ApiError {
    ApiError::not_found("product_not_found", "no such product in this tenant")
}

/// A product of the tenant, or 404.
pub fn load(conn: &mut DbConn, tenant_id: &str, id: &str) -> Result<ProductRow, ApiError> {
    products::find(conn, tenant_id, id)?.ok_or_else(product_not_found)
}

fn state_of(p: &ProductRow) -> ev::ProductState {
    ev::ProductState {
        product_id: p.id.clone(),
        key: p.key.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        status: p.status.clone(),
        lead_id: p.lead_id.clone(),
        default_assignee_id: p.default_assignee_id.clone(),
    }
}

fn check_channels(c: &Channels, errors: &mut FieldErrors) -> Option<String> {
    if let Some(email) = &c.email
        && let Err(m) = fields::email(email)
    {
        errors.push("channels.email", m);
        return None;
    }
    let normalised = Channels {
        email: c.email.as_deref().and_then(|e| fields::email(e).ok()),
        ..c.clone()
    };
    serde_json::to_string(&normalised).ok()
}

fn check_policy(p: &Policy, errors: &mut FieldErrors) -> Option<String> {
    match p.validate() {
        Ok(()) => serde_json::to_string(p).ok(),
        Err(m) => {
            errors.push("slaPolicy", m);
            None
        }
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewProduct {
    /// 2 to 10 upper-case letters or digits, unique in the tenant; cannot change later.
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub channels: Channels,
    pub default_assignee_id: Option<String>,
    pub lead_id: Option<String>,
    /// Targets per severity; the default policy when absent.
    #[schema(value_type = Option<Object>)]
    pub sla_policy: Option<Policy>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListQuery {
    pub page: Option<u32>,
    pub limit: Option<u32>,
    /// `active` or `archived`.
    pub status: Option<String>,
    /// Text in the name or key.
    pub q: Option<String>,
}

/// The tenant's products, by name.
#[utoipa::path(tag = "products", params(ProductListQuery), responses((status = 200, body = Paginated<ProductView>)), security(("bearer" = ["product.read"])))]
#[get("/products")]
async fn list_products(
    state: Data<AppState>,
    caller: Require<perm::ProductRead>,
    query: Query<ProductListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = Page::new(query.page, query.limit)?;
    if let Some(s) = &query.status
        && !matches!(s.as_str(), "active" | "archived")
    {
        return Err(ApiError::invalid_field(
            "status",
            "must be active or archived",
        ));
    }
    let q = search_text(query.q)?;
    let tenant = caller.tenant_id.clone();
    let list = state
        .db
        .read(move |conn| {
            let (rows, total) = products::list(
                conn,
                &tenant,
                query.status.as_deref(),
                q.as_deref(),
                page.offset(),
                page.limit_i64(),
            )?;
            Ok::<_, ApiError>(page.wrap(rows.into_iter().map(ProductView::from).collect(), total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Create a product.
#[utoipa::path(
    tag = "products",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key get the first response")),
    responses((status = 201, body = ProductView), (status = 409, description = "`product_key_taken`")),
    security(("bearer" = ["product.create"]))
)]
#[post("/products")]
async fn create_product(
    state: Data<AppState>,
    caller: Require<perm::ProductCreate>,
    key: IdempotencyKey,
    body: Json<NewProduct>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let product_key = errors.check("key", fields::product_key(&body.key));
    let name = errors.check("name", fields::line(&body.name, 200));
    let description = errors.check("description", fields::free_text(&body.description, 5_000));
    let channels = check_channels(&body.channels, &mut errors);
    let policy = body
        .sla_policy
        .clone()
        .unwrap_or_else(Policy::default_policy);
    let policy = check_policy(&policy, &mut errors);
    errors.finish()?;
    let (Some(product_key), Some(name), Some(description), Some(channels), Some(policy)) =
        (product_key, name, description, channels, policy)
    else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let tenant = caller.tenant_id.clone();
    let (assignee, lead) = (body.default_assignee_id.clone(), body.lead_id.clone());
    idempotency::once(&state, &caller, key, "POST /products", &body, move |conn| {
        if products::key_taken(conn, &tenant, &product_key)? {
            return Err(ApiError::conflict(
                "product_key_taken",
                format!("a product with key {product_key} exists"),
            ));
        }
        if let Some(a) = &assignee {
            ensure_agent(conn, &tenant, a, "defaultAssigneeId")?;
        }
        if let Some(l) = &lead {
            ensure_agent(conn, &tenant, l, "leadId")?;
        }
        let row = ProductRow {
            id: new_id(),
            tenant_id: tenant.clone(),
            key: product_key.clone(),
            name: name.clone(),
            description: description.clone(),
            channels: channels.clone(),
            default_assignee_id: assignee.clone(),
            lead_id: lead.clone(),
            sla_policy: policy.clone(),
            triage_rules: None,
            triage_rules_version: 0,
            status: "active".into(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        products::insert(conn, &row)?;
        emit(
            conn,
            &origin,
            &ev::ProductCreated {
                product: state_of(&row),
            },
        )?;
        Created::new(StatusCode::CREATED, &ProductView::from(row))
    })
    .await
}

/// One product.
#[utoipa::path(tag = "products", responses((status = 200, body = ProductView), (status = 404, description = "`product_not_found`")), security(("bearer" = ["product.read"])))]
#[get("/products/{id}")]
async fn get_product(
    state: Data<AppState>,
    caller: Require<perm::ProductRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let view = state
        .db
        .read(move |conn| load(conn, &tenant, &id).map(ProductView::from))
        .await?;
    Ok(with_etag(&view, view.version))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub channels: Option<Channels>,
    /// A user id, or `null` for none.
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub default_assignee_id: Option<Option<String>>,
    /// A user id, or `null` for none.
    #[serde(default, deserialize_with = "fleetdesk_web::extract::nullable")]
    #[schema(value_type = Option<String>)]
    pub lead_id: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub sla_policy: Option<Policy>,
}

/// Writes product changes under `If-Match` and announces them.
fn write_product(
    conn: &mut DbConn,
    row: &ProductRow,
    if_match: &IfMatch,
    changes: &ProductChanges,
    changed: Vec<String>,
    now: chrono::NaiveDateTime,
    origin: &Origin,
) -> Result<ProductView, ApiError> {
    if_match.check(row.version)?;
    if !products::update(conn, &row.id, row.version, changes, now)? {
        return Err(ApiError::stale_version(
            "the product changed meanwhile; reload and retry",
        ));
    }
    let fresh = load(conn, &row.tenant_id, &row.id)?;
    if !changed.is_empty() {
        emit(
            conn,
            origin,
            &ev::ProductUpdated {
                product: state_of(&fresh),
                changed,
            },
        )?;
    }
    Ok(ProductView::from(fresh))
}

/// Change a product (its key cannot change: ticket keys are made of it).
#[utoipa::path(
    tag = "products",
    params(("If-Match" = Option<String>, Header, description = "The ETag you read; 412 if it is stale")),
    responses((status = 200, body = ProductView), (status = 404, description = "`product_not_found`"), (status = 412, description = "`version_mismatch`")),
    security(("bearer" = ["product.update"]))
)]
#[patch("/products/{id}")]
async fn update_product(
    state: Data<AppState>,
    caller: Require<perm::ProductUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<ProductUpdate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let mut changes = ProductChanges::default();
    let mut changed = Vec::new();
    if let Some(n) = &body.name {
        changes.name = errors.check("name", fields::line(n, 200));
        changed.push("name".to_owned());
    }
    if let Some(d) = &body.description {
        changes.description = errors.check("description", fields::free_text(d, 5_000));
        changed.push("description".to_owned());
    }
    if let Some(c) = &body.channels {
        changes.channels = check_channels(c, &mut errors);
        changed.push("channels".to_owned());
    }
    if let Some(p) = &body.sla_policy {
        changes.sla_policy = check_policy(p, &mut errors);
        changed.push("slaPolicy".to_owned());
    }
    if body.default_assignee_id.is_some() {
        changes.default_assignee_id = body.default_assignee_id.clone();
        changed.push("defaultAssigneeId".to_owned());
    }
    if body.lead_id.is_some() {
        changes.lead_id = body.lead_id.clone();
        changed.push("leadId".to_owned());
    }
    errors.finish()?;
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let view = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            if let Some(Some(a)) = &changes.default_assignee_id {
                ensure_agent(conn, &tenant, a, "defaultAssigneeId")?;
            }
            if let Some(Some(l)) = &changes.lead_id {
                ensure_agent(conn, &tenant, l, "leadId")?;
            }
            write_product(conn, &row, &if_match, &changes, changed, now, &origin)
        })
        .await?;
    Ok(with_etag(&view, view.version))
}

/// Archive a product: its tickets stay, no new ones can be raised about it.
#[utoipa::path(tag = "products", responses((status = 204, description = "Archived (or already was)"), (status = 404, description = "`product_not_found`")), security(("bearer" = ["product.archive"])))]
#[delete("/products/{id}")]
async fn archive_product(
    state: Data<AppState>,
    caller: Require<perm::ProductArchive>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            if row.status == "archived" {
                return Ok(());
            }
            let changes = ProductChanges {
                status: Some("archived".into()),
                ..Default::default()
            };
            if !products::update(conn, &row.id, row.version, &changes, now)? {
                return Err(ApiError::stale_version(
                    "the product changed meanwhile; retry",
                ));
            }
            emit(
                conn,
                &origin,
                &ev::ProductArchived {
                    product_id: row.id.clone(),
                    key: row.key.clone(),
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A product's triage rules.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriageRulesView {
    pub rules: Vec<triage::Rule>,
    /// `default` (shipped with the service) or `custom` (this product's).
    pub source: &'static str,
    /// The version name recorded in each triage result's provenance.
    pub version: String,
}

fn rules_view(row: &ProductRow) -> TriageRulesView {
    let (rules, version) = rules_of(row);
    TriageRulesView {
        rules: rules.rules,
        source: if row.triage_rules.is_some() {
            "custom"
        } else {
            "default"
        },
        version,
    }
}

/// The rules new tickets of this product are triaged with.
#[utoipa::path(tag = "products", responses((status = 200, body = TriageRulesView)), security(("bearer" = ["product.read"])))]
#[get("/products/{id}/triage-rules")]
async fn get_triage_rules(
    state: Data<AppState>,
    caller: Require<perm::ProductRead>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, id) = (caller.tenant_id.clone(), id.into_inner());
    let row = state.db.read(move |conn| load(conn, &tenant, &id)).await?;
    Ok(with_etag(&rules_view(&row), row.version))
}

async fn set_rules(
    state: &AppState,
    caller: &fleetdesk_web::Caller,
    id: String,
    if_match: IfMatch,
    rules: Option<RuleSet>,
) -> Result<HttpResponse, ApiError> {
    let json = match &rules {
        Some(set) => {
            triage::validate(set).map_err(|(field, m)| ApiError::invalid_field(field, m))?;
            Some(serde_json::to_string(set).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let tenant = caller.tenant_id.clone();
    let origin = caller.origin(state.clock.now());
    let now = state.clock.now().naive_utc();
    let row = state
        .db
        .transaction(move |conn| {
            let row = load(conn, &tenant, &id)?;
            let changes = ProductChanges {
                triage_rules: Some(json),
                triage_rules_version: Some(row.triage_rules_version + 1),
                ..Default::default()
            };
            write_product(
                conn,
                &row,
                &if_match,
                &changes,
                vec!["triageRules".into()],
                now,
                &origin,
            )?;
            load(conn, &tenant, &row.id)
        })
        .await?;
    Ok(with_etag(&rules_view(&row), row.version))
}

/// Replace a product's triage rules (checked; the error names the rule and field).
#[utoipa::path(
    tag = "products",
    params(("If-Match" = Option<String>, Header, description = "The product's ETag; 412 if it is stale")),
    responses((status = 200, body = TriageRulesView), (status = 400, description = "`validation_failed`, naming e.g. `rules[2].severity`")),
    security(("bearer" = ["product.triage_rules.update"]))
)]
#[put("/products/{id}/triage-rules")]
async fn replace_triage_rules(
    state: Data<AppState>,
    caller: Require<perm::ProductTriageRulesUpdate>,
    id: Path<String>,
    if_match: IfMatch,
    body: Json<RuleSet>,
) -> Result<HttpResponse, ApiError> {
    set_rules(
        &state,
        &caller,
        id.into_inner(),
        if_match,
        Some(body.into_inner()),
    )
    .await
}

/// Go back to the shipped triage rules.
#[utoipa::path(tag = "products", responses((status = 200, body = TriageRulesView)), security(("bearer" = ["product.triage_rules.update"])))]
#[delete("/products/{id}/triage-rules")]
async fn reset_triage_rules(
    state: Data<AppState>,
    caller: Require<perm::ProductTriageRulesUpdate>,
    id: Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    set_rules(&state, &caller, id.into_inner(), if_match, None).await
}
