//! Login, registration, sessions, password reset, service tokens, API-key exchange, JWKS.

use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse, get, post};
use chrono::Duration;
use fleetdesk_auth::permissions::{all_nodes, effective, grants};
use fleetdesk_auth::{Grants, TokenType};
use fleetdesk_events::emit;
use fleetdesk_events::identity as ev;
use fleetdesk_store::DbConn;
use fleetdesk_web::extract::parse_json;
use fleetdesk_web::{ApiError, Caller, FieldErrors, Json};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::accounts::{self, create_tenant, login_response, new_user, start_password_reset};
use crate::domain::email::Email;
use crate::domain::lockout::{self, Counter, Policy};
use crate::domain::secrets::{api_key_prefix, secrets_match, sha256_hex};
use crate::domain::system_roles::ADMIN;
use crate::domain::{names, password};
use crate::events;
use crate::store::throttles::{self, ThrottleRow};
use crate::store::{api_keys, invites, list_from_json, password_resets, refresh_tokens, users};
use crate::tokens::Subject;
use crate::views::{LoginResponse, TokenResponse};

/// The refresh-token cookie.
pub const REFRESH_COOKIE: &str = "fd_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

pub(super) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(request_password_reset)
        .service(confirm_password_reset)
        .service(service_token)
        .service(exchange_api_key);
}

fn refresh_cookie(token: &str, max_age_secs: u64) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, token.to_owned())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path(COOKIE_PATH)
        .max_age(CookieDuration::seconds(
            i64::try_from(max_age_secs).unwrap_or(i64::MAX),
        ))
        .finish()
}

fn session_response(
    state: &AppState,
    status: actix_web::http::StatusCode,
    body: &LoginResponse,
) -> HttpResponse {
    HttpResponse::build(status)
        .cookie(refresh_cookie(
            &body.refresh_token,
            state.config.refresh_ttl.as_secs(),
        ))
        .json(body)
}

/// The client address: the peer, or with `FLEETDESK_TRUST_FORWARDED_FOR` the last hop the
/// trusted proxy appended to `X-Forwarded-For`.
fn client_ip(req: &HttpRequest, trust_forwarded: bool) -> String {
    if trust_forwarded {
        let last = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        if let Some(ip) = last {
            return ip.to_string();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Registration: into an invited tenant, or a new tenant when registration is open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
    /// Name of the new tenant (without an invite); defaults to "<name>'s team".
    pub tenant_name: Option<String>,
    /// An invitation's token: join that tenant with the invited roles.
    pub invite_token: Option<String>,
}

/// Register an account.
///
/// With `inviteToken` the person joins the inviting tenant with the invited roles (always
/// allowed). Without one, a new tenant is created with the person as its admin, only when
/// `FLEETDESK_REGISTRATION_ENABLED=true`.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 201, description = "Registered and logged in", body = LoginResponse),
        (status = 403, description = "`registration_disabled`"),
        (status = 409, description = "`email_taken`"),
    )
)]
#[post("/auth/register")]
async fn register(
    state: Data<AppState>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let email = errors.check("email", Email::parse(&body.email));
    let name = errors.check("name", names::person_name(&body.name));
    if let Err(m) = password::check_policy(&body.password, body.email.trim()) {
        errors.push("password", m);
    }
    let tenant_name = match &body.tenant_name {
        Some(t) => errors.check("tenantName", names::tenant_name(t)),
        None => name.as_ref().map(|n| format!("{n}'s team")),
    };
    let (Some(email), Some(name), Some(tenant_name)) = (email, name, tenant_name) else {
        return Err(errors.into_error());
    };
    errors.finish()?;
    let invite_hash = body.invite_token.as_deref().map(|t| sha256_hex(t.trim()));
    if invite_hash.is_none() && !state.config.registration_enabled {
        return Err(ApiError::forbidden(
            "registration_disabled",
            "registration is closed; ask an administrator for an invitation",
        ));
    }
    let password = body.password;
    let hash = state
        .hashing(move |h| h.hash(&password))
        .await?
        .map_err(ApiError::internal)?;
    let now = state.clock.now();
    let st = state.clone();
    let origin = events::anonymous(None, "anonymous", now);
    let response = state
        .db
        .transaction(move |conn| {
            if users::find_by_email(conn, email.as_str())?.is_some() {
                return Err(ApiError::conflict(
                    "email_taken",
                    "an account with this email already exists",
                ));
            }
            let user = match invite_hash {
                Some(token_hash) => {
                    let invalid =
                        || ApiError::invalid_field("inviteToken", "is invalid, used or expired");
                    let invite = invites::find_by_hash(conn, &token_hash)?.ok_or_else(invalid)?;
                    if invite.accepted_at.is_some() || invite.expires_at <= now.naive_utc() {
                        return Err(invalid());
                    }
                    if invite.email != email.as_str() {
                        return Err(ApiError::invalid_field(
                            "email",
                            "must be the address the invitation was sent to",
                        ));
                    }
                    if !invites::accept(conn, &invite.id, now.naive_utc())? {
                        return Err(invalid());
                    }
                    let user = new_user(&invite.tenant_id, email.as_str(), &name, hash, now);
                    users::insert(conn, &user)?;
                    // Roles deleted since the invitation are skipped, not an error.
                    let wanted = list_from_json(&invite.roles);
                    let roles: Vec<(String, String)> = wanted
                        .iter()
                        .filter_map(|m| {
                            crate::store::roles::find(conn, &invite.tenant_id, m).transpose()
                        })
                        .map(|r| r.map(|r| (r.id, r.moniker)))
                        .collect::<Result<_, _>>()?;
                    let ids: Vec<String> = roles.iter().map(|r| r.0.clone()).collect();
                    users::set_roles(conn, &user.tenant_id, &user.id, &ids)?;
                    let monikers = roles.into_iter().map(|r| r.1).collect();
                    (user, ev::Registration::Invite, monikers)
                }
                None => {
                    let (tenant, roles) = create_tenant(conn, &tenant_name, now, &origin)?;
                    let user = new_user(&tenant.id, email.as_str(), &name, hash, now);
                    users::insert(conn, &user)?;
                    let admin: Vec<String> = roles
                        .iter()
                        .filter(|r| r.moniker == ADMIN)
                        .map(|r| r.id.clone())
                        .collect();
                    users::set_roles(conn, &tenant.id, &user.id, &admin)?;
                    (user, ev::Registration::Open, vec![ADMIN.to_owned()])
                }
            };
            let (user, via, roles) = user;
            let origin = fleetdesk_events::Origin {
                tenant_id: Some(user.tenant_id.clone()),
                actor: user.id.clone(),
                ..origin
            };
            let access = crate::accounts::user_access(conn, &user.tenant_id, &user.id)?;
            emit(
                conn,
                &origin,
                &ev::UserRegistered {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    name: user.name.clone(),
                    via,
                    roles,
                    access,
                },
            )?;
            users::record_login(conn, &user.id, now.naive_utc())?;
            let user = users::find(conn, &user.tenant_id, &user.id)?
                .ok_or_else(|| ApiError::internal("user vanished"))?;
            login_response(&st, conn, user, None)
        })
        .await?;
    Ok(session_response(
        &state,
        actix_web::http::StatusCode::CREATED,
        &response,
    ))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

static DECOY_HASH: OnceLock<String> = OnceLock::new();

fn throttle_counter(row: Option<ThrottleRow>) -> Option<Counter> {
    row.map(|r| Counter {
        failures: r.failures,
        locked_until: r.locked_until.map(|t| t.and_utc()),
        updated_at: r.updated_at.and_utc(),
    })
}

fn locked_for(
    conn: &mut DbConn,
    key: &str,
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Duration>, ApiError> {
    Ok(throttle_counter(throttles::find(conn, key)?).and_then(|c| policy.locked_for(&c, now)))
}

fn record_failure(
    conn: &mut DbConn,
    key: &str,
    policy: &Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let counter = policy.after_failure(throttle_counter(throttles::find(conn, key)?), now);
    throttles::save(
        conn,
        &ThrottleRow {
            key: key.to_owned(),
            failures: counter.failures,
            locked_until: counter.locked_until.map(|t| t.naive_utc()),
            updated_at: now.naive_utc(),
        },
    )?;
    Ok(())
}

fn too_many_attempts(wait: Duration) -> ApiError {
    let seconds = u64::try_from(wait.num_seconds()).unwrap_or(1).max(1);
    ApiError::too_many(
        "too_many_attempts",
        format!("too many failed logins; try again in {seconds} s"),
        seconds,
    )
}

/// Log in with email and password.
///
/// Answers the tokens and sets the `fd_refresh` cookie (httpOnly, Secure, SameSite=Strict).
/// An unknown email and a wrong password get the same 401. After 5 failures for an account
/// (or 20 from one address) further attempts answer 429 with `Retry-After`, for a delay that
/// doubles with each further failure, up to an hour.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`"),
        (status = 403, description = "`account_deactivated`"),
        (status = 429, description = "`too_many_attempts`"),
    )
)]
#[post("/auth/login")]
async fn login(
    state: Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = body.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        return Err(ApiError::invalid_field(
            "email",
            "is required and at most 254 characters",
        ));
    }
    if body.password.is_empty() || body.password.chars().count() > password::MAX_LENGTH {
        return Err(ApiError::invalid_field(
            "password",
            "is required and at most 128 characters",
        ));
    }
    let ip = client_ip(&req, state.config.trust_forwarded_for);
    let account_key = format!("email:{email}");
    // An IPv6 client by its /64: one address change must not buy a fresh lockout budget.
    let address_key = format!("ip:{}", fleetdesk_web::address::counted(&ip));
    let now = state.clock.now();
    let (keys, lookup) = ((account_key.clone(), address_key.clone()), email.clone());
    let user = state
        .db
        .run(move |conn| {
            let locked = [(&keys.0, &lockout::ACCOUNT), (&keys.1, &lockout::ADDRESS)]
                .into_iter()
                .map(|(k, p)| locked_for(conn, k, p, now))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .max();
            if let Some(wait) = locked {
                return Err(too_many_attempts(wait));
            }
            Ok(users::find_by_email(conn, &lookup)?)
        })
        .await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let candidate = body.password;
    let matches = state
        .hashing(move |h| {
            let decoy = DECOY_HASH.get_or_init(|| h.decoy());
            // Spend the same work whether or not the account exists.
            let hash = stored.as_deref().unwrap_or(decoy);
            h.verify(&candidate, hash) && stored.is_some()
        })
        .await?;
    let st = state.clone();
    let origin = events::anonymous(
        user.as_ref().map(|u| u.tenant_id.as_str()),
        "anonymous",
        now,
    );
    let failed = move |user_id: Option<String>, reason: &str| ev::LoginFailed {
        email: email.clone(),
        user_id,
        reason: reason.to_owned(),
        client_ip: Some(ip.clone()),
    };
    let outcome = state
        .db
        .transaction(move |conn| match user {
            Some(user) if matches => {
                throttles::clear(conn, &account_key)?;
                if user.status != "active" {
                    emit(conn, &origin, &failed(Some(user.id.clone()), "inactive"))?;
                    return Ok(Err(ApiError::forbidden(
                        "account_deactivated",
                        "this account is deactivated",
                    )));
                }
                users::record_login(conn, &user.id, now.naive_utc())?;
                Ok(Ok(login_response(&st, conn, user, None)?))
            }
            other => {
                record_failure(conn, &account_key, &lockout::ACCOUNT, now)?;
                record_failure(conn, &address_key, &lockout::ADDRESS, now)?;
                emit(
                    conn,
                    &origin,
                    &failed(other.map(|u| u.id), "bad_credentials"),
                )?;
                Ok::<_, ApiError>(Err(ApiError::unauthorized(
                    "invalid_credentials",
                    "the email or password is wrong",
                )))
            }
        })
        .await?;
    if let Err(e) = &outcome {
        tracing::info!(code = e.code(), "login refused");
    }
    Ok(session_response(
        &state,
        actix_web::http::StatusCode::OK,
        &outcome?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token, for clients that do not keep cookies.
    pub refresh_token: Option<String>,
}

/// The presented refresh token: the body's, else `x-refresh-token`, else the cookie.
fn presented_refresh_token(req: &HttpRequest, body: &Bytes) -> Result<Option<String>, ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        let parsed: RefreshRequest = parse_json(body)?;
        if let Some(t) = parsed.refresh_token.filter(|t| !t.trim().is_empty()) {
            return Ok(Some(t.trim().to_owned()));
        }
    }
    if let Some(t) = req
        .headers()
        .get("x-refresh-token")
        .and_then(|v| v.to_str().ok())
        && !t.trim().is_empty()
    {
        return Ok(Some(t.trim().to_owned()));
    }
    Ok(req
        .cookie(REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty()))
}

enum Refreshed {
    Issued(Box<LoginResponse>),
    Reused { user_id: String },
    Refused(ApiError),
}

/// Exchange a refresh token for a new pair.
///
/// The token comes from the body (`refreshToken`), the `x-refresh-token` header or the
/// `fd_refresh` cookie. Each refresh token works once: presenting a used one again revokes
/// its whole session family (someone copied it).
#[utoipa::path(
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional: the token may come from the header or cookie"),
    responses(
        (status = 200, description = "A new access and refresh token", body = LoginResponse),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_expired` or `refresh_token_reused`"),
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    state: Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = presented_refresh_token(&req, &body)?.ok_or_else(|| {
        ApiError::unauthorized("invalid_refresh_token", "no refresh token was presented")
    })?;
    let hash = sha256_hex(&token);
    let now = state.clock.now();
    let st = state.clone();
    let ip = client_ip(&req, state.config.trust_forwarded_for);
    let origin = events::anonymous(None, "anonymous", now);
    let outcome = state
        .db
        .transaction(move |conn| {
            let invalid = || {
                Refreshed::Refused(ApiError::unauthorized(
                    "invalid_refresh_token",
                    "the refresh token is not valid",
                ))
            };
            let Some(row) = refresh_tokens::find_by_hash(conn, &hash)? else {
                return Ok(invalid());
            };
            if row.revoked_at.is_some() {
                return Ok(invalid());
            }
            if row.used_at.is_some() || !refresh_tokens::mark_used(conn, &row.id, now.naive_utc())?
            {
                refresh_tokens::revoke_family(conn, &row.family_id, now.naive_utc())?;
                let origin = fleetdesk_events::Origin {
                    tenant_id: Some(row.tenant_id.clone()),
                    ..origin
                };
                emit(
                    conn,
                    &origin,
                    &ev::RefreshReuseDetected {
                        user_id: row.user_id.clone(),
                        family_id: row.family_id.clone(),
                        client_ip: Some(ip),
                    },
                )?;
                return Ok(Refreshed::Reused {
                    user_id: row.user_id,
                });
            }
            if row.expires_at <= now.naive_utc() {
                return Ok(Refreshed::Refused(ApiError::unauthorized(
                    "refresh_token_expired",
                    "the session has expired; log in again",
                )));
            }
            match users::find(conn, &row.tenant_id, &row.user_id)? {
                Some(user) if user.status == "active" => Ok::<_, ApiError>(Refreshed::Issued(
                    Box::new(login_response(&st, conn, user, Some(&row.family_id))?),
                )),
                _ => Ok(invalid()),
            }
        })
        .await?;
    match outcome {
        Refreshed::Issued(body) => Ok(session_response(
            &state,
            actix_web::http::StatusCode::OK,
            &body,
        )),
        Refreshed::Reused { user_id } => {
            tracing::warn!(user_id = %user_id, "a used refresh token was presented again; its session family is revoked");
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session is revoked",
            ))
        }
        Refreshed::Refused(e) => Err(e),
    }
}

/// Log out.
///
/// Revokes the session of the presented refresh token (body, header or cookie), or every
/// session of the caller when none is presented, and clears the cookie.
#[utoipa::path(
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional: which session to end"),
    responses((status = 204, description = "Logged out")),
    security(("bearer" = []))
)]
#[post("/auth/logout")]
async fn logout(
    state: Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = presented_refresh_token(&req, &body)?;
    let now = state.clock.now().naive_utc();
    state
        .db
        .run(move |conn| {
            match token.map(|t| sha256_hex(&t)) {
                Some(hash) => {
                    // Only the caller's own session: a token of someone else is ignored.
                    if let Some(row) = refresh_tokens::find_by_hash(conn, &hash)?
                        && row.user_id == caller.subject
                    {
                        refresh_tokens::revoke_family(conn, &row.family_id, now)?;
                    }
                }
                None => {
                    refresh_tokens::revoke_user(conn, &caller.subject, now)?;
                }
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    let mut gone = refresh_cookie("", 0);
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: String,
}

/// Ask for a password-reset token by email.
///
/// Always 202, whether or not the address has an account. The token is valid for an hour,
/// once, and supersedes earlier ones.
#[utoipa::path(tag = "auth", responses((status = 202, description = "Accepted")))]
#[post("/auth/password-reset/request")]
async fn request_password_reset(
    state: Data<AppState>,
    body: Json<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = body.into_inner().email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        return Err(ApiError::invalid_field(
            "email",
            "is required and at most 254 characters",
        ));
    }
    let now = state.clock.now();
    let origin = events::anonymous(None, "anonymous", now);
    state
        .db
        .transaction(move |conn| match users::find_by_email(conn, &email)? {
            Some(user) if user.status == "active" => {
                let origin = fleetdesk_events::Origin {
                    tenant_id: Some(user.tenant_id.clone()),
                    ..origin
                };
                start_password_reset(conn, &user, now, &origin)
            }
            _ => Ok(()),
        })
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetConfirm {
    pub token: String,
    pub new_password: String,
}

/// Set a new password with a reset token.
///
/// The token works once and for an hour; the new password ends every session of the user.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 400, description = "`validation_failed`: the token is invalid, used or expired, or the password too weak"),
    )
)]
#[post("/auth/password-reset/confirm")]
async fn confirm_password_reset(
    state: Data<AppState>,
    body: Json<PasswordResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let hash = sha256_hex(body.token.trim());
    let now = state.clock.now();
    let invalid = || ApiError::invalid_field("token", "is invalid, used or expired");
    let user = state
        .db
        .run(move |conn| {
            let reset = password_resets::find_by_hash(conn, &hash)?.ok_or_else(invalid)?;
            if reset.used_at.is_some() || reset.expires_at <= now.naive_utc() {
                return Err(invalid());
            }
            let user = users::find(conn, &reset.tenant_id, &reset.user_id)?.ok_or_else(invalid)?;
            Ok::<_, ApiError>((reset, user))
        })
        .await?;
    password::check_policy(&body.new_password, &user.1.email)
        .map_err(|m| ApiError::invalid_field("newPassword", m))?;
    let new_password = body.new_password;
    let new_hash = state
        .hashing(move |h| h.hash(&new_password))
        .await?
        .map_err(ApiError::internal)?;
    let origin = events::anonymous(Some(&user.1.tenant_id), &user.1.id, now);
    state
        .db
        .transaction(move |conn| {
            let (reset, user) = user;
            if !password_resets::mark_used(conn, &reset.id, now.naive_utc())? {
                return Err(invalid());
            }
            let changes = users::UserChanges {
                password_hash: Some(Some(new_hash)),
                ..Default::default()
            };
            users::update(
                conn,
                &user.tenant_id,
                &user.id,
                user.version,
                &changes,
                now.naive_utc(),
            )?;
            refresh_tokens::revoke_user(conn, &user.id, now.naive_utc())?;
            throttles::clear(conn, &format!("email:{}", user.email))?;
            let access = crate::accounts::user_access(conn, &user.tenant_id, &user.id)?;
            emit(
                conn,
                &origin,
                &ev::UserUpdated {
                    user_id: user.id.clone(),
                    changed: vec!["password".into()],
                    access,
                },
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTokenRequest {
    pub client_id: String,
    pub client_secret: String,
}

/// The tenant claim of service tokens: services name the tenant they act for per call.
pub const SERVICE_TENANT: &str = "*";

/// Get a service token with client credentials.
///
/// For service-to-service calls; clients are registered by `FLEETDESK_SERVICE_CLIENTS`. The
/// token's tenant is `*`: a service names the tenant it acts for in `X-Tenant-Id`.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "A service token", body = TokenResponse),
        (status = 401, description = "`invalid_client`"),
    )
)]
#[post("/auth/service/token")]
async fn service_token(
    state: Data<AppState>,
    body: Json<ServiceTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // Compare against every client so the time taken does not depend on which id matched.
    let known = state.config.service_clients.iter().fold(false, |found, c| {
        let id_ok = secrets_match(&body.client_id, &c.id);
        let secret_ok = secrets_match(&body.client_secret, &c.secret);
        found | (id_ok & secret_ok)
    });
    if !known {
        return Err(ApiError::unauthorized(
            "invalid_client",
            "unknown client or wrong secret",
        ));
    }
    let subject = Subject {
        id: body.client_id,
        tenant_id: SERVICE_TENANT.into(),
        roles: vec!["service".into()],
        perms: vec!["*".into()],
        kind: TokenType::Service,
    };
    let (access_token, expires_in) = accounts::sign(&state, subject, state.config.access_ttl)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
    }))
}

/// The presented API key: `X-API-Key`, or `Authorization: ApiKey <key>`.
fn presented_api_key(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("apikey")
        .then(|| key.trim().to_owned())
}

/// The nodes an API key may use now: its grants, narrowed to what its owner still holds.
pub fn key_permissions(key_grants: &[String], owner: &Grants) -> Vec<String> {
    let mut out = Vec::new();
    for granted in key_grants {
        if owner.allows(granted) {
            out.push(granted.clone());
        } else {
            out.extend(
                all_nodes()
                    .filter(|n| grants(granted, n.node) && owner.allows(n.node))
                    .map(|n| n.node.to_owned()),
            );
        }
    }
    effective(out)
}

/// Exchange an API key for a short-lived access token.
///
/// The token acts as the key's owner, limited to the key's permissions (and to what the
/// owner still holds).
#[utoipa::path(
    tag = "auth",
    params(("X-API-Key" = String, Header, description = "The key (or `Authorization: ApiKey <key>`)")),
    responses(
        (status = 200, description = "A short-lived token", body = TokenResponse),
        (status = 401, description = "`invalid_api_key`"),
    )
)]
#[post("/auth/api-key/exchange")]
async fn exchange_api_key(
    state: Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let invalid = || {
        ApiError::unauthorized(
            "invalid_api_key",
            "the API key is unknown, revoked or expired",
        )
    };
    let key = presented_api_key(&req).ok_or_else(invalid)?;
    let prefix = api_key_prefix(&key).ok_or_else(invalid)?.to_owned();
    let now = state.clock.now();
    let st = state.clone();
    let (access_token, expires_in) = state
        .db
        .run(move |conn| {
            let row = api_keys::find_by_prefix(conn, &prefix)?.ok_or_else(invalid)?;
            if !secrets_match(&sha256_hex(&key), &row.secret_hash) {
                return Err(invalid());
            }
            if row.expires_at.is_some_and(|t| t <= now.naive_utc()) {
                return Err(invalid());
            }
            let owner = users::find(conn, &row.tenant_id, &row.user_id)?
                .filter(|u| u.status == "active")
                .ok_or_else(invalid)?;
            let owner_grants = Grants::new(accounts::effective_permissions(conn, &owner)?);
            let perms = key_permissions(&list_from_json(&row.permissions), &owner_grants);
            api_keys::record_use(conn, &row.id, now.naive_utc())?;
            let subject = Subject {
                id: owner.id,
                tenant_id: owner.tenant_id,
                roles: Vec::new(),
                perms,
                kind: TokenType::ApiKey,
            };
            accounts::sign(&st, subject, st.config.api_key_token_ttl)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
    }))
}

/// The public keys that verify Fleetdesk access tokens (RFC 7517).
#[utoipa::path(tag = "auth", responses((status = 200, description = "JWK set", body = Object)))]
#[get("/.well-known/jwks.json")]
pub(super) async fn jwks(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keys.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_wildcard_narrows_to_what_the_owner_still_holds() {
        let owner = Grants::new(vec!["ticket.read".into(), "user.read".into()]);
        let perms = key_permissions(
            &["ticket.*".into(), "user.read".into(), "role.read".into()],
            &owner,
        );
        assert_eq!(
            perms,
            vec!["ticket.read".to_string(), "user.read".to_string()]
        );
        let admin = Grants::new(vec!["*".into()]);
        assert_eq!(
            key_permissions(&["ticket.*".into()], &admin),
            vec!["ticket.*".to_string()]
        );
    }
}
