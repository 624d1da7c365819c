//! What a client sends, checked before any of it reaches a store: records
//! that could not be real and queries out of range get a 400 with words.

use reviewtime_protocol::{routes, Activity, ActivityKind, SessionRecord};
use serde::Deserialize;

use crate::error::Reject;
use crate::store::{ActivityFilter, SessionFilter, SessionStatus, DAY_MS};

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

/// Filters for the session list, as the query string gives them.
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

impl SessionQuery {
    /// The store's filter, or why the query is invalid.
    pub fn filter(&self) -> Result<SessionFilter, Reject> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(Reject::bad_request("limit must be between 1 and 500"));
        }
        let repo = match &self.repo {
            None => None,
            Some(repo) => {
                let (owner, name) = repo
                    .split_once('/')
                    .ok_or_else(|| Reject::bad_request("repo must be owner/name"))?;
                Some((owner.to_string(), name.to_string()))
            }
        };
        let status = match self.status.as_deref() {
            None => None,
            Some("in_progress") => Some(SessionStatus::InProgress),
            Some("completed") => Some(SessionStatus::Completed),
            Some(other) => {
                return Err(Reject::bad_request(format!(
                    "status must be in_progress or completed, not {other}"
                )))
            }
        };
        Ok(SessionFilter {
            repo,
            pr: self.pr.map(|pr| check_int("pr", pr)).transpose()?,
            from: self.from,
            to: self.to,
            status,
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// Which days the totals cover.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TotalsQuery {
    /// Days back from today, 1..=366 (default 14).
    pub days: Option<u32>,
}

impl TotalsQuery {
    /// `(first day number, days)` for a request at `now`: the range ends today (UTC).
    pub fn range(&self, now: i64) -> Result<(i64, u32), Reject> {
        let days = self.days.unwrap_or(14);
        if !(1..=366).contains(&days) {
            return Err(Reject::bad_request("days must be between 1 and 366"));
        }
        Ok((now.div_euclid(DAY_MS) - (i64::from(days) - 1), days))
    }
}

/// Filters for the activity list, as the query string gives them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityQuery {
    /// Only this session's.
    pub session_id: Option<String>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
    /// Page offset.
    pub offset: Option<u32>,
}

impl ActivityQuery {
    /// The store's filter, or why the query is invalid.
    pub fn filter(&self) -> Result<ActivityFilter, Reject> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Reject::bad_request("limit must be between 1 and 1000"));
        }
        Ok(ActivityFilter {
            session_id: self.session_id.clone(),
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}
