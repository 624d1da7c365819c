//! What the popup and badge show.

use reviewtime_protocol::PullRef;
use serde::{Deserialize, Serialize};

use crate::dead_letter::DeadPayload;
use crate::state::{Auth, Link, State};
use crate::UnixMillis;

/// The overall sync state, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Nothing waits.
    AllSynced,
    /// Items are on their way.
    Syncing,
    /// No network: items wait, no attempts are used.
    Offline,
    /// No server reached at the address (down, wrong address, TLS, CORS):
    /// items wait, probes go with backoff, no attempts are used.
    Unreachable,
    /// The address answers with something that is not ReviewTime's API (a
    /// web page, a redirect): items wait, probes go, no attempts are used.
    NotApi,
    /// The server asked every request to wait until `hold_until`.
    Throttled,
    /// Not paired, or the server rejected the credentials.
    SignedOut,
    /// Requests failed and are being retried.
    Failing,
}

/// A session in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    /// Session id.
    pub id: String,
    /// The pull request.
    pub pr: PullRef,
    /// Start.
    pub started_at: UnixMillis,
    /// Seconds so far.
    pub wall_secs: u64,
    /// Active seconds so far.
    pub active_secs: u64,
    /// Active seconds in the last record queued for the server (what the
    /// server shows of it once that record arrived).
    pub reported_active_secs: u64,
}

/// A summary of the background's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Name and version of the engine.
    pub engine: String,
    /// Overall state.
    pub state: SyncState,
    /// Whether credentials are set at all.
    pub paired: bool,
    /// Last acknowledged request.
    pub last_success_at: Option<UnixMillis>,
    /// Items waiting.
    pub waiting: usize,
    /// Earliest retry among failed items.
    pub next_retry_at: Option<UnixMillis>,
    /// Dead letters held.
    pub dead_letters: usize,
    /// Dead letters evicted past the cap.
    pub evicted: u64,
    /// Items inside evicted dead letters.
    pub evicted_items: u64,
    /// The last failure, in words.
    pub last_error: Option<String>,
    /// Sessions in progress.
    pub open_sessions: Vec<OpenSession>,
    /// Snapshots found unreadable and set aside.
    pub recovered_corrupt: u32,
    /// Inputs refused as malformed.
    pub rejected_inputs: u64,
    /// Review actions and sessions not recorded because the sync queue was full.
    pub refused_full: u64,
    /// Nothing is sent before this: the server asked (429, 503, Retry-After).
    pub hold_until: Option<UnixMillis>,
    /// The next probe of an unreachable address or one that is not the API,
    /// or the next check of a refused token.
    pub probe_at: Option<UnixMillis>,
    /// What answers at the server address instead of the API, in words.
    pub not_api: Option<String>,
    /// The status the server refused the token with (401, 403).
    pub auth_refused: Option<u16>,
    /// Failed syncs that are conflicts: the server holds other content.
    pub conflicts: usize,
}

impl Status {
    /// The status of `state` at `now`.
    pub fn of(state: &State, now: UnixMillis) -> Status {
        let failing = state.outbox.retries().any(|r| r.attempts > 0);
        let waiting = state.outbox.len();
        let held = state.hold.as_ref().map(|h| h.until).filter(|&t| t > now);
        let sync_state = if state.auth != Auth::Ready {
            SyncState::SignedOut
        } else if state.link == Link::Offline {
            SyncState::Offline
        } else if matches!(state.link, Link::Unreachable { .. }) {
            SyncState::Unreachable
        } else if matches!(state.link, Link::NotApi { .. }) {
            SyncState::NotApi
        } else if held.is_some() {
            SyncState::Throttled
        } else if failing {
            SyncState::Failing
        } else if waiting > 0 || state.in_flight.is_some() {
            SyncState::Syncing
        } else {
            SyncState::AllSynced
        };
        let next_retry_at = state
            .outbox
            .retries()
            .filter(|r| r.attempts > 0)
            .map(|r| r.retry_at)
            .min();
        let open_sessions = state
            .reviews
            .sessions()
            .map(|s| {
                let wall = (now - s.started_at).max(0);
                OpenSession {
                    id: s.id.clone(),
                    pr: s.pr.clone(),
                    started_at: s.started_at,
                    wall_secs: (wall / 1000) as u64,
                    active_secs: (s.active_at(now).min(wall) / 1000) as u64,
                    reported_active_secs: (s.reported_active_ms / 1000) as u64,
                }
            })
            .collect();
        Status {
            engine: concat!("reviewtime-core ", env!("CARGO_PKG_VERSION")).to_string(),
            state: sync_state,
            paired: state.auth != Auth::Unpaired,
            last_success_at: state.last_success_at,
            waiting,
            next_retry_at,
            dead_letters: state.dead.entries().len(),
            evicted: state.dead.evicted(),
            evicted_items: state.dead.evicted_items(),
            last_error: state.last_error.clone(),
            open_sessions,
            recovered_corrupt: state.counters.recovered_corrupt,
            rejected_inputs: state.counters.rejected_inputs,
            refused_full: state.counters.refused_activities + state.counters.refused_sessions,
            hold_until: held,
            probe_at: match (&state.auth, &state.link) {
                (Auth::Rejected { recheck_at, .. }, _) => Some(*recheck_at),
                (_, Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. }) => {
                    Some(*probe_at)
                }
                _ => None,
            },
            not_api: match &state.link {
                Link::NotApi { detail, .. } => Some(detail.clone()),
                _ => None,
            },
            auth_refused: match state.auth {
                Auth::Rejected { status, .. } => Some(status),
                _ => None,
            },
            conflicts: state
                .dead
                .entries()
                .iter()
                .filter(|e| matches!(e.payload, DeadPayload::Conflict { .. }))
                .count(),
        }
    }
}
