//! How the snapshot lives in `chrome.storage.local`: in sections, each read
//! on its own, and written only when it changed (docs/ARCHITECTURE.md
//! invariants 4 and 12).
//!
//! | key | holds | written when |
//! |---|---|---|
//! | `reviewtime.meta` | everything but the outbox and dead letters (small) | its text changed |
//! | `reviewtime.dead` | the dead-letter queue (capped) | an entry was added or released |
//! | `reviewtime.s.<session id>` | one pending session state | the outbox journal names it |
//! | `reviewtime.a.<chunk>` | up to 64 pending activities, by queue position | the outbox journal names one of them |
//!
//! A commit therefore writes what changed, not the queue: its cost does not
//! grow with the number of items waiting. Activities share keys in chunks
//! because Chrome's storage gets slower with the number of keys it holds
//! (measured: a small write takes 0.4 ms beside no keys, 1.6 ms beside 10,000,
//! 0.5 ms beside 100 keys holding the same bytes); a chunk is at most 64
//! small items, so a write stays a few kilobytes. A section that does not parse costs
//! only itself: its text becomes an "unreadable" dead letter (exportable,
//! discardable) and everything else loads. The single-key layout of earlier
//! versions (`reviewtime.state`) is migrated; what of it cannot be read as a
//! whole is salvaged item by item into the dead-letter queue.

use std::collections::BTreeSet;

use reviewtime_core::dead_letter::{DeadLetter, DeadLetters, DeadPayload};
use reviewtime_core::outbox::{ItemKey, Outbox, PendingActivity, PendingSession};
use reviewtime_core::protocol::Activity;
use reviewtime_core::{Changes, State, UnixMillis};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Every key of ours starts with this (the shell's settings too, under their own key).
pub const PREFIX: &str = "reviewtime.";
/// The small part of the snapshot.
pub const META_KEY: &str = "reviewtime.meta";
/// The dead-letter queue.
pub const DEAD_KEY: &str = "reviewtime.dead";
/// Prefix of pending session states.
pub const SESSION_PREFIX: &str = "reviewtime.s.";
/// Prefix of chunks of pending activities.
pub const ACTIVITY_PREFIX: &str = "reviewtime.a.";
/// The single-key snapshot of layout versions 1 and 2.
pub const LEGACY_KEY: &str = "reviewtime.state";

/// Most text of an unreadable value kept in its dead letter.
const UNREADABLE_KEEP: usize = 256 * 1024;

/// Activities per storage key.
pub const CHUNK: u64 = 64;

/// A stored unit of the outbox: one session state, or a chunk of activities.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Session(String),
    Chunk(u64),
}

impl Unit {
    fn of(key: &ItemKey) -> Unit {
        match key {
            ItemKey::Session(id) => Unit::Session(id.clone()),
            ItemKey::Activity(seq) => Unit::Chunk(seq / CHUNK),
        }
    }

    fn key(&self) -> String {
        match self {
            Unit::Session(id) => format!("{SESSION_PREFIX}{id}"),
            Unit::Chunk(c) => format!("{ACTIVITY_PREFIX}{c:08x}"),
        }
    }

    /// Its stored text, or `None` when nothing of it waits any more.
    fn value(&self, outbox: &Outbox) -> Option<String> {
        match self {
            Unit::Session(id) => outbox
                .session(id)
                .and_then(|p| serde_json::to_string(p).ok()),
            Unit::Chunk(c) => {
                let items: Vec<&PendingActivity> = outbox
                    .activities_between(c * CHUNK, (c + 1) * CHUNK)
                    .collect();
                if items.is_empty() {
                    None
                } else {
                    serde_json::to_string(&items).ok()
                }
            }
        }
    }
}

/// Storage calls that bring storage up to date with the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    /// Keys to write, in one call.
    pub write: Vec<(String, String)>,
    /// Keys to remove, after the write.
    pub remove: Vec<String>,
}

impl Calls {
    /// Whether storage is already up to date.
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.remove.is_empty()
    }

    /// Bytes written (keys and values), for benchmarks.
    pub fn bytes(&self) -> usize {
        self.write.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// A snapshot read from storage.
#[derive(Debug)]
pub struct Loaded {
    /// The state.
    pub state: State,
    /// The small part's text as storage holds it, if it was read as is.
    pub meta: Option<String>,
    /// Whether storage holds the dead-letter queue as loaded.
    pub dead_stored: bool,
    /// What must be written or removed to finish loading (a migration, the
    /// removal of an unreadable value now held as a dead letter).
    pub pending: Calls,
}

fn unreadable(key: &str, raw: &str, error: String, now: UnixMillis) -> DeadLetter {
    let mut raw = raw.to_string();
    if raw.len() > UNREADABLE_KEEP {
        let mut cut = UNREADABLE_KEEP;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        raw.truncate(cut);
        raw.push_str("…[truncated]");
    }
    DeadLetter {
        id: String::new(),
        failed_at: now,
        status: None,
        reason: format!("stored data could not be read ({key}): {error}"),
        attempts: 0,
        payload: DeadPayload::Unreadable {
            key: key.to_string(),
            raw,
            error,
        },
    }
}

/// Reads the snapshot from `entries` (every stored `(key, text)` under
/// [`PREFIX`]). `fresh` makes the state of a new install (or of one whose
/// small part was unreadable). Never fails: what cannot be read is kept as a
/// dead letter, and everything else loads.
pub fn load(
    entries: Vec<(String, String)>,
    now: UnixMillis,
    fresh: impl FnOnce() -> State,
) -> Loaded {
    let mut meta = None;
    let mut dead = None;
    let mut legacy = None;
    let mut sessions = Vec::new();
    let mut activities = Vec::new();
    let mut bad: Vec<DeadLetter> = Vec::new();
    let mut pending = Calls::default();
    let mut item_keys = BTreeSet::new();
    for (key, raw) in entries {
        if key == META_KEY {
            meta = Some(raw);
        } else if key == DEAD_KEY {
            dead = Some(raw);
        } else if key == LEGACY_KEY {
            legacy = Some(raw);
        } else if key.starts_with(SESSION_PREFIX) {
            match serde_json::from_str::<PendingSession>(&raw) {
                Ok(p) => {
                    item_keys.insert(key);
                    sessions.push(p);
                }
                Err(e) => {
                    bad.push(unreadable(&key, &raw, e.to_string(), now));
                    pending.remove.push(key);
                }
            }
        } else if key.starts_with(ACTIVITY_PREFIX) {
            match serde_json::from_str::<Vec<PendingActivity>>(&raw) {
                Ok(chunk) => {
                    // A chunk holding an item of another chunk is rewritten below.
                    let misfiled = chunk
                        .iter()
                        .any(|a| Unit::of(&ItemKey::Activity(a.seq)).key() != key);
                    if misfiled {
                        pending.remove.push(key);
                    } else {
                        item_keys.insert(key);
                    }
                    activities.extend(chunk);
                }
                Err(e) => {
                    bad.push(unreadable(&key, &raw, e.to_string(), now));
                    pending.remove.push(key);
                }
            }
        }
    }

    let mut stored_meta = None;
    let (mut state, migrated) = match (meta, legacy) {
        (Some(raw), legacy) => {
            if legacy.is_some() {
                // A migration cut short: the new layout was written, the old key not yet removed.
                pending.remove.push(LEGACY_KEY.to_string());
            }
            match State::from_json(&raw) {
                Ok(state) => {
                    stored_meta = Some(raw);
                    (state, false)
                }
                Err(e) => {
                    bad.push(unreadable(META_KEY, &raw, e.to_string(), now));
                    (fresh(), false)
                }
            }
        }
        (None, Some(raw)) => {
            pending.remove.push(LEGACY_KEY.to_string());
            match State::from_json(&raw) {
                Ok(mut state) => {
                    // Its items join any found under their own keys.
                    let outbox = state.take_outbox();
                    sessions.extend(outbox.sessions().iter().cloned());
                    activities.extend(outbox.activities().iter().cloned().map(|mut a| {
                        a.seq = 0; // numbered afresh below
                        a
                    }));
                    (state, true)
                }
                Err(e) => {
                    bad.extend(salvage(&raw, now));
                    bad.push(unreadable(LEGACY_KEY, &raw, e.to_string(), now));
                    (fresh(), true)
                }
            }
        }
        (None, None) => (fresh(), false),
    };

    let mut dead_read = false;
    let dead_letters = match dead {
        None => state.take_dead(),
        Some(raw) => match serde_json::from_str::<DeadLetters>(&raw) {
            Ok(d) => {
                dead_read = !migrated;
                d
            }
            Err(e) => {
                bad.push(unreadable(DEAD_KEY, &raw, e.to_string(), now));
                DeadLetters::default()
            }
        },
    };
    // Storage holds the queue as loaded only if it was read as is and no
    // unreadable part joins it now.
    let dead_stored = dead_read && bad.is_empty();
    let loaded_seqs: Vec<u64> = activities.iter().map(|a| a.seq).collect();
    let outbox = Outbox::from_items(sessions, activities);
    state.attach(outbox, dead_letters);
    state.recover(bad);
    // Items renumbered on load (a layout without positions, or duplicates)
    // and units missing from storage are written afresh; stale keys go.
    let renumbered = {
        let seqs: BTreeSet<u64> = loaded_seqs.iter().copied().collect();
        seqs.len() != loaded_seqs.len()
            || state
                .outbox()
                .activities()
                .iter()
                .any(|a| !seqs.contains(&a.seq))
    };
    let units: BTreeSet<Unit> = state.outbox().all_keys().iter().map(Unit::of).collect();
    let keys: BTreeSet<String> = units.iter().map(Unit::key).collect();
    pending.remove.extend(item_keys.difference(&keys).cloned());
    let missing: Vec<Unit> = units
        .into_iter()
        .filter(|u| renumbered || !item_keys.contains(&u.key()))
        .collect();
    pending
        .write
        .extend(unit_values(state.outbox(), missing).write);
    Loaded {
        state,
        meta: stored_meta,
        dead_stored,
        pending,
    }
}

/// What of an unreadable single-key snapshot can be read item by item: each
/// queued session and activity becomes a dead letter (retry, discard, export).
fn salvage(raw: &str, now: UnixMillis) -> Vec<DeadLetter> {
    #[derive(Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        outbox: Option<&'a RawValue>,
        #[serde(borrow, default)]
        dead: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct OutboxParts<'a> {
        #[serde(borrow, default)]
        sessions: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        activities: Vec<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct DeadParts<'a> {
        #[serde(borrow, default)]
        entries: Vec<&'a RawValue>,
    }
    let Ok(parts) = serde_json::from_str::<Parts>(raw) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let reason = "kept from a stored state that could not be read as a whole".to_string();
    let entry = |payload| DeadLetter {
        id: String::new(),
        failed_at: now,
        status: None,
        reason: reason.clone(),
        attempts: 0,
        payload,
    };
    if let Some(outbox) = parts
        .outbox
        .and_then(|o| serde_json::from_str::<OutboxParts>(o.get()).ok())
    {
        for s in outbox.sessions {
            if let Ok(p) = serde_json::from_str::<PendingSession>(s.get()) {
                found.push(entry(DeadPayload::Session { record: p.record }));
            }
        }
        let acts: Vec<Activity> = outbox
            .activities
            .iter()
            .filter_map(|a| serde_json::from_str::<PendingActivity>(a.get()).ok())
            .map(|a| a.activity)
            .collect();
        for chunk in acts.chunks(reviewtime_core::protocol::routes::MAX_BATCH_ITEMS) {
            found.push(entry(DeadPayload::activities(
                chunk.iter().map(|a| (a.clone(), None)).collect(),
            )));
        }
    }
    if let Some(dead) = parts
        .dead
        .and_then(|d| serde_json::from_str::<DeadParts>(d.get()).ok())
    {
        for e in dead.entries {
            if let Ok(d) = serde_json::from_str::<DeadLetter>(e.get()) {
                found.push(d);
            }
        }
    }
    found
}

fn unit_values(outbox: &Outbox, units: impl IntoIterator<Item = Unit>) -> Calls {
    let mut calls = Calls::default();
    for unit in units {
        match unit.value(outbox) {
            Some(text) => calls.write.push((unit.key(), text)),
            // Nothing of it waits any more (acknowledged or dead-lettered).
            None => calls.remove.push(unit.key()),
        }
    }
    calls
}

/// The storage calls that carry out an engine's [`Changes`]: the outbox
/// units holding the items it names (read from `outbox`, the engine's), and
/// the small part and the dead-letter queue when they changed.
pub fn calls(changes: &Changes, outbox: &Outbox) -> Calls {
    let units: BTreeSet<Unit> = changes.items.iter().map(Unit::of).collect();
    let mut calls = unit_values(outbox, units);
    if let Some(meta) = &changes.meta {
        calls.write.push((META_KEY.to_string(), meta.clone()));
    }
    if let Some(dead) = &changes.dead {
        calls.write.push((DEAD_KEY.to_string(), dead.clone()));
    }
    calls
}

/// `first`, then `later`, as one set of calls: writes in one call, then removals.
pub fn merge(mut first: Calls, later: Calls) -> Calls {
    let removed: BTreeSet<&String> = later.remove.iter().collect();
    first.write.retain(|(k, _)| !removed.contains(k));
    let written: BTreeSet<String> = later.write.iter().map(|(k, _)| k.clone()).collect();
    first.remove.retain(|k| !written.contains(k));
    first.write.retain(|(k, _)| !written.contains(k));
    first.write.extend(later.write);
    first.remove.extend(later.remove);
    first
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use reviewtime_core::protocol::{ActivityKind, PullRef};
    use reviewtime_core::session::PrPage;
    use reviewtime_core::{Engine, Event};

    use super::*;

    const T: i64 = 1_700_000_000_000;

    fn engine_with(actions: usize) -> Engine {
        let mut e = Engine::new(State::new("test", 1));
        e.handle(
            Event::Page {
                tab: 1,
                page: Some(PrPage {
                    pr: PullRef {
                        host: "github.com".into(),
                        owner: "o".into(),
                        repo: "r".into(),
                        number: 1,
                    },
                    view: None,
                }),
                visible: true,
                focused: true,
            },
            T,
        );
        for i in 0..actions {
            e.handle(
                Event::Activity {
                    tab: 1,
                    kind: ActivityKind::FileViewed {
                        path: Some(format!("src/{i}.rs")),
                    },
                    client_id: None,
                    at: None,
                },
                T,
            );
        }
        e
    }

    /// Polls the engine's commit as the driver does: the storage calls of its
    /// persist, acknowledged at once.
    fn persist(e: &mut Engine) -> Calls {
        let mut out = Calls::default();
        while let Some(effect) = e.poll_effect() {
            if let reviewtime_core::Effect::Persist(changes) = effect {
                out = calls(&changes, e.outbox());
                e.persisted();
            }
        }
        out
    }

    fn apply(storage: &mut BTreeMap<String, String>, changes: &Calls) {
        for (k, v) in &changes.write {
            storage.insert(k.clone(), v.clone());
        }
        for k in &changes.remove {
            storage.remove(k);
        }
    }

    fn reload(storage: &BTreeMap<String, String>) -> Loaded {
        load(storage.clone().into_iter().collect(), T, || {
            State::new("fresh", 2)
        })
    }

    #[test]
    fn what_is_written_loads_back_equal() {
        let mut e = engine_with(5);
        let mut storage = BTreeMap::new();
        let changes = persist(&mut e);
        apply(&mut storage, &changes);
        assert_eq!(
            storage
                .keys()
                .filter(|k| k.starts_with(ACTIVITY_PREFIX))
                .count(),
            1,
            "five activities share a chunk"
        );
        let loaded = reload(&storage);
        assert_eq!(&loaded.state, e.state());
        assert!(loaded.pending.is_empty());
    }

    #[test]
    fn a_commit_writes_what_changed_not_the_queue() {
        let cost = |queued: usize| {
            let mut e = engine_with(queued);
            let _ = persist(&mut e);
            e.handle(
                Event::Activity {
                    tab: 1,
                    kind: ActivityKind::CommentPosted,
                    client_id: None,
                    at: None,
                },
                T + 1,
            );
            let c = persist(&mut e);
            (c.write.len(), c.bytes())
        };
        let (keys_empty, bytes_empty) = cost(0);
        let (keys_full, bytes_full) = cost(10_000);
        // The new activity's chunk and the meta section (its counters moved), whatever the queue:
        // at most one chunk of small items more than with an empty queue.
        assert_eq!((keys_empty, keys_full), (2, 2));
        assert!(
            bytes_full < bytes_empty + CHUNK as usize * 200,
            "{bytes_full} vs {bytes_empty}"
        );
    }

    #[test]
    fn nothing_changed_writes_nothing() {
        let mut e = engine_with(3);
        let _ = persist(&mut e);
        let again = persist(&mut e);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_version_2_snapshot_migrates_with_its_queue_and_drops_its_tunables() {
        let e = engine_with(3);
        let mut raw: serde_json::Value = serde_json::from_str(&e.state().to_json()).unwrap();
        raw["version"] = 2.into();
        raw["config"] = serde_json::json!({ "dead_letter_cap": 0, "idle_limit_ms": 5 });
        let mut storage = BTreeMap::new();
        storage.insert(LEGACY_KEY.to_string(), raw.to_string());
        let loaded = reload(&storage);
        assert_eq!(loaded.state.outbox().len(), e.state().outbox().len());
        assert_eq!(loaded.state.install_id(), "test");
        assert_eq!(
            loaded.state.config(),
            &reviewtime_core::config::Config::default()
        );
        assert!(loaded.pending.remove.contains(&LEGACY_KEY.to_string()));
        let migrated: Vec<PendingActivity> = loaded
            .pending
            .write
            .iter()
            .filter(|(k, _)| k.starts_with(ACTIVITY_PREFIX))
            .flat_map(|(_, v)| serde_json::from_str::<Vec<PendingActivity>>(v).unwrap())
            .collect();
        assert_eq!(migrated.len(), 3);
    }

    #[test]
    fn an_unreadable_old_snapshot_becomes_failed_syncs_not_a_loss() {
        let e = engine_with(3);
        let mut raw: serde_json::Value = serde_json::from_str(&e.state().to_json()).unwrap();
        raw["version"] = 99.into(); // written by a newer build, then downgraded
        let mut storage = BTreeMap::new();
        storage.insert(LEGACY_KEY.to_string(), raw.to_string());
        let loaded = reload(&storage);
        let dead = &loaded.state.dead().entries();
        let items: usize = dead.iter().map(|d| d.payload.item_count() as usize).sum();
        // The session start, the three actions (one batch), and the text itself.
        assert_eq!(dead.len(), 3, "{dead:?}");
        assert_eq!(items, 1 + 3 + 1);
        assert!(dead.iter().any(|d| matches!(&d.payload, DeadPayload::Unreadable { raw: r, .. } if r.contains("\"version\":99"))));
        assert_eq!(loaded.state.install_id(), "fresh");
        assert_eq!(loaded.state.counters().recovered_corrupt, 1);
    }

    #[test]
    fn one_bad_value_costs_only_itself() {
        // 70 actions: seqs 1..=63 in chunk 0, 64..=70 in chunk 1.
        let mut e = engine_with(70);
        let mut storage = BTreeMap::new();
        let c = persist(&mut e);
        apply(&mut storage, &c);
        let victim = format!("{ACTIVITY_PREFIX}{:08x}", 1);
        assert!(storage.contains_key(&victim));
        storage.insert(victim.clone(), "{not json".into());
        storage.insert(META_KEY.into(), "garbage".into());
        let loaded = reload(&storage);
        assert_eq!(loaded.state.outbox().activities().len(), 63);
        assert_eq!(loaded.state.outbox().sessions().len(), 1);
        let keys: Vec<&str> = loaded
            .state
            .dead()
            .entries()
            .iter()
            .filter_map(|d| match &d.payload {
                DeadPayload::Unreadable { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&victim.as_str()) && keys.contains(&META_KEY));
        assert!(loaded.pending.remove.contains(&victim));
        assert_eq!(loaded.state.install_id(), "fresh");
    }
}
