//! Errors of the storage layer.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write.
    #[error("constraint violated: {0}")]
    Conflict(String),
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Query(DieselError),
    /// Configuration or migration failure at start-up.
    #[error("{0}")]
    Setup(String),
    /// The blocking task panicked or was cancelled.
    #[error("database task failed")]
    TaskFailed,
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(
                kind
                @ (DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation),
                info,
            ) => {
                let what = info
                    .constraint_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| info.message().to_owned());
                let kind = if matches!(kind, DatabaseErrorKind::UniqueViolation) {
                    "unique"
                } else {
                    "foreign key"
                };
                StoreError::Conflict(format!("{kind}: {what}"))
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => {
                // The connection is dead (the server restarted, or ended it): its idle
                // siblings probably are too (see `Db::run`).
                crate::conn::mark_dead();
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}
