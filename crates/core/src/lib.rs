//! ReviewTime's sync core: pure, deterministic, no IO.
//!
//! # How a shell drives it
//! On a worker's first commit the shell loads a [`State`] from storage (a
//! store reads its parts and assembles it; an unreadable part becomes a
//! failed sync, an unreadable whole a fresh [`State::new`]) and builds one
//! [`Engine`] for the worker's life. Each commit then:
//! 1. feeds inputs with the time they happen at: [`Engine::handle`] for what
//!    the browser and the network say ([`Event`]), and the command methods
//!    for what the user or the shell decided ([`Engine::sync_now`],
//!    [`Engine::retry_dead`], [`Engine::discard_dead`], [`Engine::sign_in`],
//!    [`Engine::sign_out`], [`Engine::rejected_input`]);
//! 2. polls [`Engine::poll_effect`] until `None`: first
//!    [`Effect::Persist`] with the [`Changes`] to write — then nothing until
//!    the shell calls [`Engine::persisted`] — then the [`Effect::Send`]s and
//!    the [`Effect::Notify`];
//! 3. arms one timer at [`Engine::poll_timeout`], fed back as [`Event::Tick`]
//!    (the 1-minute alarm stays as the safety net).
//!
//! The engine module's documentation states the contract in full.
//!
//! # Invariants (docs/ARCHITECTURE.md)
//! - Persist before send, by construction: a commit's requests are released
//!   only after its persist is acknowledged; an item leaves the outbox only
//!   when acknowledged or dead-lettered.
//! - Deterministic: no clock, no random source, no IO. Time is passed in;
//!   jitter comes from a seeded generator stored in the snapshot.
//! - One request at a time, with an expiry so a killed worker never wedges it.
//! - Every answer is classified and decided on in one place ([`policy`]);
//!   only ReviewTime's own answers spend attempts.
//! - Time that moves backwards holds nothing: times loaded further ahead
//!   than their policy allows are clamped.
//! - Nothing is dropped silently: the dead-letter queue is capped and counts evictions.
//! - Session end is the critical path: it is sent in the commit that ends it.
//!
//! # Modules, in the order data flows through them
//! - [`engine`]: the engine and its contract; [`engine::io`] its vocabulary.
//! - [`session`]: review sessions and their clocks (presence, front tab, idle).
//! - [`limits`]: the protocol's limits, applied when an activity is queued.
//! - [`outbox`]: what waits to be sent, and its journal of changes.
//! - [`batch`]: cutting batches by count and bytes.
//! - [`policy`]: what each answer means and what to do about it;
//!   [`classify`], [`backoff`] and [`retry_after`] are its parts.
//! - [`dead_letter`]: the capped failed-sync queue.
//! - [`state`]: the versioned snapshot, its ids and counters, its migrations.
//! - [`status`]: what the popup shows.
//! - [`config`]: every tunable number.
//! - [`rng`]: seeded randomness.
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

pub use engine::{Changes, Effect, Engine, Event, HttpResult, IdleState, Request};
pub use reviewtime_protocol as protocol;
pub use reviewtime_protocol::UnixMillis;
pub use state::State;
pub use status::{Status, SyncState};
