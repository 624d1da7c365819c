//! The persisted snapshot: one serialisable, versioned value that the shell
//! loads on every wake and saves after every change.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::dead_letter::DeadLetters;
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

/// Everything the extension must remember between service-worker lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version, for migrations.
    pub version: u32,
    /// Random per-install id chosen by the shell; prefixes client-generated ids.
    pub install_id: String,
    /// Counter for ids.
    pub next_seq: u64,
    /// Jitter source, seeded by the shell.
    pub rng: SplitMix64,
    /// Policies: code defaults plus what the user set, never stored, so new
    /// defaults reach existing installs.
    #[serde(skip)]
    pub config: Config,
    /// Tabs, presence and open sessions.
    #[serde(default)]
    pub reviews: Reviews,
    /// What waits.
    pub outbox: Outbox,
    /// What failed for good.
    pub dead: DeadLetters,
    /// The request in flight.
    pub in_flight: Option<InFlight>,
    /// Credentials.
    pub auth: Auth,
    /// Network.
    pub link: Link,
    /// Items per batch now; halves on 413, grows back on success.
    pub batch_cap: usize,
    /// A refused batch is being cut in halves to find the refused item:
    /// `batch_cap` does not grow back until it is found.
    #[serde(default)]
    pub bisecting: bool,
    /// Every request waits until then (the server asked).
    #[serde(default)]
    pub hold: Option<Hold>,
    /// Send what is ready now rather than after the flush delay.
    pub flush_requested: bool,
    /// Last acknowledged request.
    pub last_success_at: Option<UnixMillis>,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// Request ids.
    pub next_request_id: u64,
    /// Messages a version-1 install had answered, kept from its snapshot.
    /// No longer counted: counting would make every read-only message a
    /// write (docs/ARCHITECTURE.md, invariant 12: a read writes nothing).
    pub messages_handled: u64,
    /// Snapshots found unreadable and set aside.
    pub recovered_corrupt: u32,
    /// Inputs refused as malformed or out of place.
    pub rejected_inputs: u64,
    /// Requests whose worker died before the answer came.
    pub abandoned_requests: u64,
    /// Review actions refused because the outbox was full.
    #[serde(default)]
    pub refused_activities: u64,
    /// Sessions refused because the outbox was full.
    #[serde(default)]
    pub refused_sessions: u64,
}

impl State {
    /// A fresh state for a new install.
    pub fn new(install_id: impl Into<String>, seed: u64) -> Self {
        let config = Config::default();
        State {
            version: CURRENT_VERSION,
            install_id: install_id.into(),
            next_seq: 0,
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
            next_request_id: 1,
            messages_handled: 0,
            recovered_corrupt: 0,
            rejected_inputs: 0,
            abandoned_requests: 0,
            refused_activities: 0,
            refused_sessions: 0,
        }
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
                        let r = state.reviews.end_legacy(session);
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
        state.messages_handled = self.messages_handled;
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
            (s.version, s.install_id.as_str(), s.messages_handled),
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
        assert_eq!(loaded.install_id, "abc");
        assert_eq!(
            State::from_json(r#"{"version":99}"#),
            Err(LoadError::UnknownVersion(99))
        );
    }
}
