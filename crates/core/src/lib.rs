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
//! - Every answer is classified and decided on in one place ([`policy`]):
//!   transient with backoff, a server-wide hold on 429/503/Retry-After,
//!   auth pauses with a slow re-check, 413 splits, a refused batch bisected
//!   to its one bad item, and anything that is not the API (a web page, a
//!   redirect) pauses like an unreachable server. Only ReviewTime's own
//!   answers spend attempts; offline and not-the-API cost none.
//! - Time that moves backwards holds nothing: times loaded further ahead
//!   than their policy allows are clamped.
//! - Nothing is dropped silently: the dead-letter queue is capped and counts evictions.
//! - Session end is the critical path: it is sent in the same event that ends it.
//!
//! # Modules
//! - [`engine`]: events, effects, the engine.
//! - [`session`]: review sessions and active time.
//! - [`outbox`]: what waits to be sent.
//! - [`batch`]: cutting batches by count and bytes.
//! - [`policy`]: what each answer means and what to do about it.
//! - [`backoff`], [`retry_after`], [`classify`]: its parts.
//! - [`limits`]: the protocol's limits, applied when an activity is queued.
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
pub mod limits;
pub mod outbox;
pub mod policy;
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
