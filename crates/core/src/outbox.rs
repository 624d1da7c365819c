//! The outbox: what waits to reach the server. An item leaves only when the
//! server acknowledged it or it moves to the dead-letter queue
//! (ARCHITECTURE.md invariant 1).

use std::collections::VecDeque;

use reviewtime_protocol::{Activity, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// Retry bookkeeping stored with each item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Retry {
    /// Failed attempts that counted (offline ones do not).
    pub attempts: u32,
    /// When it first failed.
    pub first_failure_at: Option<UnixMillis>,
    /// Not before this time (absolute, so it survives restarts).
    pub retry_at: UnixMillis,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// The last HTTP status seen.
    pub last_status: Option<u16>,
}

/// A session state waiting to be sent; only the newest revision per session is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSession {
    /// The record to send.
    pub record: SessionRecord,
    /// When it was queued.
    pub queued_at: UnixMillis,
    /// Retry state.
    pub retry: Retry,
}

/// An activity waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingActivity {
    /// The activity.
    pub activity: Activity,
    /// Its serialised size in bytes.
    pub size: usize,
    /// When it was queued.
    pub queued_at: UnixMillis,
    /// Retry state.
    pub retry: Retry,
}

/// Everything waiting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outbox {
    /// Session states, in queue order.
    pub sessions: Vec<PendingSession>,
    /// Activities, in queue order.
    pub activities: VecDeque<PendingActivity>,
}

impl Outbox {
    /// Queues a session state; a newer revision replaces an older one (keeping its retry state).
    pub fn queue_session(&mut self, record: SessionRecord, now: UnixMillis) {
        if let Some(p) = self.sessions.iter_mut().find(|p| p.record.id == record.id) {
            if record.revision > p.record.revision {
                p.record = record;
            }
            return;
        }
        self.sessions.push(PendingSession {
            record,
            queued_at: now,
            retry: Retry::default(),
        });
    }

    /// Queues an activity.
    pub fn queue_activity(&mut self, activity: Activity, now: UnixMillis) {
        let size = serde_json::to_string(&activity)
            .map(|s| s.len())
            .unwrap_or(usize::MAX / 4);
        self.activities.push_back(PendingActivity {
            activity,
            size,
            queued_at: now,
            retry: Retry::default(),
        });
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.sessions.len() + self.activities.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All retry states.
    pub fn retries(&self) -> impl Iterator<Item = &Retry> {
        self.sessions
            .iter()
            .map(|s| &s.retry)
            .chain(self.activities.iter().map(|a| &a.retry))
    }
}
