//! The outbox: what waits to reach the server. An item leaves only when the
//! server acknowledged it or it moves to the dead-letter queue
//! (docs/ARCHITECTURE.md invariant 1).
//!
//! Every change goes through a method that records the item it touched in a
//! change journal ([`Outbox::take_changes`]), so the shell persists only the
//! items that changed, each under its own storage key: a commit costs what it
//! changed, not the size of the queue (invariant 12).

use std::collections::{BTreeSet, HashSet, VecDeque};

use reviewtime_protocol::{Activity, PullRef, SessionRecord};
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
    /// A session's start or end: sent at once, not after the batching delay.
    #[serde(default)]
    pub urgent: bool,
}

/// An activity waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingActivity {
    /// Position in the queue, unique for the queue's life: its storage key.
    #[serde(default)]
    pub seq: u64,
    /// The activity.
    pub activity: Activity,
    /// Its serialised size in bytes.
    pub size: usize,
    /// The pull request of its session, for words in the failed-sync list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<PullRef>,
    /// When it was queued.
    pub queued_at: UnixMillis,
    /// Retry state.
    pub retry: Retry,
}

/// An item of the outbox, as the shell stores it: one storage key each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKey {
    /// A pending session state, by session id.
    Session(String),
    /// A pending activity, by its [`PendingActivity::seq`].
    Activity(u64),
}

/// The queue was full: the item was refused (and counted by the engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Everything waiting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "OutboxData")]
pub struct Outbox {
    sessions: Vec<PendingSession>,
    activities: VecDeque<PendingActivity>,
    #[serde(skip)]
    next_seq: u64,
    /// Activity ids queued, for O(1) duplicate checks.
    #[serde(skip)]
    ids: HashSet<String>,
    /// Items changed since the last [`Outbox::take_changes`].
    #[serde(skip)]
    changes: BTreeSet<ItemKey>,
}

impl PartialEq for Outbox {
    fn eq(&self, other: &Self) -> bool {
        self.sessions == other.sessions && self.activities == other.activities
    }
}
impl Eq for Outbox {}

/// The serialised shape of an [`Outbox`] (also the one of snapshot version 2).
#[derive(Deserialize)]
struct OutboxData {
    #[serde(default)]
    sessions: Vec<PendingSession>,
    #[serde(default)]
    activities: Vec<PendingActivity>,
}

impl From<OutboxData> for Outbox {
    fn from(data: OutboxData) -> Self {
        Outbox::from_items(data.sessions, data.activities)
    }
}

impl Outbox {
    /// An outbox holding these items, as loaded from storage. Activities keep
    /// their `seq` when they have distinct ones (sorted by it: queue order);
    /// items from a layout without seqs are numbered in the order given.
    pub fn from_items(sessions: Vec<PendingSession>, activities: Vec<PendingActivity>) -> Outbox {
        let mut activities = activities;
        let distinct: HashSet<u64> = activities.iter().map(|a| a.seq).collect();
        if distinct.len() == activities.len() && !distinct.contains(&0) {
            activities.sort_by_key(|a| a.seq);
        } else {
            for (i, a) in activities.iter_mut().enumerate() {
                a.seq = i as u64 + 1;
            }
        }
        let mut ids = HashSet::new();
        activities.retain(|a| ids.insert(a.activity.id.clone()));
        let mut sessions = sessions;
        sessions.sort_by(|a, b| (a.queued_at, &a.record.id).cmp(&(b.queued_at, &b.record.id)));
        let mut seen = HashSet::new();
        sessions.retain(|s| seen.insert(s.record.id.clone()));
        Outbox {
            next_seq: activities.last().map_or(0, |a| a.seq) + 1,
            ids,
            sessions,
            activities: activities.into(),
            changes: BTreeSet::new(),
        }
    }

    /// Queues a session state; a newer revision replaces an older one (keeping
    /// its retry state). A new session is refused when `cap` sessions wait.
    pub fn queue_session(
        &mut self,
        record: SessionRecord,
        now: UnixMillis,
        cap: usize,
        urgent: bool,
    ) -> Result<(), Full> {
        if let Some(p) = self.sessions.iter_mut().find(|p| p.record.id == record.id) {
            if record.revision > p.record.revision {
                p.record = record;
                p.urgent |= urgent;
                self.changes.insert(ItemKey::Session(p.record.id.clone()));
            }
            return Ok(());
        }
        if self.sessions.len() >= cap {
            return Err(Full);
        }
        self.changes.insert(ItemKey::Session(record.id.clone()));
        // Kept in (queued_at, id) order, which a reload reproduces.
        let at = self
            .sessions
            .partition_point(|p| (p.queued_at, &p.record.id) <= (now, &record.id));
        self.sessions.insert(
            at,
            PendingSession {
                record,
                queued_at: now,
                retry: Retry::default(),
                urgent,
            },
        );
        Ok(())
    }

    /// Queues an activity, refused when `cap` activities wait.
    pub fn queue_activity(
        &mut self,
        activity: Activity,
        pr: Option<PullRef>,
        now: UnixMillis,
        cap: usize,
    ) -> Result<(), Full> {
        if self.activities.len() >= cap {
            return Err(Full);
        }
        let size = serde_json::to_string(&activity)
            .map(|s| s.len())
            .unwrap_or(usize::MAX / 4);
        self.next_seq = self.next_seq.max(1);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ids.insert(activity.id.clone());
        self.changes.insert(ItemKey::Activity(seq));
        self.activities.push_back(PendingActivity {
            seq,
            activity,
            size,
            pr,
            queued_at: now,
            retry: Retry::default(),
        });
        Ok(())
    }

    /// Whether an activity with this id waits.
    pub fn contains_activity(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Session states, in queue order (by the time they were queued, then id).
    pub fn sessions(&self) -> &[PendingSession] {
        &self.sessions
    }

    /// Activities, in queue order.
    pub fn activities(&self) -> &VecDeque<PendingActivity> {
        &self.activities
    }

    /// The pending state of session `id`.
    pub fn session(&self, id: &str) -> Option<&PendingSession> {
        self.sessions.iter().find(|p| p.record.id == id)
    }

    /// The activity stored under `seq`.
    pub fn activity_by_seq(&self, seq: u64) -> Option<&PendingActivity> {
        let i = self.activities.binary_search_by_key(&seq, |a| a.seq).ok()?;
        self.activities.get(i)
    }

    /// The activities whose `seq` is in `from..to`, in queue order.
    pub fn activities_between(&self, from: u64, to: u64) -> impl Iterator<Item = &PendingActivity> {
        let start = self.activities.partition_point(|a| a.seq < from);
        self.activities
            .range(start..)
            .take_while(move |a| a.seq < to)
    }

    /// Edits session `id`'s pending state: `f` returns whether it stays.
    pub fn edit_session(&mut self, id: &str, f: impl FnOnce(&mut PendingSession) -> bool) {
        let Some(i) = self.sessions.iter().position(|p| p.record.id == id) else {
            return;
        };
        self.changes.insert(ItemKey::Session(id.to_string()));
        if !f(&mut self.sessions[i]) {
            self.sessions.remove(i);
        }
    }

    /// Removes session `id`'s pending state and returns it.
    pub fn remove_session(&mut self, id: &str) -> Option<PendingSession> {
        let i = self.sessions.iter().position(|p| p.record.id == id)?;
        self.changes.insert(ItemKey::Session(id.to_string()));
        Some(self.sessions.remove(i))
    }

    /// Edits the activities whose ids are in `ids`: `f` returns whether each stays.
    pub fn edit_activities(
        &mut self,
        ids: &HashSet<&str>,
        mut f: impl FnMut(&mut PendingActivity) -> bool,
    ) {
        let changes = &mut self.changes;
        let index = &mut self.ids;
        self.activities.retain_mut(|a| {
            if !ids.contains(a.activity.id.as_str()) {
                return true;
            }
            changes.insert(ItemKey::Activity(a.seq));
            let keep = f(a);
            if !keep {
                index.remove(&a.activity.id);
            }
            keep
        });
    }

    /// Removes the activity at queue position `i` and returns it.
    pub fn remove_activity_at(&mut self, i: usize) -> Option<PendingActivity> {
        let a = self.activities.remove(i)?;
        self.ids.remove(&a.activity.id);
        self.changes.insert(ItemKey::Activity(a.seq));
        Some(a)
    }

    /// Applies `f` to every item's retry state, journaling the items it changed.
    pub fn edit_retries(&mut self, mut f: impl FnMut(&mut Retry)) {
        for p in &mut self.sessions {
            let before = p.retry.retry_at;
            f(&mut p.retry);
            if p.retry.retry_at != before {
                self.changes.insert(ItemKey::Session(p.record.id.clone()));
            }
        }
        for a in &mut self.activities {
            let before = a.retry.retry_at;
            f(&mut a.retry);
            if a.retry.retry_at != before {
                self.changes.insert(ItemKey::Activity(a.seq));
            }
        }
    }

    /// Times a clock that went back left in the future: each retry time
    /// later than `latest_retry(attempts)` becomes it, each queued time
    /// later than `now` becomes `now` (else the flush delay would count from
    /// the future). Only the items changed are journaled.
    pub fn clamp_times(&mut self, now: UnixMillis, latest_retry: impl Fn(u32) -> UnixMillis) {
        for p in &mut self.sessions {
            let latest_retry = latest_retry(p.retry.attempts);
            if p.retry.retry_at > latest_retry || p.queued_at > now {
                p.retry.retry_at = p.retry.retry_at.min(latest_retry);
                p.queued_at = p.queued_at.min(now);
                self.changes.insert(ItemKey::Session(p.record.id.clone()));
            }
        }
        for a in &mut self.activities {
            let latest_retry = latest_retry(a.retry.attempts);
            if a.retry.retry_at > latest_retry || a.queued_at > now {
                a.retry.retry_at = a.retry.retry_at.min(latest_retry);
                a.queued_at = a.queued_at.min(now);
                self.changes.insert(ItemKey::Activity(a.seq));
            }
        }
    }

    /// The items changed since the last call (each to be written, or removed
    /// when it no longer waits), and a fresh journal.
    pub fn take_changes(&mut self) -> BTreeSet<ItemKey> {
        std::mem::take(&mut self.changes)
    }

    /// Puts `keys` back in the journal: a write that took them is not known
    /// to have happened.
    pub fn owe(&mut self, keys: BTreeSet<ItemKey>) {
        self.changes.extend(keys);
    }

    /// Every item's key, for a shell that must write them all (a migration).
    pub fn all_keys(&self) -> BTreeSet<ItemKey> {
        self.sessions
            .iter()
            .map(|s| ItemKey::Session(s.record.id.clone()))
            .chain(self.activities.iter().map(|a| ItemKey::Activity(a.seq)))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use reviewtime_protocol::ActivityKind;

    fn act(id: &str) -> Activity {
        Activity {
            id: id.into(),
            session_id: "s".into(),
            at: 1,
            kind: ActivityKind::CommentPosted,
        }
    }

    #[test]
    fn journal_names_exactly_the_items_touched() {
        let mut o = Outbox::default();
        for i in 0..5 {
            o.queue_activity(act(&format!("a{i}")), None, 1, 10)
                .unwrap();
        }
        assert_eq!(o.take_changes().len(), 5);
        let ids: HashSet<&str> = ["a1", "a3"].into_iter().collect();
        o.edit_activities(&ids, |_| false);
        assert_eq!(
            o.take_changes().into_iter().collect::<Vec<_>>(),
            vec![ItemKey::Activity(2), ItemKey::Activity(4)]
        );
        assert!(!o.contains_activity("a1") && o.contains_activity("a2"));
        assert!(o.take_changes().is_empty());
    }

    #[test]
    fn cap_refuses_new_items() {
        let mut o = Outbox::default();
        assert_eq!(o.queue_activity(act("a1xxxxxx"), None, 1, 1), Ok(()));
        assert_eq!(o.queue_activity(act("a2xxxxxx"), None, 1, 1), Err(Full));
        assert_eq!(o.activities().len(), 1);
    }

    #[test]
    fn loaded_items_keep_queue_order_and_seqs() {
        let mut o = Outbox::default();
        for i in 0..3 {
            o.queue_activity(act(&format!("a{i}")), None, 1, 10)
                .unwrap();
        }
        let mut items: Vec<PendingActivity> = o.activities().iter().cloned().collect();
        items.reverse();
        let loaded = Outbox::from_items(Vec::new(), items);
        let seqs: Vec<u64> = loaded.activities().iter().map(|a| a.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(
            loaded.activity_by_seq(2).map(|a| a.activity.id.as_str()),
            Some("a1")
        );
        let mut loaded = loaded;
        loaded.queue_activity(act("a9"), None, 1, 10).unwrap();
        assert_eq!(loaded.activities().back().map(|a| a.seq), Some(4));
    }
}
