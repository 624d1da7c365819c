//! ReviewTime's background: a thin wasm shell around [`reviewtime_core`].
//!
//! The service worker (`extension/sw.js`) registers its listeners
//! synchronously, awaits one memoised `init()` of this module inside each
//! handler, and hands every event to [`dispatch`]. The shell loads the
//! persisted snapshot, lets the core decide, performs the effects, and saves
//! the snapshot again: nothing important lives in a JS or Rust global
//! (ARCHITECTURE.md invariant 4).
//!
//! Modules:
//! - [`chrome`]: hand-written async bindings for the `chrome.*` APIs used.
//! - [`transport`]: `fetch` through gloo-net, with a timeout.
//! - [`message`]: the messages the worker accepts, parsed and validated.
//! - [`js`]: Rust values to and from JS values, through JSON.
//! - [`error`]: the shell's one error enum, in words the popup can show.
//! - [`pages`]: which URLs are pull requests.
//! - [`beacon`]: the pagehide beacon payloads.
//! - [`settings`]: the options page's settings, validated.
//! - [`dispatch`]: the entry point.
#![deny(missing_docs)]

pub mod beacon;
pub mod chrome;
pub mod dispatch;
pub mod error;
pub mod js;
pub mod message;
pub mod pages;
pub mod settings;
pub mod transport;

pub use dispatch::{dispatch_event, dispatch_message};
