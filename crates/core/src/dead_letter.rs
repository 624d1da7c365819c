//! The dead-letter queue: items that can never succeed, kept for the user to
//! retry, discard or export. Capped; every eviction is counted, never silent.

use std::collections::{BTreeMap, VecDeque};

use reviewtime_protocol::{Activity, PullRef, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// What a dead letter carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadPayload {
    /// A session's state (usually its end).
    Session {
        /// The record.
        record: SessionRecord,
    },
    /// A batch of activities.
    Activities {
        /// The activities.
        items: Vec<Activity>,
        /// The pull request of each of their sessions, by session id, so the
        /// popup can say what they were in a reviewer's words.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        prs: BTreeMap<String, PullRef>,
    },
    /// A session the server holds at the same revision with other content:
    /// both versions, for the user to compare and export.
    Conflict {
        /// What this browser sent.
        sent: SessionRecord,
        /// What the server holds.
        stored: SessionRecord,
    },
    /// Something found in storage that could not be read: kept as it was, so
    /// it can be exported (and discarded), never silently dropped.
    Unreadable {
        /// Where it was found.
        key: String,
        /// Its text.
        raw: String,
        /// Why it could not be read.
        error: String,
    },
}

impl DeadPayload {
    /// Activities with the pull request each belongs to, where known.
    pub fn activities(items: Vec<(Activity, Option<PullRef>)>) -> DeadPayload {
        let mut prs = BTreeMap::new();
        let items = items
            .into_iter()
            .map(|(a, pr)| {
                if let Some(pr) = pr {
                    prs.insert(a.session_id.clone(), pr);
                }
                a
            })
            .collect();
        DeadPayload::Activities { items, prs }
    }

    /// How many items it holds.
    pub fn item_count(&self) -> u64 {
        match self {
            DeadPayload::Session { .. }
            | DeadPayload::Unreadable { .. }
            | DeadPayload::Conflict { .. } => 1,
            DeadPayload::Activities { items, .. } => items.len() as u64,
        }
    }
}

/// One failed sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Local id, for retry and discard.
    pub id: String,
    /// When it was given up on.
    pub failed_at: UnixMillis,
    /// The last HTTP status, if a server answered.
    pub status: Option<u16>,
    /// Why, in words.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// What it carried.
    pub payload: DeadPayload,
}

/// The queue and its accounting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeadLetters {
    /// Oldest first.
    entries: VecDeque<DeadLetter>,
    /// Entries evicted past the cap.
    evicted: u64,
    /// Items inside evicted entries.
    evicted_items: u64,
    /// Entries ever added.
    added: u64,
    /// Entries the user retried or discarded.
    released: u64,
}

impl DeadLetters {
    /// The entries, oldest first.
    pub fn entries(&self) -> &VecDeque<DeadLetter> {
        &self.entries
    }

    /// Entries evicted past the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Items inside evicted entries.
    pub fn evicted_items(&self) -> u64 {
        self.evicted_items
    }

    /// Entries ever added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Entries the user retried or discarded.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Whether the queue changed: entries never change once added, so the
    /// counts say it (added, released, held).
    pub fn version(&self) -> (u64, u64, usize) {
        (self.added, self.released, self.entries.len())
    }

    /// The queue as JSON, as a store keeps it.
    pub fn to_json(&self) -> String {
        // Strings, numbers and enums only: serde_json cannot fail on it.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Adds an entry, evicting the oldest past `cap`; returns how many were evicted.
    pub fn push(&mut self, mut entry: DeadLetter, cap: usize) -> u64 {
        self.added += 1;
        entry.id = format!("dl-{}", self.added);
        let mut evicted = 0;
        while self.entries.len() >= cap.max(1) {
            if let Some(old) = self.entries.pop_front() {
                self.evicted += 1;
                self.evicted_items += old.payload.item_count();
                evicted += 1;
            }
        }
        self.entries.push_back(entry);
        evicted
    }

    /// Puts back an entry [`DeadLetters::take`] returned but that could not be
    /// released (an unreadable one asked to be retried).
    pub fn restore(&mut self, entry: DeadLetter) {
        self.released = self.released.saturating_sub(1);
        let at = self
            .entries
            .iter()
            .position(|e| e.failed_at > entry.failed_at)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
    }

    /// Removes the entries `id` names (all when `None`) and returns them.
    pub fn take(&mut self, id: Option<&str>) -> Vec<DeadLetter> {
        let (taken, kept): (Vec<_>, Vec<_>) = self
            .entries
            .drain(..)
            .partition(|e| id.is_none_or(|id| e.id == id));
        self.entries = kept.into();
        self.released += taken.len() as u64;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> DeadLetter {
        DeadLetter {
            id: String::new(),
            failed_at: n as i64,
            status: Some(400),
            reason: "bad".into(),
            attempts: 1,
            payload: DeadPayload::activities(Vec::new()),
        }
    }

    #[test]
    fn cap_evicts_oldest_and_counts() {
        let mut q = DeadLetters::default();
        let evicted: u64 = (0..53).map(|n| q.push(entry(n), 50)).sum();
        assert_eq!(evicted, 3);
        assert_eq!(q.entries.len(), 50);
        assert_eq!(q.evicted, 3);
        assert_eq!(q.added, 53);
        assert_eq!(q.entries.front().map(|e| e.failed_at), Some(3));
        assert_eq!(q.entries.back().map(|e| e.id.as_str()), Some("dl-53"));
    }

    #[test]
    fn take_one_or_all() {
        let mut q = DeadLetters::default();
        for n in 0..3 {
            q.push(entry(n), 50);
        }
        assert_eq!(q.take(Some("dl-2")).len(), 1);
        assert_eq!(q.take(Some("dl-2")).len(), 0);
        assert_eq!(q.take(None).len(), 2);
        assert!(q.entries.is_empty());
        assert_eq!(q.released, 3);
        assert_eq!(q.added, q.entries.len() as u64 + q.evicted + q.released);
    }
}
