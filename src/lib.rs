//! ReviewTime's background: a thin wasm shell around [`reviewtime_core`].
//!
//! The service worker (`extension/sw.js`) registers its listeners
//! synchronously, awaits one memoised `init()` of this module inside each
//! handler, and hands every message and event to [`entry`]. The entry points
//! turn them into the core's events and submit them to the single-writer
//! commit loop of [`reviewtime_driver`], which runs here over
//! [`browser::WasmBrowser`]: nothing important lives in a JS or Rust global
//! (docs/ARCHITECTURE.md invariants 4 and 12).
//!
//! Modules:
//! - [`chrome`]: hand-written async bindings for the `chrome.*` APIs used.
//! - [`transport`]: `fetch` through gloo-net, with a timeout.
//! - [`message`]: the messages the worker accepts, parsed and validated.
//! - [`js`]: Rust values to and from JS values (serde-wasm-bindgen).
//! - [`error`]: the shell's one error enum, in words the popup can show.
//! - [`pages`]: which URLs are pull requests.
//! - [`dropbox`]: what a closing page left for the worker in `chrome.storage.session`.
//! - [`settings`]: the options page's settings, validated.
//! - [`capability`]: a session's own beacon capability, for the page-context beacon.
//! - [`browser`]: the driver's browser interface over `chrome.*` and `fetch`.
//! - [`entry`]: the entry points.
#![deny(missing_docs)]

pub mod browser;
pub mod capability;
pub mod chrome;
pub mod dropbox;
pub mod entry;
pub mod error;
pub mod js;
pub mod message;
pub mod pages;
pub mod settings;
pub mod transport;

pub use entry::{dispatch_event, dispatch_message};
