//! The first tenant and administrator of an empty installation.

use fleetdesk_events::identity as ev;
use fleetdesk_events::{Origin, emit};
use fleetdesk_web::ApiError;

use crate::AppState;
use crate::accounts::{create_tenant, new_user};
use crate::domain::secrets::random_token;
use crate::domain::system_roles::ADMIN;
use crate::store::{tenants, users};

/// The administrator created on first start.
#[derive(Clone)]
pub struct FirstAdmin {
    /// Their address.
    pub email: String,
    /// The generated password, when none was configured: print it once, never log it.
    pub generated_password: Option<String>,
}

/// Creates the first tenant and admin when the database has no tenant yet.
pub async fn ensure_first_admin(state: &AppState) -> anyhow::Result<Option<FirstAdmin>> {
    let db = state.db.clone();
    if db
        .run(|conn| tenants::count(conn).map_err(ApiError::from))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        > 0
    {
        return Ok(None);
    }
    let config = state.config.clone();
    let generated = config.admin_password.is_none().then(|| random_token(18));
    let password = config
        .admin_password
        .clone()
        .or_else(|| generated.clone())
        .unwrap_or_default();
    let hash = state
        .hashing(move |h| h.hash(&password))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    let now = state.clock.now();
    let email = config.admin_email.clone();
    let created = db
        .transaction(move |conn| {
            // Another replica may have bootstrapped meanwhile.
            if tenants::count(conn)? > 0 {
                return Ok::<_, ApiError>(false);
            }
            let origin = Origin::new(None, "system", now);
            let (tenant, roles) = create_tenant(conn, &config.admin_tenant, now, &origin)?;
            let user = new_user(&tenant.id, &config.admin_email, "Administrator", hash, now);
            users::insert(conn, &user)?;
            let origin = Origin::new(Some(tenant.id.clone()), "system", now);
            let admin: Vec<String> = roles
                .iter()
                .filter(|r| r.moniker == ADMIN)
                .map(|r| r.id.clone())
                .collect();
            users::set_roles(conn, &tenant.id, &user.id, &admin)?;
            let access = crate::accounts::user_access(conn, &tenant.id, &user.id)?;
            emit(
                conn,
                &origin,
                &ev::UserRegistered {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    name: user.name.clone(),
                    via: ev::Registration::Bootstrap,
                    roles: vec![ADMIN.to_owned()],
                    access,
                },
            )?;
            Ok(true)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(created.then_some(FirstAdmin {
        email,
        generated_password: generated,
    }))
}

/// Prints the first admin's credentials on standard output, once (never to the log).
#[allow(clippy::print_stdout)]
pub fn announce(admin: &FirstAdmin) {
    match &admin.generated_password {
        Some(password) => println!(
            "\nCreated the first administrator.\n  email:    {}\n  password: {password}\n\
             This password is shown only now; change it after logging in.\n",
            admin.email
        ),
        None => println!(
            "\nCreated the first administrator {} with the configured password.\n",
            admin.email
        ),
    }
}
