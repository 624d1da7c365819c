//! The embedded store: one SQLite file (WAL), migrated at open, one
//! connection used from blocking tasks. Every write that must be
//! all-or-nothing is one transaction, and the single connection makes each
//! read-then-write atomic: this store serves one server process.
//! [`Export`] reads a whole database out (`migrate`).

mod export;

pub use export::Export;

use std::path::Path;
use std::sync::{Arc, Mutex};

use reviewtime_protocol::{BatchAck, PullRef, SessionRecord};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    decide, ActivityFilter, ActivityPage, Backend, BeaconTarget, BeaconWrite, CredentialInfo,
    Decision, NewActivity, NewCredential, RepoTotal, SessionFilter, SessionPage, SessionStatus,
    SessionWrite, Store, StoreError, StoredSession, TotalsRows, UserId, Writer, DAY_MS,
};
use crate::auth::Kind;

/// Schema migrations, in order; `PRAGMA user_version` records how many ran.
pub const MIGRATIONS: &[&str] = &[
    // 1: users, hashed tokens, sessions and activities, all keyed per user.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id),
        kind TEXT NOT NULL CHECK (kind IN ('api', 'beacon')),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE sessions (
        user_id INTEGER NOT NULL REFERENCES users(id),
        id TEXT NOT NULL,
        host TEXT NOT NULL,
        owner TEXT NOT NULL,
        repo TEXT NOT NULL,
        number INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        wall_secs INTEGER NOT NULL,
        active_secs INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX sessions_by_start ON sessions (user_id, started_at DESC);
    CREATE TABLE activities (
        user_id INTEGER NOT NULL REFERENCES users(id),
        id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, id)
    );
    CREATE INDEX activities_by_session ON activities (user_id, session_id);",
    // 2: per-session beacon capabilities and the client's own revision;
    // credential ids drawn at random (they were the secret's first 8 hex
    // characters: re-keyed, so no part of any secret stays in the table).
    "ALTER TABLE sessions ADD COLUMN auth_revision INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET auth_revision = revision;
    ALTER TABLE sessions ADD COLUMN beacon_hash TEXT;
    CREATE INDEX sessions_by_beacon ON sessions (beacon_hash) WHERE beacon_hash IS NOT NULL;
    UPDATE tokens SET id = lower(hex(randomblob(8)));",
    // 3: the highest revision a beacon wrote, so that a beacon delivered
    // again after the client replaced its state stays a repeat.
    "ALTER TABLE sessions ADD COLUMN beacon_revision INTEGER NOT NULL DEFAULT 0;",
];

/// Opens (creating if needed) the SQLite file at `path` and brings its schema
/// up to date.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Location(format!("{}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(done).unwrap_or(0))
    {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(conn)
}

/// The SQLite [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens the file at `path`; see [`open_connection`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(open_connection(path)?)),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

fn to_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is {v}")))
}

/// A float sum as u64: `as` saturates (negative or NaN to 0, too large to
/// `u64::MAX`).
fn saturate(sum: f64) -> u64 {
    sum as u64
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is {v}")))
}

/// A session row as stored: the columns of [`SESSION_COLUMNS`].
type RawSession = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    i64,
);

const SESSION_COLUMNS: &str =
    "id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision";

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSession> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn session(raw: RawSession) -> Result<SessionRecord, StoreError> {
    let (id, host, owner, repo, number, started_at, ended_at, wall, active, revision) = raw;
    Ok(SessionRecord {
        id,
        pr: PullRef {
            host,
            owner,
            repo,
            number: to_u64("number", number)?,
        },
        started_at,
        ended_at,
        wall_secs: to_u64("wall_secs", wall)?,
        active_secs: to_u64("active_secs", active)?,
        revision: to_u64("revision", revision)?,
    })
}

fn upsert_session(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    s: &SessionRecord,
    writer: &Writer,
    now: i64,
) -> Result<SessionWrite, StoreError> {
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS}, auth_revision, beacon_hash, beacon_revision FROM sessions WHERE user_id = ?1 AND id = ?2"
        ))?
        .query_row(params![user, s.id], |r| {
            Ok((
                read_raw(r)?,
                r.get::<_, i64>(10)?,
                r.get::<_, Option<String>>(11)?,
                r.get::<_, i64>(12)?,
            ))
        })
        .optional()?
        .map(|(raw, auth, hash, beacon)| {
            Ok::<_, StoreError>(StoredSession {
                record: session(raw)?,
                auth_revision: to_u64("auth_revision", auth)?,
                beacon_revision: to_u64("beacon_revision", beacon)?,
                beacon_hash: hash,
            })
        })
        .transpose()?;
    match decide(s, writer, existing.as_ref()) {
        Decision::Apply => {}
        Decision::Unchanged => {
            let old =
                existing.ok_or_else(|| StoreError::Corrupt("unchanged without a row".into()))?;
            return Ok(SessionWrite::Unchanged(old.record));
        }
        Decision::Refuse(why) => return Ok(SessionWrite::Refused(why)),
    }
    let revision = to_i64("revision", s.revision)?;
    // What the other writer last wrote is kept.
    let kept = |f: fn(&StoredSession) -> u64, what: &str| {
        existing.as_ref().map_or(Ok(0), |old| to_i64(what, f(old)))
    };
    let (auth_revision, beacon_revision, hash) = match writer {
        Writer::Client { beacon_hash } => (
            revision,
            kept(|o| o.beacon_revision, "beacon_revision")?,
            beacon_hash.clone(),
        ),
        Writer::Beacon => (kept(|o| o.auth_revision, "auth_revision")?, revision, None),
    };
    tx.prepare_cached(
        "INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at,
                               auth_revision, beacon_hash, beacon_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (user_id, id) DO UPDATE SET ended_at = excluded.ended_at, wall_secs = excluded.wall_secs,
           active_secs = excluded.active_secs, revision = excluded.revision, updated_at = excluded.updated_at,
           auth_revision = excluded.auth_revision, beacon_hash = COALESCE(sessions.beacon_hash, excluded.beacon_hash),
           beacon_revision = excluded.beacon_revision",
    )?
    .execute(params![
        user,
        s.id,
        s.pr.host,
        s.pr.owner,
        s.pr.repo,
        to_i64("number", s.pr.number)?,
        s.started_at,
        s.ended_at,
        to_i64("wall_secs", s.wall_secs)?,
        to_i64("active_secs", s.active_secs)?,
        revision,
        now,
        auth_revision,
        hash,
        beacon_revision,
    ])?;
    Ok(SessionWrite::Applied(s.clone()))
}

/// One item at a time, in order: the reference behaviour that
/// [`super::settle_batch`] reproduces for set-wise stores.
fn insert_activities(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    items: &[NewActivity],
    now: i64,
) -> Result<BatchAck, StoreError> {
    let mut ack = BatchAck::default();
    let mut select =
        tx.prepare_cached("SELECT body FROM activities WHERE user_id = ?1 AND id = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO activities (user_id, id, session_id, at, kind, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in items {
        let stored: Option<String> = select
            .query_row(params![user, a.id], |r| r.get(0))
            .optional()?;
        match stored {
            None => {
                insert.execute(params![user, a.id, a.session_id, a.at, a.kind, a.body, now])?;
                ack.accepted += 1;
            }
            Some(old) if old == a.body => ack.duplicates += 1,
            Some(_) => ack.conflicts.push(super::conflict(&a.id)),
        }
    }
    Ok(ack)
}

fn insert_user(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    now: i64,
    credentials: &[NewCredential],
) -> Result<UserId, StoreError> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::NameTaken(name.to_string()));
    }
    tx.execute(
        "INSERT INTO users (name, created_at) VALUES (?1, ?2)",
        params![name, now],
    )?;
    let user = tx.last_insert_rowid();
    for c in credentials {
        insert_credential(tx, user, c, now)?;
    }
    Ok(user)
}

fn insert_credential(
    conn: &Connection,
    user: UserId,
    c: &NewCredential,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, hash, user_id, kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![c.id, c.hash, user, c.kind.as_str(), now],
    )?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    async fn create_user(
        &self,
        name: &str,
        now: i64,
        credentials: &[NewCredential],
    ) -> Result<UserId, StoreError> {
        let (name, credentials) = (name.to_string(), credentials.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = insert_user(&tx, &name, now, &credentials)?;
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn create_first_user(
        &self,
        name: &str,
        now: i64,
        credentials: &[NewCredential],
    ) -> Result<Option<UserId>, StoreError> {
        let (name, credentials) = (name.to_string(), credentials.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let any: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| r.get(0))?;
            if any {
                return Ok(None);
            }
            let user = insert_user(&tx, &name, now, &credentials)?;
            tx.commit()?;
            Ok(Some(user))
        })
        .await
    }

    async fn user_id(&self, name: &str) -> Result<Option<UserId>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            Ok(conn
                .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn add_credential(
        &self,
        user: UserId,
        credential: &NewCredential,
        now: i64,
    ) -> Result<(), StoreError> {
        let c = credential.clone();
        self.run(move |conn| insert_credential(conn, user, &c, now))
            .await
    }

    async fn revoke_credential(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |conn| {
            let n = conn.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn credential_owner(
        &self,
        hash: &str,
        kind: Kind,
    ) -> Result<Option<(UserId, String)>, StoreError> {
        let hash = hash.to_string();
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.hash = ?1 AND t.kind = ?2 AND t.revoked_at IS NULL",
                )?
                .query_row(params![hash, kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await
    }

    async fn put_session(
        &self,
        user: UserId,
        record: &SessionRecord,
        writer: &Writer,
        now: i64,
    ) -> Result<SessionWrite, StoreError> {
        let (record, writer) = (record.clone(), writer.clone());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let write = upsert_session(&tx, user, &record, &writer, now)?;
            tx.commit()?;
            Ok(write)
        })
        .await
    }

    async fn beacon_target(
        &self,
        session_id: &str,
        beacon_hash: &str,
    ) -> Result<BeaconTarget, StoreError> {
        let (id, hash) = (session_id.to_string(), beacon_hash.to_string());
        self.run(move |conn| {
            let owners = conn
                .prepare_cached(
                    "SELECT user_id FROM sessions WHERE beacon_hash = ?1 AND id = ?2 LIMIT 2",
                )?
                .query_map(params![hash, id], |r| r.get::<_, UserId>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            // Two owners would mean two clients chose the same random secret:
            // a beacon cannot tell which it speaks for.
            Ok(match owners.as_slice() {
                [user] => BeaconTarget::Owner(*user),
                _ => BeaconTarget::Unknown,
            })
        })
        .await
    }

    async fn credentials(&self, user: UserId) -> Result<Vec<CredentialInfo>, StoreError> {
        self.run(move |conn| {
            conn.prepare_cached(
                "SELECT id, kind, created_at, revoked_at FROM tokens WHERE user_id = ?1 ORDER BY created_at, id",
            )?
            .query_map([user], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?))
            })?
            .map(|row| {
                let (id, kind, created_at, revoked_at) = row?;
                let kind = Kind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("credential {id} has kind {kind}")))?;
                Ok(CredentialInfo { id, kind, created_at, revoked_at })
            })
            .collect()
        })
        .await
    }

    async fn put_activities(
        &self,
        user: UserId,
        items: &[NewActivity],
        now: i64,
    ) -> Result<BatchAck, StoreError> {
        let items = items.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let ack = insert_activities(&tx, user, &items, now)?;
            tx.commit()?;
            Ok(ack)
        })
        .await
    }

    async fn put_beacon(
        &self,
        user: UserId,
        sessions: &[SessionRecord],
        items: &[NewActivity],
        now: i64,
    ) -> Result<BeaconWrite, StoreError> {
        let (sessions, items) = (sessions.to_vec(), items.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            for s in &sessions {
                if let SessionWrite::Refused(why) =
                    upsert_session(&tx, user, s, &Writer::Beacon, now)?
                {
                    // Dropping `tx` rolls the beacon back.
                    return Ok(BeaconWrite::Refused(s.id.clone(), why));
                }
            }
            let ack = insert_activities(&tx, user, &items, now)?;
            tx.commit()?;
            Ok(BeaconWrite::Stored(ack))
        })
        .await
    }

    async fn sessions(
        &self,
        user: UserId,
        filter: &SessionFilter,
    ) -> Result<SessionPage, StoreError> {
        let q = filter.clone();
        self.run(move |conn| {
            let mut clause = String::from("user_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![user.into()];
            let mut arg = |clause: &mut String, sql: &str, v: rusqlite::types::Value| {
                args.push(v);
                *clause += &format!(" AND {sql} ?{}", args.len());
            };
            if let Some((owner, name)) = &q.repo {
                arg(&mut clause, "owner =", owner.clone().into());
                arg(&mut clause, "repo =", name.clone().into());
            }
            if let Some(pr) = q.pr {
                arg(&mut clause, "number =", pr.into());
            }
            if let Some(from) = q.from {
                arg(&mut clause, "started_at >=", from.into());
            }
            if let Some(to) = q.to {
                arg(&mut clause, "started_at <", to.into());
            }
            match q.status {
                None => {}
                Some(SessionStatus::InProgress) => clause += " AND ended_at IS NULL",
                Some(SessionStatus::Completed) => clause += " AND ended_at IS NOT NULL",
            }
            let total: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM sessions WHERE {clause}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE {clause} ORDER BY started_at DESC, id LIMIT {} OFFSET {}",
                q.limit, q.offset
            ))?;
            let sessions = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), read_raw)?
                .map(|raw| session(raw?))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let total = to_u64("count", total)?;
            let next = u64::from(q.offset) + sessions.len() as u64;
            Ok(SessionPage {
                next_offset: (next < total).then(|| u32::try_from(next).ok()).flatten(),
                total,
                sessions,
            })
        })
        .await
    }

    async fn totals(&self, user: UserId, since: i64) -> Result<TotalsRows, StoreError> {
        self.run(move |conn| {
            // TOTAL() sums in floating point: it never overflows (SUM() of
            // integers raises an error past 2^63), and the sums are then
            // saturated into u64. Rows stored before the bounds existed may
            // hold absurd values; /totals still answers.
            let mut stmt = conn.prepare(
                "SELECT owner || '/' || repo, COUNT(*), TOTAL(active_secs), TOTAL(wall_secs) FROM sessions
                 WHERE user_id = ?1 AND started_at >= ?2 GROUP BY owner, repo ORDER BY TOTAL(active_secs) DESC, 1",
            )?;
            let per_repo = stmt
                .query_map(params![user, since], |r| {
                    Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .map(|row| {
                    let (repo, n, active, wall): (String, i64, f64, f64) = row?;
                    Ok(RepoTotal {
                        repo,
                        sessions: to_u64("count", n)?,
                        active_secs: saturate(active),
                        wall_secs: saturate(wall),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut stmt = conn.prepare(
                "SELECT started_at / ?3, TOTAL(active_secs) FROM sessions
                 WHERE user_id = ?1 AND started_at >= ?2 GROUP BY 1",
            )?;
            let per_day = stmt
                .query_map(params![user, since, DAY_MS], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
                })?
                .map(|row| {
                    let (day, active) = row?;
                    Ok((day, saturate(active)))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(TotalsRows { per_repo, per_day })
        })
        .await
    }

    async fn activities(
        &self,
        user: UserId,
        filter: &ActivityFilter,
    ) -> Result<ActivityPage, StoreError> {
        let q = filter.clone();
        self.run(move |conn| {
            let total: i64 = conn.query_row(
                "SELECT COUNT(*) FROM activities WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)",
                params![user, q.session_id],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(
                "SELECT body FROM activities WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)
                 ORDER BY at, id LIMIT ?3 OFFSET ?4",
            )?;
            let activities = stmt
                .query_map(params![user, q.session_id, q.limit, q.offset], |r| {
                    r.get::<_, String>(0)
                })?
                .map(|body| {
                    let body = body?;
                    serde_json::from_str(&body)
                        .map_err(|e| StoreError::Corrupt(format!("activity body: {e}")))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(ActivityPage {
                activities,
                total: to_u64("count", total)?,
            })
        })
        .await
    }
}
