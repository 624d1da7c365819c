//! Storage: one interface, [`Store`], with two implementations — SQLite
//! embedded in the process ([`sqlite`], the default) and PostgreSQL shared by
//! any number of server instances ([`postgres`]).
//!
//! The contract every implementation keeps, whatever order and however often
//! requests arrive, from one process or several:
//! - a session or activity is stored at most once per `(user, id)`;
//! - a repeat with the same content changes nothing and is reported as such;
//!   the same id with other content is a conflict, never merged;
//! - the client's revision of a session only grows, a beacon's write is
//!   provisional until the client's next, and an ended session is never
//!   reopened by an in-progress record ([`decide`]);
//! - every read and write is scoped by the user, so no id a client sends
//!   reaches another user's rows;
//! - credentials are stored only as hashes.
//!
//! The SQLite store gets this from one connection and its transactions; the
//! PostgreSQL store from the database's own unique keys, `INSERT … ON
//! CONFLICT` and conditional updates, never from a lock held in a process.

mod location;
pub mod postgres;
pub mod sqlite;

pub use location::{BadLocation, Location, SQLITE_FILE};

use std::collections::HashMap;
use std::fmt;

use reviewtime_protocol::{Activity, ActivityKind, BatchAck, Conflict, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::auth::Kind;

/// A user's row id.
pub type UserId = i64;

/// Something the store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database does not answer (refused, closed, timed out): the
    /// request may succeed later, and nothing of it was stored.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// SQLite reported an error.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("PostgreSQL: {}", describe(.0))]
    Postgres(tokio_postgres::Error),
    /// `user add` with a name already taken.
    #[error("a user called {0} already exists")]
    NameTaken(String),
    /// A row holds what the schema should have prevented.
    #[error("unexpected stored data: {0}")]
    Corrupt(String),
    /// The database location cannot be used (a folder that cannot be created).
    #[error("{0}")]
    Location(String),
    /// A blocking task running a SQLite call panicked or was cancelled.
    #[error("database task failed: {0}")]
    Join(String),
}

/// A driver error with its cause: tokio-postgres' own words ("db error",
/// "error connecting to server") leave out what PostgreSQL or the OS said.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Which implementation a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A credential about to be stored: its public id and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// Public id (for `token revoke`).
    pub id: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// What it may do.
    pub kind: Kind,
}

/// A credential as `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// Public id.
    pub id: String,
    /// What it may do.
    pub kind: Kind,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, when revoked.
    pub revoked_at: Option<i64>,
}

/// An activity ready to store: its columns and its canonical JSON body, the
/// text that decides whether a repeat is a duplicate or a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    /// Client-generated id.
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// When it happened (Unix ms).
    pub at: i64,
    /// Its kind's name.
    pub kind: &'static str,
    /// The activity as JSON.
    pub body: String,
}

impl NewActivity {
    /// Encodes `a`; the body is what later deliveries are compared with.
    pub fn encode(a: &Activity) -> Result<Self, serde_json::Error> {
        Ok(NewActivity {
            id: a.id.clone(),
            session_id: a.session_id.clone(),
            at: a.at,
            kind: kind_name(&a.kind),
            body: serde_json::to_string(a)?,
        })
    }
}

fn kind_name(kind: &ActivityKind) -> &'static str {
    match kind {
        ActivityKind::CommentPosted => "comment_posted",
        ActivityKind::ReviewSubmitted { .. } => "review_submitted",
        ActivityKind::FileViewed { .. } => "file_viewed",
        ActivityKind::TabSwitched { .. } => "tab_switched",
    }
}

/// Who writes a session's state, which decides how its revision is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// The client, with its API token: authoritative. Its first applied
    /// write carrying a `beacon_hash` registers the session's beacon
    /// capability; a later write with another hash is refused.
    Client {
        /// Hex SHA-256 of the session's beacon secret, when the client sends one.
        beacon_hash: Option<String>,
    },
    /// A beacon (a session's own capability, or the deprecated user-wide
    /// key): provisional. It must raise the stored revision, by at most
    /// [`MAX_REVISION_STEP`], and the client's next write with a revision
    /// above the client's own last one replaces it, so a beacon can never
    /// freeze a session against the client.
    Beacon,
}

/// How far one write may raise a session's revision over the one it is
/// compared with (or over 0 for a session not stored yet). The extension
/// raises it once per record (every 5 minutes at most while a session runs),
/// so a legitimate jump of 1,000 would take days of one session.
pub const MAX_REVISION_STEP: u64 = 1_000;

/// A session as stored: the record, and what decides later writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The state as last written (by the client or a beacon).
    pub record: SessionRecord,
    /// The highest revision the client itself wrote (0 if only beacons did).
    pub auth_revision: u64,
    /// The highest revision a beacon wrote (0 if none did): a beacon
    /// delivered again after the client replaced its state changes nothing.
    pub beacon_revision: u64,
    /// The registered beacon capability (hex SHA-256 of its secret).
    pub beacon_hash: Option<String>,
}

/// Why a session write was refused; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The id already holds another pull request or start time (the stored record).
    OtherSession(SessionRecord),
    /// The session's beacon capability is registered with another hash.
    OtherBeaconHash,
    /// The revision is more than [`MAX_REVISION_STEP`] above the one it is compared with.
    RevisionJump {
        /// The revision compared with.
        stored: u64,
        /// The revision sent.
        sent: u64,
    },
}

/// What recording a session's state did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionWrite {
    /// The record was new, or superseded the stored one: it is now stored.
    Applied(SessionRecord),
    /// The stored record wins (same or higher revision, or already ended);
    /// it is returned as it is now.
    Unchanged(SessionRecord),
    /// Refused: nothing changed.
    Refused(Refusal),
}

/// What recording a beacon did: all of it, or (on a refused session) none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeaconWrite {
    /// Sessions recorded; the activities' outcome.
    Stored(BatchAck),
    /// The session with this id was refused; nothing of the beacon was stored.
    Refused(String, Refusal),
}

/// What a write does to a stored session (or to none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write it.
    Apply,
    /// Leave the stored one.
    Unchanged,
    /// Refuse the request.
    Refuse(Refusal),
}

/// The rule both stores apply, against the stored session if any (PostgreSQL
/// also states it in SQL in its upsert's `WHERE`, and checks it here when
/// that did not write):
/// 1. another PR or start under the same id, or another beacon hash than the
///    registered one, is refused;
/// 2. an in-progress record never reopens an ended session;
/// 3. the client's revision must exceed the client's own last one, a
///    beacon's both the stored one and any a beacon wrote before (so a
///    repeated beacon is a repeat, even after the client replaced it);
/// 4. and by at most [`MAX_REVISION_STEP`].
pub fn decide(new: &SessionRecord, writer: &Writer, old: Option<&StoredSession>) -> Decision {
    let Some(old) = old else {
        if new.revision > MAX_REVISION_STEP {
            return Decision::Refuse(Refusal::RevisionJump {
                stored: 0,
                sent: new.revision,
            });
        }
        return Decision::Apply;
    };
    if conflicts(new, &old.record) {
        return Decision::Refuse(Refusal::OtherSession(old.record.clone()));
    }
    if let (
        Writer::Client {
            beacon_hash: Some(h),
        },
        Some(stored),
    ) = (writer, &old.beacon_hash)
    {
        if h != stored {
            return Decision::Refuse(Refusal::OtherBeaconHash);
        }
    }
    let reopens = old.record.ended_at.is_some() && new.ended_at.is_none();
    let base = match writer {
        Writer::Client { .. } => old.auth_revision,
        Writer::Beacon => old.record.revision.max(old.beacon_revision),
    };
    if reopens || new.revision <= base {
        return Decision::Unchanged;
    }
    if new.revision - base > MAX_REVISION_STEP {
        return Decision::Refuse(Refusal::RevisionJump {
            stored: base,
            sent: new.revision,
        });
    }
    Decision::Apply
}

/// Where a beacon with a session capability may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeaconTarget {
    /// No session with this id has this beacon hash registered (the server
    /// never saw the session, or it was registered with another secret).
    Unknown,
    /// The one user whose session it is.
    Owner(UserId),
}

/// Decides each item of a batch the way one-at-a-time inserts would, from
/// the set of ids this batch inserted (first occurrence only) and the bodies
/// stored for the others.
///
/// Contract: `inserted` holds the ids whose *first* occurrence in `items`
/// was stored by this batch; `stored` maps every other id to its stored body.
pub fn settle_batch(
    items: &[NewActivity],
    inserted: &std::collections::HashSet<String>,
    stored: &HashMap<String, String>,
) -> Result<BatchAck, StoreError> {
    let mut ack = BatchAck::default();
    // The body of each id's first occurrence in this batch.
    let mut first: HashMap<&str, &str> = HashMap::new();
    for a in items {
        let earlier = first.get(a.id.as_str()).copied();
        if earlier.is_none() {
            first.insert(&a.id, &a.body);
        }
        let stored_body = if inserted.contains(&a.id) {
            match earlier {
                None => {
                    ack.accepted += 1;
                    continue;
                }
                Some(body) => body,
            }
        } else {
            stored.get(&a.id).map(String::as_str).ok_or_else(|| {
                StoreError::Corrupt(format!("activity {} neither inserted nor found", a.id))
            })?
        };
        if stored_body == a.body {
            ack.duplicates += 1;
        } else {
            ack.conflicts.push(conflict(&a.id));
        }
    }
    Ok(ack)
}

/// The conflict entry for an activity id stored with other content.
pub fn conflict(id: &str) -> Conflict {
    Conflict {
        id: id.to_string(),
        reason: "this id is already stored with different content".into(),
    }
}

/// Whether `new` describes another session than `old` under the same id.
pub fn conflicts(new: &SessionRecord, old: &SessionRecord) -> bool {
    old.pr != new.pr || old.started_at != new.started_at
}

/// In-progress or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// `ended_at` is null.
    InProgress,
    /// `ended_at` is set.
    Completed,
}

/// Validated session-list filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// `(owner, name)`.
    pub repo: Option<(String, String)>,
    /// Pull-request number.
    pub pr: Option<i64>,
    /// Started at or after (Unix ms).
    pub from: Option<i64>,
    /// Started before (Unix ms).
    pub to: Option<i64>,
    /// Only in-progress or only completed sessions.
    pub status: Option<SessionStatus>,
    /// Page size.
    pub limit: u32,
    /// Page offset.
    pub offset: u32,
}

/// One page of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPage {
    /// Newest first (then by id, bytewise).
    pub sessions: Vec<SessionRecord>,
    /// All sessions matching the filters.
    pub total: u64,
    /// Offset of the next page, if any.
    pub next_offset: Option<u32>,
}

/// Validated activity-list filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Only this session's.
    pub session_id: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Page offset.
    pub offset: u32,
}

/// One page of activities, oldest first (then by id, bytewise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPage {
    /// The activities.
    pub activities: Vec<Activity>,
    /// All matching.
    pub total: u64,
}

/// Review time per repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoTotal {
    /// `owner/name`.
    pub repo: String,
    /// Sessions.
    pub sessions: u64,
    /// Active seconds.
    pub active_secs: u64,
    /// Wall seconds.
    pub wall_secs: u64,
}

/// Review time on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotal {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Active seconds.
    pub active_secs: u64,
}

/// Totals for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Per repository, most time first, then by name bytewise.
    pub per_repo: Vec<RepoTotal>,
    /// Per day, oldest first, one entry for each day in range.
    pub per_day: Vec<DayTotal>,
}

/// What a store sums for [`Totals`]: per repository, and active seconds per
/// day number (days since the Unix epoch, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalsRows {
    /// Per repository, most time first, then by name bytewise.
    pub per_repo: Vec<RepoTotal>,
    /// `(day number, active seconds)`, any order, days without sessions absent.
    pub per_day: Vec<(i64, u64)>,
}

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

impl Totals {
    /// Fills every one of the `days` days starting at day number `first_day`.
    pub fn from_rows(rows: TotalsRows, first_day: i64, days: u32) -> Self {
        let found: HashMap<i64, u64> = rows.per_day.into_iter().collect();
        let per_day = (first_day..first_day + i64::from(days))
            .map(|d| DayTotal {
                day: civil_date(d),
                active_secs: found.get(&d).copied().unwrap_or(0),
            })
            .collect();
        Totals {
            per_repo: rows.per_repo,
            per_day,
        }
    }
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// How many rows each table holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// API tokens and beacon keys, revoked ones included.
    pub tokens: u64,
    /// Sessions.
    pub sessions: u64,
    /// Activities.
    pub activities: u64,
}

impl Counts {
    /// Whether every table is empty.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} users, {} tokens, {} sessions, {} activities",
            self.users, self.tokens, self.sessions, self.activities
        )
    }
}

/// The storage interface the API, the dashboard and the CLI use; see the
/// module documentation for the contract every implementation keeps.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Which implementation this is.
    fn backend(&self) -> Backend;

    /// Answers when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a user with `credentials`, all or nothing; a taken name is
    /// [`StoreError::NameTaken`].
    async fn create_user(
        &self,
        name: &str,
        now: i64,
        credentials: &[NewCredential],
    ) -> Result<UserId, StoreError>;

    /// Creates the user with `credentials` only if no user exists yet, all
    /// or nothing; `None` when users exist. Of several instances starting at
    /// once on one empty database, exactly one gets `Some`.
    async fn create_first_user(
        &self,
        name: &str,
        now: i64,
        credentials: &[NewCredential],
    ) -> Result<Option<UserId>, StoreError>;

    /// The id of the user called `name`.
    async fn user_id(&self, name: &str) -> Result<Option<UserId>, StoreError>;

    /// Stores a new credential for `user`.
    async fn add_credential(
        &self,
        user: UserId,
        credential: &NewCredential,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Revokes the live credential with public id `id`; whether one was.
    async fn revoke_credential(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// The user (id and name) a live credential of `kind` with this hash belongs to.
    async fn credential_owner(
        &self,
        hash: &str,
        kind: Kind,
    ) -> Result<Option<(UserId, String)>, StoreError>;

    /// Records a session's state: see [`SessionWrite`]. The rule is
    /// [`decide`], applied atomically against the stored row, so concurrent
    /// writers can never lower the client's revision.
    async fn put_session(
        &self,
        user: UserId,
        record: &SessionRecord,
        writer: &Writer,
        now: i64,
    ) -> Result<SessionWrite, StoreError>;

    /// The owner of the session `session_id` whose registered beacon hash is
    /// `beacon_hash` (unique in practice: it hashes a random secret).
    async fn beacon_target(
        &self,
        session_id: &str,
        beacon_hash: &str,
    ) -> Result<BeaconTarget, StoreError>;

    /// The user's credentials, oldest first (public ids, never hashes).
    async fn credentials(&self, user: UserId) -> Result<Vec<CredentialInfo>, StoreError>;

    /// Stores each activity once, as [`settle_batch`] describes; the batch
    /// is all or nothing.
    async fn put_activities(
        &self,
        user: UserId,
        items: &[NewActivity],
        now: i64,
    ) -> Result<BatchAck, StoreError>;

    /// A beacon: its sessions (written as [`Writer::Beacon`]), then its
    /// activities, in one transaction; a refused session rolls it all back.
    async fn put_beacon(
        &self,
        user: UserId,
        sessions: &[SessionRecord],
        items: &[NewActivity],
        now: i64,
    ) -> Result<BeaconWrite, StoreError>;

    /// One page of the user's sessions.
    async fn sessions(
        &self,
        user: UserId,
        filter: &SessionFilter,
    ) -> Result<SessionPage, StoreError>;

    /// The user's sums over sessions started at or after `since` (Unix ms).
    async fn totals(&self, user: UserId, since: i64) -> Result<TotalsRows, StoreError>;

    /// One page of the user's activities.
    async fn activities(
        &self,
        user: UserId,
        filter: &ActivityFilter,
    ) -> Result<ActivityPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    use reviewtime_protocol::PullRef;

    fn record(revision: u64, ended: bool) -> SessionRecord {
        SessionRecord {
            id: "s".into(),
            pr: PullRef {
                host: "github.com".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: 1,
            },
            started_at: 1_700_000_000_000,
            ended_at: ended.then_some(1_700_000_600_000),
            wall_secs: 600,
            active_secs: 60,
            revision,
        }
    }

    fn stored(revision: u64, auth_revision: u64, ended: bool, hash: Option<&str>) -> StoredSession {
        StoredSession {
            record: record(revision, ended),
            auth_revision,
            beacon_revision: if revision > auth_revision {
                revision
            } else {
                0
            },
            beacon_hash: hash.map(str::to_string),
        }
    }

    const CLIENT: Writer = Writer::Client { beacon_hash: None };

    #[test]
    fn a_beacon_raises_the_revision_by_one_step_at_most_and_never_blocks_the_client() {
        let old = stored(3, 3, false, None);
        assert_eq!(
            decide(&record(1_003, true), &Writer::Beacon, Some(&old)),
            Decision::Apply
        );
        assert_eq!(
            decide(&record(1_004, true), &Writer::Beacon, Some(&old)),
            Decision::Refuse(Refusal::RevisionJump {
                stored: 3,
                sent: 1_004
            })
        );
        // After the beacon wrote 1,003, the client's 4 still applies; a
        // beacon's 1,003 again is a repeat.
        let after_beacon = stored(1_003, 3, true, None);
        assert_eq!(
            decide(&record(4, true), &CLIENT, Some(&after_beacon)),
            Decision::Apply
        );
        assert_eq!(
            decide(&record(1_003, true), &Writer::Beacon, Some(&after_beacon)),
            Decision::Unchanged
        );
        // The client's 4 replaced the beacon's 1,003: the same beacon again is a repeat.
        let replaced = StoredSession {
            record: record(4, true),
            auth_revision: 4,
            beacon_revision: 1_003,
            beacon_hash: None,
        };
        assert_eq!(
            decide(&record(1_003, true), &Writer::Beacon, Some(&replaced)),
            Decision::Unchanged
        );
        assert_eq!(
            decide(&record(1_004, true), &Writer::Beacon, Some(&replaced)),
            Decision::Apply
        );
        // Never reopened, by either.
        assert_eq!(
            decide(&record(5, false), &CLIENT, Some(&after_beacon)),
            Decision::Unchanged
        );
        assert_eq!(
            decide(&record(1_004, false), &Writer::Beacon, Some(&after_beacon)),
            Decision::Unchanged
        );
    }

    #[test]
    fn the_client_is_bounded_too_and_its_first_hash_stays() {
        assert_eq!(
            decide(&record(1_001, false), &CLIENT, None),
            Decision::Refuse(Refusal::RevisionJump {
                stored: 0,
                sent: 1_001
            })
        );
        assert_eq!(
            decide(&record(1_000, false), &CLIENT, None),
            Decision::Apply
        );
        let old = stored(2, 2, false, Some("aa"));
        let other = Writer::Client {
            beacon_hash: Some("bb".into()),
        };
        assert_eq!(
            decide(&record(3, false), &other, Some(&old)),
            Decision::Refuse(Refusal::OtherBeaconHash)
        );
        let same = Writer::Client {
            beacon_hash: Some("aa".into()),
        };
        assert_eq!(
            decide(&record(3, false), &same, Some(&old)),
            Decision::Apply
        );
        assert_eq!(
            decide(&record(2, false), &same, Some(&old)),
            Decision::Unchanged
        );
        let mut moved = record(3, false);
        moved.pr.number = 2;
        assert!(matches!(
            decide(&moved, &CLIENT, Some(&old)),
            Decision::Refuse(Refusal::OtherSession(_))
        ));
    }

    #[test]
    fn civil_dates_match_the_calendar() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_675), "2023-11-14");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
