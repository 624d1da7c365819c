//! The persisted snapshot: one serialisable, versioned value that the shell
//! loads on every wake and saves after every change.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::outbox::Outbox;
use crate::rng::SplitMix64;
use crate::session::Reviews;
use crate::UnixMillis;

/// Version of the snapshot layout this build writes.
///
/// 3: the shell stores the snapshot in sections and the outbox item by item;
/// the tunables ([`Config`]) are no longer stored (they are code defaults).
pub const CURRENT_VERSION: u32 = 3;

/// Whether the engine may talk to the server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// No credentials yet: queue, do not send.
    #[default]
    Unpaired,
    /// Credentials present and not rejected.
    Ready,
    /// The server rejected the credentials: paused until the user signs in again.
    Rejected {
        /// When.
        since: UnixMillis,
        /// 401 or 403.
        status: u16,
        /// When one request checks the token again.
        #[serde(default)]
        recheck_at: UnixMillis,
    },
}

/// What the engine believes about the network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// Requests may go.
    #[default]
    Online,
    /// The browser says it is offline; wait for it to come back (or the alarm's probe).
    Offline,
    /// The last request never reached a server; probe again at `probe_at`.
    Unreachable {
        /// Next probe.
        probe_at: UnixMillis,
        /// Probes failed in a row, for their backoff.
        failures: u32,
    },
    /// The server address answers with something that is not ReviewTime's
    /// API (a web page, a redirect): paused like `Unreachable`, probing at
    /// `probe_at`; no item uses an attempt.
    NotApi {
        /// Next probe.
        probe_at: UnixMillis,
        /// Probes answered so in a row.
        failures: u32,
        /// What answered, in words.
        detail: String,
    },
}

/// The server asked every request to wait (429, 503, Retry-After).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// When it asked (a clock that later reads earlier than this went back).
    pub since: UnixMillis,
    /// Nothing is sent before this.
    pub until: UnixMillis,
}

/// What the one request in flight carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightItems {
    /// A session state.
    Session {
        /// Session id.
        id: String,
        /// Its revision.
        revision: u64,
    },
    /// A batch of activities.
    Batch {
        /// Activity ids.
        ids: Vec<String>,
    },
}

impl InFlightItems {
    /// How many items the request carries.
    pub fn len(&self) -> usize {
        match self {
            InFlightItems::Session { .. } => 1,
            InFlightItems::Batch { ids } => ids.len(),
        }
    }

    /// Whether it carries none (never, for a request the engine made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The one request in flight. Its expiry means a worker killed mid-request
/// never blocks later syncs (docs/ARCHITECTURE.md invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Matches the response to the request.
    pub request_id: u64,
    /// What it carries.
    pub items: InFlightItems,
    /// When it went.
    pub started_at: UnixMillis,
    /// After this, it is presumed lost.
    pub expires_at: UnixMillis,
}

/// The ids this install makes: its own prefix, a counter for sessions and
/// activities, and request ids. One place hands them out, so no caller has
/// to take the state apart to borrow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdGen {
    /// Random per-install id chosen by the shell; prefixes client-generated ids.
    install_id: String,
    /// Counter for ids.
    next_seq: u64,
    /// The next request id.
    next_request_id: u64,
}

impl IdGen {
    /// A new id, `<install>-<prefix><n>`, never handed out before by this install.
    pub fn next(&mut self, prefix: &str) -> String {
        self.next_seq += 1;
        format!("{}-{prefix}{:x}", self.install_id, self.next_seq)
    }

    /// A new request id.
    pub fn next_request(&mut self) -> u64 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// The install's id.
    pub fn install_id(&self) -> &str {
        &self.install_id
    }
}

/// Diagnostics: what was refused, lost or recovered, for the popup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Messages a version-1 install had answered, kept from its snapshot.
    /// No longer counted: counting would make every read-only message a
    /// write (docs/ARCHITECTURE.md, invariant 12: a read writes nothing).
    #[serde(default)]
    pub messages_handled: u64,
    /// Snapshots found unreadable and set aside.
    #[serde(default)]
    pub recovered_corrupt: u32,
    /// Inputs refused as malformed or out of place.
    #[serde(default)]
    pub rejected_inputs: u64,
    /// Requests whose worker died before the answer came.
    #[serde(default)]
    pub abandoned_requests: u64,
    /// Review actions refused because the outbox was full.
    #[serde(default)]
    pub refused_activities: u64,
    /// Sessions refused because the outbox was full.
    #[serde(default)]
    pub refused_sessions: u64,
}

/// Everything the extension must remember between service-worker lives.
///
/// Its fields are the engine's: outside the crate it is read through
/// methods, and changed only by [`crate::Engine`]'s inputs (and, for a store
/// assembling it from its parts, [`State::attach`] and [`State::recover`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version, for migrations.
    pub(crate) version: u32,
    /// Ids handed out.
    #[serde(flatten)]
    pub(crate) ids: IdGen,
    /// Jitter source, seeded by the shell.
    pub(crate) rng: SplitMix64,
    /// Policies: code defaults plus what the user set, never stored, so new
    /// defaults reach existing installs.
    #[serde(skip)]
    pub(crate) config: Config,
    /// Tabs, presence and open sessions.
    #[serde(default)]
    pub(crate) reviews: Reviews,
    /// What waits.
    pub(crate) outbox: Outbox,
    /// What failed for good.
    pub(crate) dead: DeadLetters,
    /// The request in flight.
    pub(crate) in_flight: Option<InFlight>,
    /// Credentials.
    pub(crate) auth: Auth,
    /// Network.
    pub(crate) link: Link,
    /// Items per batch now; halves on 413, grows back on success.
    pub(crate) batch_cap: usize,
    /// A refused batch is being cut in halves to find the refused item:
    /// `batch_cap` does not grow back until it is found.
    #[serde(default)]
    pub(crate) bisecting: bool,
    /// Every request waits until then (the server asked).
    #[serde(default)]
    pub(crate) hold: Option<Hold>,
    /// Send what is ready now rather than after the flush delay.
    pub(crate) flush_requested: bool,
    /// Last acknowledged request.
    pub(crate) last_success_at: Option<UnixMillis>,
    /// The last failure, in words.
    pub(crate) last_error: Option<String>,
    /// Diagnostics.
    #[serde(flatten)]
    pub(crate) counters: Counters,
}

impl State {
    /// A fresh state for a new install.
    pub fn new(install_id: impl Into<String>, seed: u64) -> Self {
        let config = Config::default();
        State {
            version: CURRENT_VERSION,
            ids: IdGen {
                install_id: install_id.into(),
                next_seq: 0,
                next_request_id: 1,
            },
            rng: SplitMix64::new(seed),
            batch_cap: config.max_batch_items,
            bisecting: false,
            hold: None,
            config,
            reviews: Reviews::default(),
            outbox: Outbox::default(),
            dead: DeadLetters::default(),
            in_flight: None,
            auth: Auth::Unpaired,
            link: Link::Online,
            flush_requested: false,
            last_success_at: None,
            last_error: None,
            counters: Counters::default(),
        }
    }

    /// A fresh state whose request ids start at `first` (drawn at random by
    /// the shell, so a new install's ids never repeat an earlier life's).
    pub fn with_first_request_id(mut self, first: u64) -> Self {
        self.ids.next_request_id = first.max(1);
        self
    }

    /// Sets the tunables (they are never stored).
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// The install's id.
    pub fn install_id(&self) -> &str {
        self.ids.install_id()
    }

    /// The tunables in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tabs, presence and open sessions.
    pub fn reviews(&self) -> &Reviews {
        &self.reviews
    }

    /// What waits to be sent.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The failed syncs.
    pub fn dead(&self) -> &DeadLetters {
        &self.dead
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// Whether the engine may talk to the server.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The server's hold on every request, if any.
    pub fn hold(&self) -> Option<&Hold> {
        self.hold.as_ref()
    }

    /// Items per batch now.
    pub fn batch_cap(&self) -> usize {
        self.batch_cap
    }

    /// The last failure, in words.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Diagnostics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Moves the outbox out (a store that keeps its items elsewhere).
    pub fn take_outbox(&mut self) -> Outbox {
        std::mem::take(&mut self.outbox)
    }

    /// Moves the dead-letter queue out (a store that keeps it elsewhere).
    pub fn take_dead(&mut self) -> DeadLetters {
        std::mem::take(&mut self.dead)
    }

    /// Puts the parts a store keeps apart back in.
    pub fn attach(&mut self, outbox: Outbox, dead: DeadLetters) {
        self.outbox = outbox;
        self.dead = dead;
    }

    /// Stored parts that could not be read become failed syncs (exportable,
    /// discardable), counted and said in words; nothing real is pushed out
    /// for them beyond the queue's own cap.
    pub fn recover(&mut self, unreadable: Vec<DeadLetter>) {
        if unreadable.is_empty() {
            return;
        }
        self.counters.recovered_corrupt = self.counters.recovered_corrupt.saturating_add(1);
        self.last_error = Some(format!(
            "{} stored part(s) could not be read: they are listed as failed syncs",
            unreadable.len()
        ));
        let cap = self.config.dead_letter_cap;
        for entry in unreadable {
            self.dead.push(entry, cap);
        }
    }

    /// The snapshot without its outbox and dead letters (which a store keeps
    /// apart), as JSON; they are moved out, not copied, while it is encoded.
    pub(crate) fn small_part_json(&mut self) -> String {
        let outbox = std::mem::take(&mut self.outbox);
        let dead = std::mem::take(&mut self.dead);
        let meta = self.to_json();
        self.outbox = outbox;
        self.dead = dead;
        meta
    }

    /// Serialises the snapshot.
    pub fn to_json(&self) -> String {
        // A State holds only strings, numbers, maps with integer keys and
        // enums: serde_json cannot fail on it.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stored snapshot, migrating older layouts.
    pub fn from_json(raw: &str) -> Result<State, LoadError> {
        // Read the version alone first (serde ignores the other fields), then the
        // layout it names: no generic JSON tree, which keeps the wasm small.
        #[derive(Deserialize)]
        struct Version {
            version: u64,
        }
        let Version { version } =
            serde_json::from_str(raw).map_err(|e| LoadError::Parse(e.to_string()))?;
        match version {
            1 => {
                let v1: StateV1 =
                    serde_json::from_str(raw).map_err(|e| LoadError::Parse(e.to_string()))?;
                Ok(v1.migrate())
            }
            // Version 2 stored the tunables too: they are ignored, defaults apply.
            2 | 3 => {
                let mut state: State =
                    serde_json::from_str(raw).map_err(|e| LoadError::Parse(e.to_string()))?;
                if version == 2 {
                    // Its sessions belonged to tabs: they end at their last activity.
                    let legacy: LegacyTabs =
                        serde_json::from_str(raw).map_err(|e| LoadError::Parse(e.to_string()))?;
                    let cap = state.config.max_outbox_sessions;
                    for t in legacy.tabs.into_values() {
                        let session = crate::session::Session {
                            id: t.id,
                            pr: t.pr,
                            view: None,
                            started_at: t.started_at,
                            last_seen: t.last_activity_at,
                            seen_active_ms: t.active_ms,
                            active_ms: t.active_ms,
                            active_since: t.active_since,
                            revision: t.revision,
                            reported_at: t.started_at,
                            reported_active_ms: 0,
                        };
                        let r = Reviews::end_legacy(session);
                        let at = r.record.ended_at.unwrap_or(r.record.started_at);
                        let _ = state.outbox.queue_session(r.record, at, cap, true);
                    }
                }
                state.version = CURRENT_VERSION;
                Ok(state)
            }
            v => Err(LoadError::UnknownVersion(v)),
        }
    }
}

/// The per-tab sessions of version 2.
#[derive(Deserialize)]
struct LegacyTabs {
    #[serde(default)]
    tabs: std::collections::BTreeMap<i64, LegacyTab>,
}

#[derive(Deserialize)]
struct LegacyTab {
    id: String,
    pr: reviewtime_protocol::PullRef,
    started_at: UnixMillis,
    last_activity_at: UnixMillis,
    #[serde(default)]
    active_ms: i64,
    #[serde(default)]
    active_since: Option<UnixMillis>,
    #[serde(default)]
    revision: u64,
}

/// Version 1 (the foundation release) held only the install id and a message counter.
#[derive(Deserialize)]
struct StateV1 {
    install_id: String,
    #[serde(default)]
    messages_handled: u64,
}

impl StateV1 {
    fn migrate(self) -> State {
        // The seed derives from the install id: deterministic, and distinct per install.
        let seed = self
            .install_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let mut state = State::new(self.install_id, seed);
        state.counters.messages_handled = self.messages_handled;
        state
    }
}

/// Why a stored snapshot could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not a snapshot at all.
    #[error("stored state is not valid: {0}")]
    Parse(String),
    /// Written by a newer build.
    #[error("stored state has unknown version {0}")]
    UnknownVersion(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = State::new("abc", 5);
        assert_eq!(State::from_json(&s.to_json()), Ok(s));
    }

    #[test]
    fn v1_migrates_keeping_id_and_counter() {
        let s =
            State::from_json(r#"{"version":1,"install_id":"feed","messages_handled":7}"#).unwrap();
        assert_eq!(
            (s.version, s.install_id(), s.counters.messages_handled),
            (CURRENT_VERSION, "feed", 7)
        );
        assert!(s.outbox.is_empty());
    }

    #[test]
    fn garbage_and_future_versions_are_errors_not_panics() {
        assert!(matches!(
            State::from_json("{not json"),
            Err(LoadError::Parse(_))
        ));
        assert!(matches!(
            State::from_json("[1,2]"),
            Err(LoadError::Parse(_))
        ));
        assert!(matches!(
            State::from_json(r#"{"version":2,"install_id":5}"#),
            Err(LoadError::Parse(_))
        ));
    }

    #[test]
    fn stored_tunables_are_ignored() {
        let s = State::new("abc", 5);
        // An invalid tunable, as a version-2 snapshot could hold it.
        let mut raw: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        raw["config"] = serde_json::json!({ "dead_letter_cap": 0 });
        raw["version"] = 2.into();
        let loaded = State::from_json(&raw.to_string()).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.install_id(), "abc");
        assert_eq!(
            State::from_json(r#"{"version":99}"#),
            Err(LoadError::UnknownVersion(99))
        );
    }
}
