//! ReviewTime's sync core: pure, deterministic, no IO.
//!
//! # How the shell drives it
//! On every wake the shell (the wasm crate at the workspace root) loads a
//! [`State`] snapshot from `chrome.storage.local` ([`State::from_json`]; an
//! unreadable one is set aside and replaced by [`State::new`]), builds an
//! [`Engine`], calls [`Engine::handle`] with one [`Event`] and the current
//! time, then performs [`Engine::poll_effect`] until it returns `None`:
//! `Persist` (save [`Engine::state`]), `Send` (make the request, later feed
//! [`Event::Response`]), `Wake` (a timer for [`Event::Tick`]; the 1-minute
//! alarm stays as the safety net), `Notify` (badge and popup).
//!
//! # Invariants (docs/ARCHITECTURE.md)
//! - Persist before send: `Persist` always comes before `Send`, and an item
//!   leaves the outbox only when acknowledged or dead-lettered.
//! - Deterministic: no clock, no random source, no IO. Time is passed in;
//!   jitter comes from a seeded generator stored in the snapshot.
//! - One request at a time, with an expiry so a killed worker never wedges it.
//! - Every failure is classified ([`classify`]): transient with backoff and
//!   Retry-After, auth pauses, 413 splits, permanent dead-letters. Offline
//!   costs no attempts.
//! - Nothing is dropped silently: the dead-letter queue is capped and counts evictions.
//! - Session end is the critical path: it is sent in the same event that ends it.
//!
//! # Modules
//! - [`engine`]: events, effects, the engine.
//! - [`session`]: review sessions and active time.
//! - [`outbox`]: what waits to be sent.
//! - [`batch`]: cutting batches by count and bytes.
//! - [`backoff`], [`retry_after`], [`classify`]: retry policies.
//! - [`dead_letter`]: the capped dead-letter queue.
//! - [`state`]: the versioned snapshot and its migrations.
//! - [`status`]: what the popup shows.
//! - [`config`]: every tunable number.
//! - [`rng`]: seeded randomness.
//! - [`workload`]: a reproducible synthetic workload for benchmarks.
#![deny(missing_docs)]

pub mod backoff;
pub mod batch;
pub mod classify;
pub mod config;
pub mod dead_letter;
pub mod engine;
pub mod outbox;
pub mod retry_after;
pub mod rng;
pub mod session;
pub mod state;
pub mod status;
pub mod workload;

pub use engine::{Effect, Engine, Event, HttpResult, IdleState, Request};
pub use reviewtime_protocol as protocol;
pub use reviewtime_protocol::UnixMillis;
pub use state::State;
pub use status::{Status, SyncState};
