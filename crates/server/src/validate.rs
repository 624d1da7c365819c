//! The data rules: validation, idempotent upserts, reads. Every query is
//! scoped by `user_id`, so no id a client sends reaches another user's rows.

use reviewtime_protocol::{
    routes, Activity, ActivityKind, BatchAck, Conflict, PullRef, SessionAck, SessionRecord,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::Reject;

fn check_text(what: &str, value: &str) -> Result<(), Reject> {
    if value.is_empty() {
        return Err(Reject::bad_request(format!("{what} must not be empty")));
    }
    if value.len() > routes::MAX_FIELD_LEN {
        return Err(Reject::bad_request(format!(
            "{what} is {} bytes; the limit is {}",
            value.len(),
            routes::MAX_FIELD_LEN
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Reject::bad_request(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

fn check_int(what: &str, value: u64) -> Result<i64, Reject> {
    i64::try_from(value).map_err(|_| Reject::bad_request(format!("{what} is out of range")))
}

/// Rejects a session record that could not be real.
pub fn validate_session(s: &SessionRecord) -> Result<(), Reject> {
    check_text("session id", &s.id)?;
    check_text("host", &s.pr.host)?;
    check_text("owner", &s.pr.owner)?;
    check_text("repo", &s.pr.repo)?;
    if s.pr.number == 0 {
        return Err(Reject::bad_request("pull request number must be positive"));
    }
    check_int("pull request number", s.pr.number)?;
    check_int("wall_secs", s.wall_secs)?;
    check_int("active_secs", s.active_secs)?;
    check_int("revision", s.revision)?;
    if s.started_at <= 0 {
        return Err(Reject::bad_request(
            "started_at must be a positive Unix time in milliseconds",
        ));
    }
    if let Some(end) = s.ended_at {
        if end < s.started_at {
            return Err(Reject::bad_request("ended_at is before started_at"));
        }
    }
    if s.active_secs > s.wall_secs + 1 {
        return Err(Reject::bad_request("active_secs exceeds wall_secs"));
    }
    Ok(())
}

/// Rejects a batch that is too big or holds an invalid activity.
pub fn validate_batch(items: &[Activity]) -> Result<(), Reject> {
    if items.len() > routes::MAX_BATCH_ITEMS {
        return Err(Reject::too_large(format!(
            "batch holds {} activities; the limit is {}",
            items.len(),
            routes::MAX_BATCH_ITEMS
        )));
    }
    for a in items {
        check_text("activity id", &a.id)?;
        check_text("session id", &a.session_id)?;
        if a.at <= 0 {
            return Err(Reject::bad_request(format!(
                "activity {}: at must be a positive time",
                a.id
            )));
        }
        if let ActivityKind::FileViewed { path: Some(p) } = &a.kind {
            check_text("file path", p)?;
        }
    }
    Ok(())
}

fn read_session(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        pr: PullRef {
            host: row.get(1)?,
            owner: row.get(2)?,
            repo: row.get(3)?,
            number: row.get::<_, i64>(4)? as u64,
        },
        started_at: row.get(5)?,
        ended_at: row.get(6)?,
        wall_secs: row.get::<_, i64>(7)? as u64,
        active_secs: row.get::<_, i64>(8)? as u64,
        revision: row.get::<_, i64>(9)? as u64,
    })
}

const SESSION_COLUMNS: &str =
    "id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision";

/// Records a session's state, idempotently.
///
/// A higher revision supersedes a lower one; an ended session is never
/// reopened by an in-progress record; the same id for another pull request or
/// start time is a conflict.
pub fn upsert_session(
    tx: &Transaction<'_>,
    user: i64,
    s: &SessionRecord,
    now: i64,
) -> Result<SessionAck, Reject> {
    let existing = tx
        .query_row(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 AND id = ?2"),
            params![user, s.id],
            read_session,
        )
        .optional()?;
    let apply = match &existing {
        None => true,
        Some(old) => {
            if old.pr != s.pr || old.started_at != s.started_at {
                return Err(Reject::conflict(format!(
                    "session {} is already recorded for {} started at {}",
                    s.id, old.pr, old.started_at
                )));
            }
            let reopens = old.ended_at.is_some() && s.ended_at.is_none();
            s.revision > old.revision && !reopens
        }
    };
    if !apply {
        return Ok(SessionAck {
            session: existing.unwrap_or_else(|| s.clone()),
            applied: false,
        });
    }
    tx.execute(
        "INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (user_id, id) DO UPDATE SET ended_at = excluded.ended_at, wall_secs = excluded.wall_secs,
           active_secs = excluded.active_secs, revision = excluded.revision, updated_at = excluded.updated_at",
        params![
            user,
            s.id,
            s.pr.host,
            s.pr.owner,
            s.pr.repo,
            s.pr.number as i64,
            s.started_at,
            s.ended_at,
            s.wall_secs as i64,
            s.active_secs as i64,
            s.revision as i64,
            now
        ],
    )?;
    Ok(SessionAck {
        session: s.clone(),
        applied: true,
    })
}

fn kind_name(kind: &ActivityKind) -> &'static str {
    match kind {
        ActivityKind::CommentPosted => "comment_posted",
        ActivityKind::ReviewSubmitted { .. } => "review_submitted",
        ActivityKind::FileViewed { .. } => "file_viewed",
        ActivityKind::TabSwitched { .. } => "tab_switched",
    }
}

/// Inserts each activity once; a repeat with the same content is a duplicate,
/// with other content a conflict (not stored).
pub fn insert_activities(
    tx: &Transaction<'_>,
    user: i64,
    items: &[Activity],
    now: i64,
) -> Result<BatchAck, Reject> {
    let mut ack = BatchAck::default();
    let mut select =
        tx.prepare_cached("SELECT body FROM activities WHERE user_id = ?1 AND id = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO activities (user_id, id, session_id, at, kind, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in items {
        let body = serde_json::to_string(a).map_err(|e| Reject::bad_request(e.to_string()))?;
        let stored: Option<String> = select
            .query_row(params![user, a.id], |r| r.get(0))
            .optional()?;
        match stored {
            None => {
                insert.execute(params![
                    user,
                    a.id,
                    a.session_id,
                    a.at,
                    kind_name(&a.kind),
                    body,
                    now
                ])?;
                ack.accepted += 1;
            }
            Some(old) if old == body => ack.duplicates += 1,
            Some(_) => ack.conflicts.push(Conflict {
                id: a.id.clone(),
                reason: "this id is already stored with different content".into(),
            }),
        }
    }
    Ok(ack)
}

/// Filters for the session list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionQuery {
    /// `owner/name`.
    pub repo: Option<String>,
    /// Pull-request number.
    pub pr: Option<u64>,
    /// Started at or after (Unix ms).
    pub from: Option<i64>,
    /// Started before (Unix ms).
    pub to: Option<i64>,
    /// `in_progress` or `completed`.
    pub status: Option<String>,
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// Page offset.
    pub offset: Option<u32>,
}

/// One page of sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionPage {
    /// Newest first.
    pub sessions: Vec<SessionRecord>,
    /// All sessions matching the filters.
    pub total: u64,
    /// Offset of the next page, if any.
    pub next_offset: Option<u32>,
}

/// Lists the user's sessions.
pub fn list_sessions(
    conn: &Connection,
    user: i64,
    q: &SessionQuery,
) -> Result<SessionPage, Reject> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Reject::bad_request("limit must be between 1 and 500"));
    }
    let offset = q.offset.unwrap_or(0);
    let mut filter = String::from("user_id = ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![user.into()];
    if let Some(repo) = &q.repo {
        let (owner, name) = repo
            .split_once('/')
            .ok_or_else(|| Reject::bad_request("repo must be owner/name"))?;
        args.push(owner.to_string().into());
        filter += &format!(" AND owner = ?{}", args.len());
        args.push(name.to_string().into());
        filter += &format!(" AND repo = ?{}", args.len());
    }
    if let Some(pr) = q.pr {
        args.push(check_int("pr", pr)?.into());
        filter += &format!(" AND number = ?{}", args.len());
    }
    if let Some(from) = q.from {
        args.push(from.into());
        filter += &format!(" AND started_at >= ?{}", args.len());
    }
    if let Some(to) = q.to {
        args.push(to.into());
        filter += &format!(" AND started_at < ?{}", args.len());
    }
    match q.status.as_deref() {
        None => {}
        Some("in_progress") => filter += " AND ended_at IS NULL",
        Some("completed") => filter += " AND ended_at IS NOT NULL",
        Some(other) => {
            return Err(Reject::bad_request(format!(
                "status must be in_progress or completed, not {other}"
            )))
        }
    }
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM sessions WHERE {filter}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE {filter} ORDER BY started_at DESC, id LIMIT {limit} OFFSET {offset}"
    ))?;
    let sessions = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), read_session)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = offset as u64 + sessions.len() as u64;
    Ok(SessionPage {
        next_offset: (next < total as u64).then_some(next as u32),
        total: total as u64,
        sessions,
    })
}

/// Which days the totals cover.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TotalsQuery {
    /// Days back from today, 1..=366 (default 14).
    pub days: Option<u32>,
}

/// Review time per repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayTotal {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Active seconds.
    pub active_secs: u64,
}

/// Totals for the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Totals {
    /// Per repository, most time first.
    pub per_repo: Vec<RepoTotal>,
    /// Per day, oldest first, one entry for each day in range.
    pub per_day: Vec<DayTotal>,
}

/// Review time per repository and per day, over the last `days` days.
pub fn totals(conn: &Connection, user: i64, q: &TotalsQuery, now: i64) -> Result<Totals, Reject> {
    let days = q.days.unwrap_or(14);
    if !(1..=366).contains(&days) {
        return Err(Reject::bad_request("days must be between 1 and 366"));
    }
    let day_ms = 86_400_000i64;
    let first_day = (now / day_ms - (days as i64 - 1)) * day_ms;
    let mut stmt = conn.prepare(
        "SELECT owner || '/' || repo, COUNT(*), SUM(active_secs), SUM(wall_secs) FROM sessions
         WHERE user_id = ?1 AND started_at >= ?2 GROUP BY owner, repo ORDER BY SUM(active_secs) DESC, 1",
    )?;
    let per_repo = stmt
        .query_map(params![user, first_day], |r| {
            Ok(RepoTotal {
                repo: r.get(0)?,
                sessions: r.get::<_, i64>(1)? as u64,
                active_secs: r.get::<_, i64>(2)? as u64,
                wall_secs: r.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(
        "SELECT date(started_at / 1000, 'unixepoch'), SUM(active_secs) FROM sessions
         WHERE user_id = ?1 AND started_at >= ?2 GROUP BY 1",
    )?;
    let found: std::collections::HashMap<String, u64> = stmt
        .query_map(params![user, first_day], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut per_day = Vec::with_capacity(days as usize);
    for i in 0..days as i64 {
        let day: String = conn.query_row(
            "SELECT date(?1 / 1000, 'unixepoch')",
            [first_day + i * day_ms],
            |r| r.get(0),
        )?;
        let active_secs = found.get(&day).copied().unwrap_or(0);
        per_day.push(DayTotal { day, active_secs });
    }
    Ok(Totals { per_repo, per_day })
}

/// Filters for the activity list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityQuery {
    /// Only this session's.
    pub session_id: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
    /// Page offset.
    pub offset: Option<u32>,
}

/// One page of activities, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityPage {
    /// The activities.
    pub activities: Vec<Activity>,
    /// All matching.
    pub total: u64,
}

/// Lists the user's activities.
pub fn list_activities(
    conn: &Connection,
    user: i64,
    q: &ActivityQuery,
) -> Result<ActivityPage, Reject> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Reject::bad_request("limit must be between 1 and 1000"));
    }
    let offset = q.offset.unwrap_or(0);
    let session = q.session_id.clone();
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM activities WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)",
        params![user, session],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT body FROM activities WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)
         ORDER BY at, id LIMIT ?3 OFFSET ?4",
    )?;
    let activities = stmt
        .query_map(params![user, session, limit, offset], |r| {
            r.get::<_, String>(0)
        })?
        .filter_map(|body| body.ok().and_then(|b| serde_json::from_str(&b).ok()))
        .collect();
    Ok(ActivityPage {
        activities,
        total: total as u64,
    })
}
