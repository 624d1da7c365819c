//! ReviewTime's background driver: the part of the service worker between
//! Chrome and the pure sync core, written once and run two ways.
//!
//! It runs one commit at a time — load, handle, persist what changed, answer,
//! send — whatever order Chrome delivers events in (docs/ARCHITECTURE.md
//! invariant 12). It is generic over a small [`Browser`] interface: the wasm
//! shell implements it with `chrome.*` and `fetch`, and the seeded simulation
//! (`tests/simulation.rs`) with a deterministic fake that delays, reorders and
//! kills, so the code that runs in Chrome is the code the simulation checks.
//!
//! Modules:
//! - [`browser`]: the interface the driver needs from the browser.
//! - [`commit`]: the single-writer commit loop ([`Driver`]).
//! - [`store`]: the snapshot in storage, in sections, written by difference.
#![deny(missing_docs)]

pub mod browser;
pub mod commit;
pub mod store;

pub use browser::{Browser, BrowserError, Task, UserConfig};
pub use commit::{Command, Driver, DriverError, Input, Stats};
