//! ReviewTime's sync core: pure, deterministic, no IO.
//!
//! The shell (the wasm crate at the workspace root) loads a [`state::State`]
//! snapshot from `chrome.storage.local` on every wake, feeds the engine one
//! event with the current time, performs the effects it returns, and saves
//! the snapshot again. This crate never reads a clock, a random source,
//! storage or the network (ARCHITECTURE.md invariant 3).
//!
//! Modules:
//! - [`state`]: the persisted, versioned snapshot and how old ones load.
//! - [`status`]: what the popup shows.
#![deny(missing_docs)]

pub mod state;
pub mod status;

pub use reviewtime_protocol as protocol;
pub use reviewtime_protocol::UnixMillis;
