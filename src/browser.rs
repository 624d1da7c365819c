//! The driver's browser interface over the real browser: `chrome.storage`,
//! `fetch` (gloo-net), timers (gloo-timers), the badge and the popup.

use std::cell::RefCell;

use reviewtime_core::engine::Method;
use reviewtime_core::protocol::routes;
use reviewtime_core::{HttpResult, Request, Status, SyncState, UnixMillis};
use reviewtime_driver::{Browser, BrowserError, Task, UserConfig};
use serde::Serialize;

use crate::capability;
use crate::chrome;
use crate::error::ShellError;
use crate::js;
use crate::settings::{load_settings, SETTINGS_KEY};
use crate::transport;

/// The service worker's browser.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasmBrowser;

thread_local! {
    /// The one wake-up timer; replacing it drops (and so cancels) the old one.
    static WAKE: RefCell<Option<gloo_timers::callback::Timeout>> = const { RefCell::new(None) };
}

fn browser_error(e: ShellError) -> BrowserError {
    BrowserError(e.to_string())
}

impl Browser for WasmBrowser {
    async fn load(&self, prefix: &str) -> Result<Vec<(String, String)>, BrowserError> {
        let mut entries = chrome::storage_get_prefixed(prefix)
            .await
            .map_err(browser_error)?;
        entries.retain(|(k, _)| k != SETTINGS_KEY);
        Ok(entries)
    }

    async fn write(&self, items: Vec<(String, String)>) -> Result<(), BrowserError> {
        chrome::storage_set_texts(&items)
            .await
            .map_err(browser_error)
    }

    async fn remove(&self, keys: Vec<String>) -> Result<(), BrowserError> {
        chrome::storage_remove(&keys).await.map_err(browser_error)
    }

    async fn user_config(&self) -> Result<UserConfig, BrowserError> {
        let settings = load_settings().await.map_err(browser_error)?;
        Ok(UserConfig {
            paired: settings.paired(),
            idle_limit_ms: i64::from(settings.idle_limit_minutes) * 60_000,
        })
    }

    async fn browser_run_marked(&self) -> Result<bool, BrowserError> {
        chrome::browser_run_marked().await.map_err(browser_error)
    }

    async fn mark_browser_run(&self) -> Result<(), BrowserError> {
        chrome::mark_browser_run().await.map_err(browser_error)
    }

    async fn fetch(&self, request: &Request) -> HttpResult {
        if !chrome::online() {
            return HttpResult::Offline;
        }
        let settings = match load_settings().await {
            Ok(s) => s,
            Err(e) => {
                return HttpResult::NetworkError {
                    message: e.to_string(),
                }
            }
        };
        let url = format!("{}{}", settings.server_url, request.path);
        let method = match request.method {
            Method::Put => "PUT",
            Method::Post => "POST",
        };
        let timeout = u32::try_from(request.timeout_ms).unwrap_or(15_000);
        // The shell adds the credentials: the token, and for a server a page
        // can reach, the open session's beacon capability (src/capability.rs).
        // Without a seed, no capability this time: the beacon is never counted on.
        let registered = if request.method == Method::Put
            && request.path.starts_with(routes::SESSIONS)
            && capability::page_can_reach(&settings.server_url)
        {
            let seed = capability::seed().await.ok();
            seed.and_then(|seed| capability::register(&seed, &request.body))
        } else {
            None
        };
        let body = registered.unwrap_or_else(|| request.body.clone());
        match transport::send(method, &url, Some(&settings.token), Some(body), timeout)
        .await
        {
            Ok(reply) if reply.redirected => HttpResult::Redirected,
            Ok(reply) => HttpResult::Reply {
                status: reply.status,
                retry_after: reply.retry_after,
                body: reply.body,
            },
            Err(ShellError::Timeout(_)) => HttpResult::Timeout,
            Err(_) if !chrome::online() => HttpResult::Offline,
            // fetch says only "Failed to fetch": say what it can mean.
            Err(e) => HttpResult::NetworkError {
                message: format!(
                    "{} ({e}: the server is down, the address is wrong, or its certificate or CORS settings refuse the extension)",
                    settings.server_url
                ),
            },
        }
    }

    /// Badge: failed syncs as a number, a distinct mark when signed out; the
    /// open popup gets the status pushed.
    async fn notify(&self, status: &Status) {
        let (text, color) = match status.state {
            SyncState::SignedOut => ("!".to_string(), "#9a6700"),
            SyncState::NotApi => ("?".to_string(), "#9a6700"),
            _ if status.dead_letters > 0 => (status.dead_letters.to_string(), "#cf222e"),
            _ => (String::new(), "#000000"),
        };
        let _ = chrome::set_badge(&text, color).await;
        #[derive(Serialize)]
        struct Push<'a> {
            r#type: &'static str,
            status: &'a Status,
        }
        if let Ok(msg) = js::to_js(&Push {
            r#type: "status_changed",
            status,
        }) {
            chrome::broadcast(&msg).await;
        }
    }

    fn now(&self) -> UnixMillis {
        js_sys::Date::now() as i64
    }

    fn random(&self) -> u64 {
        let word = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        (word() << 32) | word()
    }

    fn set_wake(&self, at: UnixMillis, wake: Box<dyn FnOnce()>) {
        let ms = (at - self.now()).clamp(0, i64::from(i32::MAX)) as u32;
        let timer = gloo_timers::callback::Timeout::new(ms, wake);
        WAKE.with(|w| *w.borrow_mut() = Some(timer));
    }

    fn spawn(&self, task: Task) {
        wasm_bindgen_futures::spawn_local(task);
    }
}
