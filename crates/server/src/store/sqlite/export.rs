//! Reading a whole SQLite database out in chunks, for `migrate`.

use std::path::Path;

use rusqlite::{params, Connection};

use super::{open_connection, to_u64};
use crate::migrate::{ActivityRow, SessionRow, TokenRow, UserRow};
use crate::store::{Counts, StoreError, UserId};

/// Reads a whole SQLite database in chunks, for `migrate`: every table in
/// its primary key order, so a chunk boundary never skips or repeats a row.
pub struct Export {
    conn: Connection,
}

impl Export {
    /// Opens the SQLite file at `path`, which must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Location(format!(
                "no SQLite database at {}",
                path.display()
            )));
        }
        Ok(Export {
            conn: open_connection(path)?,
        })
    }

    /// Row counts of the source.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let n = |table: &str| -> Result<u64, StoreError> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            to_u64("count", n)
        };
        Ok(Counts {
            users: n("users")?,
            tokens: n("tokens")?,
            sessions: n("sessions")?,
            activities: n("activities")?,
        })
    }

    /// Every user.
    pub fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, created_at FROM users ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(UserRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every credential, revoked ones included (their hashes only).
    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, hash, user_id, kind, created_at, revoked_at FROM tokens ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    hash: r.get(1)?,
                    user_id: r.get(2)?,
                    kind: r.get(3)?,
                    created_at: r.get(4)?,
                    revoked_at: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Up to `limit` sessions after the key `after` (`(user_id, id)`).
    pub fn sessions(
        &self,
        after: Option<&(UserId, String)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let (user, id) = after.cloned().unwrap_or((i64::MIN, String::new()));
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at,
                    auth_revision, beacon_hash, beacon_revision
             FROM sessions WHERE (user_id, id) > (?1, ?2) ORDER BY user_id, id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![user, id, limit as i64], |r| {
                Ok(SessionRow {
                    user_id: r.get(0)?,
                    id: r.get(1)?,
                    host: r.get(2)?,
                    owner: r.get(3)?,
                    repo: r.get(4)?,
                    number: r.get(5)?,
                    started_at: r.get(6)?,
                    ended_at: r.get(7)?,
                    wall_secs: r.get(8)?,
                    active_secs: r.get(9)?,
                    revision: r.get(10)?,
                    updated_at: r.get(11)?,
                    auth_revision: r.get(12)?,
                    beacon_hash: r.get(13)?,
                    beacon_revision: r.get(14)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Up to `limit` activities after the key `after` (`(user_id, id)`).
    pub fn activities(
        &self,
        after: Option<&(UserId, String)>,
        limit: usize,
    ) -> Result<Vec<ActivityRow>, StoreError> {
        let (user, id) = after.cloned().unwrap_or((i64::MIN, String::new()));
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, id, session_id, at, kind, body, received_at
             FROM activities WHERE (user_id, id) > (?1, ?2) ORDER BY user_id, id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![user, id, limit as i64], |r| {
                Ok(ActivityRow {
                    user_id: r.get(0)?,
                    id: r.get(1)?,
                    session_id: r.get(2)?,
                    at: r.get(3)?,
                    kind: r.get(4)?,
                    body: r.get(5)?,
                    received_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
