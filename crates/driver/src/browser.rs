//! The small browser interface the driver runs on: storage, fetch, timers,
//! notification, time and randomness. The wasm shell implements it over
//! `chrome.*` and `fetch`; the simulation implements it with a deterministic
//! fake whose every call can be delayed, reordered or cut off by a worker kill.

use std::future::Future;
use std::pin::Pin;

use reviewtime_core::{HttpResult, Request, Status, UnixMillis};

/// A task for the browser's event loop (`spawn_local` in the worker).
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// A storage call failed (quota, the extension context going away).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(pub String);

/// What the user set that the engine needs (the rest of the settings stay in
/// the shell): tunables are code defaults, only these come from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserConfig {
    /// Whether a server and token are set.
    pub paired: bool,
    /// The idle limit, in ms.
    pub idle_limit_ms: i64,
}

/// The browser, as the driver uses it. Single-threaded: futures need not be `Send`.
///
/// Contract: storage calls made one after another complete in that order
/// (Chrome serialises an extension's storage operations), and a `write` of
/// several keys lands whole or not at all.
#[allow(async_fn_in_trait)]
pub trait Browser: 'static {
    /// Every stored `(key, JSON text)` whose key starts with `prefix`.
    async fn load(&self, prefix: &str) -> Result<Vec<(String, String)>, BrowserError>;
    /// Writes these keys in one call.
    async fn write(&self, items: Vec<(String, String)>) -> Result<(), BrowserError>;
    /// Removes these keys.
    async fn remove(&self, keys: Vec<String>) -> Result<(), BrowserError>;
    /// What the user set.
    async fn user_config(&self) -> Result<UserConfig, BrowserError>;
    /// Whether this browser run was already marked ([`Browser::mark_browser_run`]).
    /// A mark lives as long as the browser runs (`chrome.storage.session`):
    /// a worker that finds none is the first of a new run, whose tab ids,
    /// focus and idle state are not the last run's.
    async fn browser_run_marked(&self) -> Result<bool, BrowserError>;
    /// Marks this browser run as seen.
    async fn mark_browser_run(&self) -> Result<(), BrowserError>;
    /// Makes one request for the engine; every failure is an outcome.
    async fn fetch(&self, request: &Request) -> HttpResult;
    /// Shows a status (badge, open popup).
    async fn notify(&self, status: &Status);
    /// The current time.
    fn now(&self) -> UnixMillis;
    /// A random number (ids and seeds for a new install; the core takes none).
    fn random(&self) -> u64;
    /// Calls `wake` at `at`, replacing any earlier wake-up.
    fn set_wake(&self, at: UnixMillis, wake: Box<dyn FnOnce()>);
    /// Runs `task` on the event loop, after the current one yields.
    fn spawn(&self, task: Task);
}
