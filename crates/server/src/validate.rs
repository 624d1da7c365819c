//! What a client sends, checked before any of it reaches a store: records
//! that could not be real and queries out of range get a 400 with words.

use reviewtime_protocol::fields::{self, Field};
use reviewtime_protocol::{check_activity_fields, check_session_fields, routes, Activity};
use reviewtime_protocol::{FieldError, Rejected, SessionRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Reject;
use crate::store::{ActivityFilter, SessionFilter, SessionStatus, DAY_MS};

impl From<FieldError> for Reject {
    /// 400 with the field's code (`field_too_long`…) and its reason.
    fn from(e: FieldError) -> Self {
        Reject::invalid(e.code(), e.to_string())
    }
}

/// A non-empty text field of bounded length without control characters,
/// by the protocol's rules ([`fields::check_field`]).
pub fn check_text(field: Field, value: &str) -> Result<(), Reject> {
    Ok(fields::check_field(field, value)?)
}

fn check_int(what: &str, value: u64) -> Result<i64, Reject> {
    i64::try_from(value).map_err(|_| Reject::bad_request(format!("{what} is out of range")))
}

/// The earliest time the server stores: 2020-01-01T00:00:00Z, before
/// ReviewTime existed.
pub const MIN_TIME: i64 = 1_577_836_800_000;
/// How far ahead of the server's clock a client's clock may run (1 day).
pub const MAX_CLOCK_AHEAD_MS: i64 = 86_400_000;
/// Longest session (wall time) stored: 31 days. The idle limit ends a
/// session long before; more is a broken or hostile client.
pub const MAX_SESSION_SECS: u64 = 31 * 86_400;
/// Highest revision, pull-request number stored (2^31).
pub const MAX_COUNTER: u64 = 1 << 31;

/// A time within `[MIN_TIME, now + MAX_CLOCK_AHEAD_MS]`.
fn check_time(what: &str, t: i64, now: i64) -> Result<(), Reject> {
    let latest = now.saturating_add(MAX_CLOCK_AHEAD_MS);
    if t < MIN_TIME || t > latest {
        return Err(Reject::invalid(
            "time_out_of_range",
            format!(
                "{what} is {t}: times must be Unix milliseconds between {MIN_TIME} (2020-01-01) and {latest} (a day ahead of the server's clock)"
            ),
        ));
    }
    Ok(())
}

/// Rejects a session record that could not be real, at server time `now`:
/// times outside the window, wall time that disagrees with the start and
/// end (or, in progress, runs past the server's clock), active time above
/// wall time, a session longer than [`MAX_SESSION_SECS`], a revision or
/// number above [`MAX_COUNTER`].
pub fn validate_session(s: &SessionRecord, now: i64) -> Result<(), Reject> {
    check_session_fields(s)?;
    if s.pr.number == 0 {
        return Err(Reject::bad_request("pull request number must be positive"));
    }
    if s.pr.number > MAX_COUNTER {
        return Err(Reject::invalid(
            "number_out_of_range",
            format!("pull request number {} is above {MAX_COUNTER}", s.pr.number),
        ));
    }
    if s.revision == 0 || s.revision > MAX_COUNTER {
        return Err(Reject::invalid(
            "revision_out_of_range",
            format!(
                "revision is {}; it must be between 1 and {MAX_COUNTER}",
                s.revision
            ),
        ));
    }
    check_time("started_at", s.started_at, now)?;
    // The span the wall time must agree with: to the end, or (in progress)
    // at most to the latest time the server accepts.
    let span_ms = match s.ended_at {
        Some(end) => {
            check_time("ended_at", end, now)?;
            if end < s.started_at {
                return Err(Reject::invalid(
                    "wall_time_inconsistent",
                    "ended_at is before started_at",
                ));
            }
            end - s.started_at
        }
        None => now.saturating_add(MAX_CLOCK_AHEAD_MS) - s.started_at,
    };
    if s.wall_secs > MAX_SESSION_SECS {
        return Err(Reject::invalid(
            "session_too_long",
            format!(
                "wall_secs is {}; a session lasts at most {MAX_SESSION_SECS} s (31 days)",
                s.wall_secs
            ),
        ));
    }
    // Whole seconds of the span, give or take one for the client's rounding.
    let span_secs = u64::try_from(span_ms / 1000).unwrap_or(0);
    let too_long = s.wall_secs > span_secs + 1;
    let too_short = s.ended_at.is_some() && s.wall_secs + 1 < span_secs;
    if too_long || too_short {
        return Err(Reject::invalid(
            "wall_time_inconsistent",
            match s.ended_at {
                Some(_) => format!(
                    "wall_secs is {} but the session ran {span_secs} s from started_at to ended_at",
                    s.wall_secs
                ),
                None => format!(
                    "wall_secs is {} but the session started only {span_secs} s before the latest time the server accepts",
                    s.wall_secs
                ),
            },
        ));
    }
    if s.active_secs > s.wall_secs {
        return Err(Reject::invalid(
            "active_exceeds_wall",
            format!(
                "active_secs ({}) exceeds wall_secs ({})",
                s.active_secs, s.wall_secs
            ),
        ));
    }
    Ok(())
}

/// Rejects a list of activities longer than [`routes::MAX_BATCH_ITEMS`].
pub fn check_batch_len(len: usize) -> Result<(), Reject> {
    if len > routes::MAX_BATCH_ITEMS {
        return Err(Reject::too_large(format!(
            "batch holds {len} activities; the limit is {}",
            routes::MAX_BATCH_ITEMS
        )));
    }
    Ok(())
}

/// Rejects an activity that could not be real, at server time `now`: a
/// text field the protocol refuses ([`check_activity_fields`]), or a time
/// outside the window. The answer's code and message say which.
pub fn validate_activity(a: &Activity, now: i64) -> Result<(), Reject> {
    check_activity_fields(a)?;
    check_time(&format!("activity {}: at", a.id), a.at, now)
}

/// A batch's items, each decided on its own before the store sees any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortedBatch {
    /// The items to store, in the order sent.
    pub valid: Vec<Activity>,
    /// The items refused, one entry per item, in the order sent.
    pub rejected: Vec<Rejected>,
}

/// Reads a batch's `activities`, given as raw JSON values, one item at a
/// time at server time `now`: an item that is not an activity, or whose
/// fields or time cannot be stored, is rejected on its own (by its id) and
/// the others are kept. Every item lands in exactly one of the two lists.
///
/// The whole batch is refused only when it cannot be answered item by item:
/// more than [`routes::MAX_BATCH_ITEMS`] items (413), or an item without a
/// string `id` to name it by (400).
pub fn sort_batch(items: &[Value], now: i64) -> Result<SortedBatch, Reject> {
    check_batch_len(items.len())?;
    let mut sorted = SortedBatch::default();
    for (i, item) in items.iter().enumerate() {
        let refusal = match Activity::deserialize(item) {
            Ok(a) => match validate_activity(&a, now) {
                Ok(()) => {
                    sorted.valid.push(a);
                    continue;
                }
                Err(why) => (a.id, why.code, why.message),
            },
            Err(e) => {
                let Some(id) = item.get("id").and_then(Value::as_str) else {
                    return Err(Reject::bad_request(format!(
                        "item {i} of the batch (counting from 0) is not an activity and has no string id to answer it by: {e}"
                    )));
                };
                (
                    id.to_string(),
                    "malformed_item",
                    format!("not an activity this server can read: {e}"),
                )
            }
        };
        let (id, code, reason) = refusal;
        sorted.rejected.push(Rejected {
            id,
            code: code.to_string(),
            reason,
        });
    }
    Ok(sorted)
}

/// Rejects a batch that is too big or holds an invalid activity, at server
/// time `now`: for a beacon, which is stored all or nothing.
pub fn validate_batch(items: &[Activity], now: i64) -> Result<(), Reject> {
    check_batch_len(items.len())?;
    items.iter().try_for_each(|a| validate_activity(a, now))
}

/// A beacon hash as the client registers it: hex SHA-256, lowercase.
pub fn check_beacon_hash(hash: &str) -> Result<(), Reject> {
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Reject::invalid(
            "bad_beacon_hash",
            "beacon_hash must be the SHA-256 of the beacon secret in 64 lowercase hex characters",
        ));
    }
    Ok(())
}

/// Shortest and longest beacon secret accepted (the extension sends 64 hex
/// characters: 256 random bits).
pub const BEACON_SECRET_LEN: std::ops::RangeInclusive<usize> = 32..=128;

/// A beacon secret as a beacon sends it.
pub fn check_beacon_secret(secret: &str) -> Result<(), Reject> {
    if !BEACON_SECRET_LEN.contains(&secret.len()) || secret.chars().any(|c| c.is_control()) {
        return Err(Reject::invalid(
            "bad_beacon_secret",
            format!(
                "beacon_secret must be {} to {} characters without control characters",
                BEACON_SECRET_LEN.start(),
                BEACON_SECRET_LEN.end()
            ),
        ));
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
                check_text(Field::Owner, owner)?;
                check_text(Field::Repo, name)?;
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
        if let Some(id) = &self.session_id {
            check_text(Field::SessionId, id)?;
        }
        Ok(ActivityFilter {
            session_id: self.session_id.clone(),
            limit,
            offset: self.offset.unwrap_or(0),
        })
    }
}
