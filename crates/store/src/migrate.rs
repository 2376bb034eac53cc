//! Embedded migrations, one folder per backend, and database creation.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::conn::{Backend, DbConn, establish};
use crate::error::StoreError;

const PLATFORM_PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const PLATFORM_SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A service's migrations for each backend (`migrations/postgres`, `migrations/sqlite`).
///
/// The sets are functions because `EmbeddedMigrations` is neither `Copy` nor `Clone`; a
/// service passes `|| MIGRATIONS_PG` where `MIGRATIONS_PG` is its `embed_migrations!` const.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// For PostgreSQL.
    pub postgres: fn() -> EmbeddedMigrations,
    /// For SQLite.
    pub sqlite: fn() -> EmbeddedMigrations,
    /// A number unique per service, used as the PostgreSQL advisory lock that keeps two
    /// replicas from migrating at once.
    pub lock_key: i64,
}

impl Migrations {
    /// Only the platform tables (outbox, processed events, in-process bus): for a database
    /// that holds nothing else, such as the one-binary mode's bus.
    pub const PLATFORM: Migrations = Migrations {
        postgres: || PLATFORM_PG,
        sqlite: || PLATFORM_SQLITE,
        lock_key: 7_100_000,
    };

    /// Runs the pending platform migrations and then the service's, on a fresh connection to
    /// `url`. Both sets share the database's one table of applied versions, so a version in
    /// both would apply only the first of them and silently skip the other: the platform's
    /// are all dated 2026-11-22 (a new one takes the next number of that day), the services'
    /// later, and a clash is refused before anything runs.
    pub fn run(&self, backend: Backend, url: &str) -> Result<(), StoreError> {
        match backend {
            Backend::Postgres => distinct::<diesel::pg::Pg>(&PLATFORM_PG, &(self.postgres)())?,
            Backend::Sqlite => {
                distinct::<diesel::sqlite::Sqlite>(&PLATFORM_SQLITE, &(self.sqlite)())?
            }
        }
        let mut conn = establish(backend, url)?;
        match backend {
            Backend::Postgres => {
                conn.batch_execute(&format!("SELECT pg_advisory_lock({})", self.lock_key))?;
                let result = run_set(&mut conn, PLATFORM_PG)
                    .and_then(|()| run_set(&mut conn, (self.postgres)()));
                conn.batch_execute(&format!("SELECT pg_advisory_unlock({})", self.lock_key))?;
                result
            }
            Backend::Sqlite => run_set(&mut conn, PLATFORM_SQLITE)
                .and_then(|()| run_set(&mut conn, (self.sqlite)())),
        }
    }
}

fn versions<DB: diesel::backend::Backend>(
    set: &EmbeddedMigrations,
) -> Result<Vec<(String, String)>, StoreError> {
    let all = MigrationSource::<DB>::migrations(set)
        .map_err(|e| StoreError::Setup(format!("cannot read the migrations: {e}")))?;
    Ok(all
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect())
}

// Refuses a service migration whose version the platform already uses. The platform's own
// set (a database that holds only platform tables, such as the one binary's bus) is no clash.
fn distinct<DB: diesel::backend::Backend>(
    platform: &EmbeddedMigrations,
    service: &EmbeddedMigrations,
) -> Result<(), StoreError> {
    match clash(&versions::<DB>(platform)?, &versions::<DB>(service)?) {
        Some(problem) => Err(StoreError::Setup(problem)),
        None => Ok(()),
    }
}

fn clash(platform: &[(String, String)], service: &[(String, String)]) -> Option<String> {
    if platform == service {
        return None;
    }
    service.iter().find_map(|(version, name)| {
        let (_, mine) = platform.iter().find(|(v, _)| v == version)?;
        Some(format!(
            "migration {name} has the version of the platform's {mine} ({version}); one of \
             them would never run: give the service's a later date"
        ))
    })
}

fn run_set(conn: &mut DbConn, set: EmbeddedMigrations) -> Result<(), StoreError> {
    conn.run_pending_migrations(set)
        .map(|_| ())
        .map_err(|e| StoreError::Setup(format!("migration failed: {e}")))
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    found: i32,
}

/// Given a PostgreSQL server URL, makes sure database `name` exists on it and returns the URL
/// of that database. SQLite URLs are returned unchanged.
pub fn ensure_database(url: &str, name: &str) -> Result<String, StoreError> {
    if Backend::of_url(url)? != Backend::Postgres {
        return Ok(url.to_owned());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Setup(format!("invalid database name {name:?}")));
    }
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Setup(format!("invalid database URL: {e}")))?;
    let mut conn =
        PgConnection::establish(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let exists = diesel::sql_query("SELECT 1 AS found FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Found>(&mut conn)
        .optional()?
        .is_some();
    if !exists {
        // Two processes may race here: the loser fails with "already exists" or a unique
        // violation on pg_database; either way the database is there afterwards.
        if let Err(e) = conn.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
            let there = diesel::sql_query("SELECT 1 AS found FROM pg_database WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(name)
                .get_result::<Found>(&mut conn)
                .optional()?
                .is_some();
            if !there {
                return Err(e.into());
            }
        }
    }
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_migration_may_not_reuse_a_platform_version() {
        let platform = versions::<diesel::pg::Pg>(&PLATFORM_PG).unwrap();
        assert!(platform.len() >= 3);
        assert_eq!(clash(&platform, &platform), None, "the platform's own set");
        let m = |v: &str, n: &str| (v.to_owned(), n.to_owned());
        let service = vec![
            m("20261123000001", "2026-11-23-000001_tickets"),
            m("20261122000003", "2026-11-22-000003_list_indexes"),
        ];
        let problem = clash(&platform, &service).unwrap();
        assert!(
            problem.contains("2026-11-22-000003_list_indexes"),
            "{problem}"
        );
        assert!(
            problem.contains("2026-11-22-000003_outbox_no_notify"),
            "{problem}"
        );
        assert_eq!(clash(&platform, &service[..1]), None);
    }
}
