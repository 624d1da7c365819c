//! `reviewtime-server migrate`: copies an SQLite database into PostgreSQL —
//! users, credentials (hashes only), sessions and activities — keeping every
//! id, so the same tokens and pairing links work against the new database
//! and the API answers the same.
//!
//! The copy is one PostgreSQL transaction: a failure leaves the target as it
//! was. A target that holds any row is refused unless `force` is given, and
//! then emptied first. Stop the servers on the source before copying:
//! anything written to it during the copy may be missed.

use std::path::Path;

use crate::store::postgres::{Imported, PgStore};
use crate::store::sqlite::Export;
use crate::store::{Counts, StoreError};

/// A user row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Row id (kept).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A credential row as stored: its hash, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Public id.
    pub id: String,
    /// SHA-256 of the secret.
    pub hash: String,
    /// Owner.
    pub user_id: i64,
    /// `api` or `beacon`.
    pub kind: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, when revoked.
    pub revoked_at: Option<i64>,
}

/// A session row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // The columns of the `sessions` table.
pub struct SessionRow {
    pub user_id: i64,
    pub id: String,
    pub host: String,
    pub owner: String,
    pub repo: String,
    pub number: i64,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub wall_secs: i64,
    pub active_secs: i64,
    pub revision: i64,
    pub updated_at: i64,
    pub auth_revision: i64,
    pub beacon_hash: Option<String>,
    pub beacon_revision: i64,
}

/// An activity row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // The columns of the `activities` table.
pub struct ActivityRow {
    pub user_id: i64,
    pub id: String,
    pub session_id: String,
    pub at: i64,
    pub kind: String,
    pub body: String,
    pub received_at: i64,
}

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the source or writing the target failed; nothing was written.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The target holds data and `force` was not given; nothing was written.
    #[error("the target database is not empty ({0}); nothing was copied. Pass --force to replace its contents")]
    NotEmpty(Counts),
    /// The copy does not hold what the source does (the source changed
    /// during the copy?); the copy was committed.
    #[error("copied, but the target holds {target} while the source holds {sqlite}: was a server writing to the source?")]
    Mismatch {
        /// Counted in the SQLite source after the copy.
        sqlite: Counts,
        /// Counted in the target after the copy.
        target: Counts,
    },
}

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Rows now in the target (equal to the source's).
    pub copied: Counts,
    /// What the target held before, when `force` replaced it.
    pub replaced: Option<Counts>,
}

/// Copies the SQLite file at `source` into the PostgreSQL database at
/// `target` (migrating its schema first).
pub async fn sqlite_to_postgres(
    source: &Path,
    target: &str,
    force: bool,
) -> Result<Report, MigrateError> {
    let export = Export::open(source)?;
    let store = PgStore::connect(target, 2).await?;
    match store.import(&export, force).await? {
        Imported::NotEmpty(counts) => Err(MigrateError::NotEmpty(counts)),
        Imported::Copied { replaced, now } => {
            let sqlite = export.counts()?;
            if sqlite != now {
                return Err(MigrateError::Mismatch {
                    sqlite,
                    target: now,
                });
            }
            Ok(Report {
                copied: now,
                replaced,
            })
        }
    }
}
