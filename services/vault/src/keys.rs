//! The keyring: the root key, the KEK versions it unwraps, and their rotation.
//!
//! Every replica holds the keyring in memory. Rotation writes a new KEK version; replicas pick
//! it up on their next [`Keyring::reload`] (on an unknown version, and every maintenance pass).
//! Maintenance rewraps data keys still under older versions in batches (each row updated only
//! if it is still under the version it was read with, so replicas do not fight) and retires a
//! version, clearing its wrapped key, once nothing uses it. Retirement counts with
//! `credentials` locked against writers, and a create checks after its insert that its version
//! is still active, so a version cannot retire under a concurrent write.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use fleetdesk_store::{Db, DbConn};
use tokio::sync::Notify;

use crate::crypto::{self, CryptoError, KeyBytes, RootKey};
use crate::store::schema::{credentials, vault_keys, vault_meta};

/// Why the vault cannot start with this root key.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "the vault master key does not match the key this vault was created with (its check value does not open); refusing to start. Set FLEETDESK_VAULT_MASTER_KEY (or the key file) to the original key"
    )]
    WrongRootKey,
    #[error("KEK version {0} does not open with the master key: {1}")]
    BrokenKek(i32, CryptoError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Store(#[from] fleetdesk_store::StoreError),
}

/// The root key and the unwrapped active KEKs.
pub struct Keyring {
    root: RootKey,
    keks: RwLock<BTreeMap<i32, KeyBytes>>,
    /// Wakes the maintenance task (after a rotation).
    pub wake: Notify,
}

/// A KEK version as `GET /vault/keys` shows it.
#[derive(Debug, Clone)]
pub struct KeyVersion {
    pub version: i32,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub data_keys: i64,
}

/// Whether `version` is still active; on PostgreSQL `credentials` is first locked against
/// writers and the version's row for update, both until the transaction ends (retirement).
fn lock_for_retire(conn: &mut DbConn, version: i32) -> QueryResult<bool> {
    if let DbConn::Pg(c) = conn {
        use diesel::connection::SimpleConnection;
        c.batch_execute("LOCK TABLE credentials IN SHARE MODE")?;
        let found: Option<i32> = vault_keys::table
            .filter(vault_keys::version.eq(version))
            .filter(vault_keys::retired_at.is_null())
            .select(vault_keys::version)
            .for_update()
            .first(c)
            .optional()?;
        return Ok(found.is_some());
    }
    // SQLite transactions are BEGIN IMMEDIATE: one writer at a time already.
    Keyring::still_active(conn, version)
}

impl Keyring {
    /// Opens the keyring of the database: on first use seals the check value and makes KEK
    /// version 1; afterwards refuses a root key that does not open the check value.
    pub fn open(
        conn: &mut DbConn,
        root: RootKey,
        now: NaiveDateTime,
    ) -> Result<Self, KeyringError> {
        let check: Option<String> = vault_meta::table
            .select(vault_meta::check_value)
            .first(conn)
            .optional()?;
        match check {
            Some(check) if !root.verify(&check) => return Err(KeyringError::WrongRootKey),
            Some(_) => {}
            None => {
                let created = fleetdesk_store::transaction(conn, |conn| {
                    let exists: i64 = vault_meta::table.count().get_result(conn)?;
                    if exists > 0 {
                        return Ok(());
                    }
                    diesel::insert_into(vault_meta::table)
                        .values((
                            vault_meta::id.eq(1),
                            vault_meta::check_value.eq(root.check_value()),
                            vault_meta::created_at.eq(now),
                        ))
                        .execute(conn)?;
                    let kek = KeyBytes::generate();
                    diesel::insert_into(vault_keys::table)
                        .values((
                            vault_keys::version.eq(1),
                            vault_keys::wrapped.eq(root.wrap_kek(1, &kek)),
                            vault_keys::created_at.eq(now),
                        ))
                        .execute(conn)?;
                    Ok::<_, diesel::result::Error>(())
                });
                match created {
                    // Another replica created it first: its check value is read below.
                    Ok(())
                    | Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => {}
                    Err(e) => return Err(e.into()),
                }
                let check: String = vault_meta::table
                    .select(vault_meta::check_value)
                    .first(conn)?;
                if !root.verify(&check) {
                    return Err(KeyringError::WrongRootKey);
                }
            }
        }
        let ring = Self {
            root,
            keks: RwLock::new(BTreeMap::new()),
            wake: Notify::new(),
        };
        ring.reload(conn)?;
        Ok(ring)
    }

    /// Re-reads the active KEK versions.
    pub fn reload(&self, conn: &mut DbConn) -> Result<(), KeyringError> {
        let rows: Vec<(i32, Option<String>)> = vault_keys::table
            .filter(vault_keys::retired_at.is_null())
            .select((vault_keys::version, vault_keys::wrapped))
            .load(conn)?;
        let mut keks = BTreeMap::new();
        for (version, wrapped) in rows {
            let Some(wrapped) = wrapped else { continue };
            let kek = self
                .root
                .unwrap_kek(version, &wrapped)
                .map_err(|e| KeyringError::BrokenKek(version, e))?;
            keks.insert(version, kek);
        }
        if let Ok(mut guard) = self.keks.write() {
            *guard = keks;
        }
        Ok(())
    }

    fn kek(&self, version: i32) -> Option<KeyBytes> {
        self.keks.read().ok()?.get(&version).cloned()
    }

    /// The newest version this replica knows.
    pub fn current_version(&self) -> Option<i32> {
        self.keks.read().ok()?.keys().next_back().copied()
    }

    /// The KEK to wrap a new data key with: the newest active version in the database.
    /// The caller confirms with [`Keyring::still_active`] after writing, in its transaction.
    pub fn writing_kek(&self, conn: &mut DbConn) -> Result<(i32, KeyBytes), KeyringError> {
        let newest: Option<i32> = vault_keys::table
            .filter(vault_keys::retired_at.is_null())
            .select(diesel::dsl::max(vault_keys::version))
            .first(conn)?;
        let newest = newest.ok_or(KeyringError::BrokenKek(0, CryptoError::UnknownKek(0)))?;
        if self.kek(newest).is_none() {
            self.reload(conn)?;
        }
        let kek = self.kek(newest).ok_or(KeyringError::BrokenKek(
            newest,
            CryptoError::UnknownKek(newest),
        ))?;
        Ok((newest, kek))
    }

    /// Whether KEK `version` is still active, asked after the caller wrote a data key under
    /// it. Retirement locks `credentials` against writers while it counts (PostgreSQL; SQLite
    /// has one writer), so either it saw that row and kept the version, or it retired first
    /// and this says no: the caller rolls back instead of storing a key nobody can unwrap.
    pub fn still_active(conn: &mut DbConn, version: i32) -> QueryResult<bool> {
        let found: Option<i32> = vault_keys::table
            .filter(vault_keys::version.eq(version))
            .filter(vault_keys::retired_at.is_null())
            .select(vault_keys::version)
            .first(conn)
            .optional()?;
        Ok(found.is_some())
    }

    /// A fresh data key for a new credential, and its wrapped form and KEK version.
    pub fn new_data_key(
        &self,
        conn: &mut DbConn,
        tenant_id: &str,
        credential_id: &str,
    ) -> Result<(KeyBytes, String, i32), KeyringError> {
        let (version, kek) = self.writing_kek(conn)?;
        let dk = KeyBytes::generate();
        let wrapped = crypto::wrap_data_key(&kek, version, tenant_id, credential_id, &dk);
        Ok((dk, wrapped, version))
    }

    /// Unwraps a credential's data key, reloading once if its KEK version is new to us.
    pub fn data_key(
        &self,
        conn: &mut DbConn,
        tenant_id: &str,
        credential_id: &str,
        wrapped: &str,
    ) -> Result<KeyBytes, CryptoError> {
        let version = crypto::wrapped_kek_version(wrapped)?;
        let kek = match self.kek(version) {
            Some(k) => k,
            None => {
                self.reload(conn)
                    .map_err(|_| CryptoError::UnknownKek(version))?;
                self.kek(version).ok_or(CryptoError::UnknownKek(version))?
            }
        };
        crypto::unwrap_data_key(&kek, tenant_id, credential_id, wrapped)
    }

    /// Adds a KEK version (the new current one) and wakes maintenance.
    pub fn rotate(&self, conn: &mut DbConn, now: NaiveDateTime) -> Result<i32, KeyringError> {
        let version = fleetdesk_store::transaction(conn, |conn| {
            let newest: Option<i32> = vault_keys::table
                .select(diesel::dsl::max(vault_keys::version))
                .first(conn)?;
            let version = newest.unwrap_or(0) + 1;
            let kek = KeyBytes::generate();
            diesel::insert_into(vault_keys::table)
                .values((
                    vault_keys::version.eq(version),
                    vault_keys::wrapped.eq(self.root.wrap_kek(version, &kek)),
                    vault_keys::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok::<_, diesel::result::Error>(version)
        })?;
        self.reload(conn)?;
        self.wake.notify_one();
        Ok(version)
    }

    /// One maintenance step: rewraps up to `batch` data keys that are under an older version
    /// than the newest; returns how many it rewrapped. With none left, retires every older
    /// version nothing uses.
    pub fn maintain(
        &self,
        conn: &mut DbConn,
        batch: i64,
        now: NaiveDateTime,
    ) -> Result<usize, KeyringError> {
        self.reload(conn)?;
        let Some(newest) = self.current_version() else {
            return Ok(0);
        };
        let stale: Vec<(String, String, String, i32)> = credentials::table
            .filter(credentials::kek_version.lt(newest))
            .select((
                credentials::id,
                credentials::tenant_id,
                credentials::data_key,
                credentials::kek_version,
            ))
            .limit(batch)
            .load(conn)?;
        let kek = self.kek(newest).ok_or(KeyringError::BrokenKek(
            newest,
            CryptoError::UnknownKek(newest),
        ))?;
        let mut done = 0;
        for (id, tenant, wrapped, old) in stale {
            let dk = match self.data_key(conn, &tenant, &id, &wrapped) {
                Ok(dk) => dk,
                Err(e) => {
                    tracing::error!(credential_id = %id, error = %e, "cannot unwrap a data key to rewrap it");
                    metrics::counter!("vault_integrity_errors_total").increment(1);
                    continue;
                }
            };
            let rewrapped = crypto::wrap_data_key(&kek, newest, &tenant, &id, &dk);
            done += diesel::update(
                credentials::table
                    .filter(credentials::id.eq(&id))
                    .filter(credentials::kek_version.eq(old)),
            )
            .set((
                credentials::data_key.eq(rewrapped),
                credentials::kek_version.eq(newest),
            ))
            .execute(conn)?;
        }
        if done == 0 {
            self.retire_unused(conn, newest, now)?;
        }
        metrics::counter!("vault_data_keys_rewrapped_total").increment(done as u64);
        Ok(done)
    }

    fn retire_unused(
        &self,
        conn: &mut DbConn,
        newest: i32,
        now: NaiveDateTime,
    ) -> Result<(), KeyringError> {
        let older: Vec<i32> = vault_keys::table
            .filter(vault_keys::retired_at.is_null())
            .filter(vault_keys::version.lt(newest))
            .select(vault_keys::version)
            .load(conn)?;
        for version in older {
            fleetdesk_store::transaction(conn, |conn| {
                if !lock_for_retire(conn, version)? {
                    return Ok(());
                }
                let used: i64 = credentials::table
                    .filter(credentials::kek_version.eq(version))
                    .count()
                    .get_result(conn)?;
                if used == 0 {
                    diesel::update(vault_keys::table.filter(vault_keys::version.eq(version)))
                        .set((
                            vault_keys::wrapped.eq(None::<String>),
                            vault_keys::retired_at.eq(Some(now)),
                        ))
                        .execute(conn)?;
                    tracing::info!(version, "KEK version retired: no data key uses it");
                }
                Ok::<_, diesel::result::Error>(())
            })?;
        }
        self.reload(conn)
    }

    /// Every version with how many of `tenant_id`'s data keys it wraps. The versions belong
    /// to the installation; the counts are the tenant's own, so no tenant learns how many
    /// credentials the others keep.
    pub fn versions(conn: &mut DbConn, tenant_id: &str) -> QueryResult<Vec<KeyVersion>> {
        let rows: Vec<(i32, NaiveDateTime, Option<NaiveDateTime>)> = vault_keys::table
            .select((
                vault_keys::version,
                vault_keys::created_at,
                vault_keys::retired_at,
            ))
            .order(vault_keys::version.desc())
            .load(conn)?;
        let counts: Vec<(i32, i64)> = credentials::table
            .filter(credentials::tenant_id.eq(tenant_id))
            .group_by(credentials::kek_version)
            .select((credentials::kek_version, diesel::dsl::count_star()))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(version, created_at, retired_at)| KeyVersion {
                version,
                created_at,
                retired_at,
                data_keys: counts
                    .iter()
                    .find(|(v, _)| *v == version)
                    .map_or(0, |(_, n)| *n),
            })
            .collect())
    }
}

/// Runs maintenance until nothing is left to rewrap, then waits for a rotation or `every`.
pub fn spawn_maintenance(
    db: Db,
    ring: Arc<Keyring>,
    clock: Arc<dyn fleetdesk_store::Clock>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let ring2 = ring.clone();
            let now = clock.now().naive_utc();
            let step = db.run(move |conn| ring2.maintain(conn, 200, now)).await;
            match step {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "key maintenance failed; retrying later"),
            }
            tokio::select! {
                _ = ring.wake.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}
