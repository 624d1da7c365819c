//! What the service worker receives. Input is untrusted (docs/ARCHITECTURE.md
//! invariant 10): anything that does not parse gets an error answer, is
//! counted, and changes nothing else.

use reviewtime_core::protocol::ActivityKind;
use serde::Deserialize;

use crate::settings::Settings;

/// A runtime message from a content script, the popup or the options page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// The popup asks for the sync status.
    Status,
    /// A content script reports its page (load, navigation, visibility, focus).
    Page {
        /// The page's URL.
        url: String,
        /// `document.visibilityState === 'visible'`.
        visible: bool,
        /// `document.hasFocus()`.
        focused: bool,
    },
    /// The user typed, clicked or scrolled (throttled by the content script).
    Input {
        /// The page's URL, so a worker that lost its state picks the session up again.
        #[serde(default)]
        url: Option<String>,
    },
    /// A review action.
    Activity {
        /// What happened.
        activity: ActivityKind,
        /// The content script's id for it, so a repeated message is recorded once.
        #[serde(default)]
        id: Option<String>,
        /// When it happened (the content script's clock, checked by the core).
        #[serde(default)]
        at: Option<i64>,
        /// The page's URL, as for [`Message::Input`].
        #[serde(default)]
        url: Option<String>,
    },
    /// Sync at once.
    SyncNow,
    /// The failed syncs.
    DeadLetters,
    /// Retry one failed sync, or all when `id` is absent.
    RetryDead {
        /// Which.
        #[serde(default)]
        id: Option<String>,
    },
    /// Discard one failed sync, or all when `id` is absent.
    DiscardDead {
        /// Which.
        #[serde(default)]
        id: Option<String>,
    },
    /// The failed syncs as a JSON document.
    ExportDead,
    /// A browser event fed as Chrome would deliver it to the worker's
    /// listener (extension pages only): the seam through which tests drive
    /// what headless Chromium cannot produce, such as the system going idle.
    BrowserEvent {
        /// The event, as sw.js passes it.
        event: BrowserEvent,
    },
    /// The whole sync state as the worker holds it (for diagnostics and tests;
    /// extension pages only, like every message that is not a page's own).
    Snapshot,
    /// The options page reads the settings.
    GetSettings,
    /// The options page saves the settings.
    SetSettings {
        /// The new settings, validated before they are stored.
        settings: Settings,
    },
    /// The options page checks a server URL and token.
    TestConnection {
        /// What to test.
        settings: Settings,
    },
    /// The options page reads a pairing link (pasted or opened) by the one
    /// rule, `reviewtime_protocol::pairing`.
    ParsePairing {
        /// The text to read.
        link: String,
    },
    /// The options page asks which host permissions these settings need
    /// (match patterns by `settings::match_pattern`), to request them in the
    /// Save click's user gesture.
    HostPatterns {
        /// The settings about to be saved, validated as Save would.
        settings: Settings,
    },
    /// The popup asks for today's active review time on the server.
    Today,
}

/// Who sent a message, as Chrome reports it (trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Sender {
    /// The sending tab, for content scripts.
    #[serde(default)]
    pub tab_id: Option<i64>,
    /// Whether it is one of the extension's own pages (popup, options), which
    /// alone may change settings or the failed-sync list.
    #[serde(default)]
    pub extension_page: bool,
    /// The sending frame's URL as Chrome knows it (`sender.url`): trusted,
    /// unlike a URL inside the message.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether the sending tab is the active tab of its window (`sender.tab.active`):
    /// Chrome's word, which a page's own visibility and focus reports cannot overrule.
    #[serde(default)]
    pub tab_active: Option<bool>,
}

impl Message {
    /// Whether only the extension's own pages may send this.
    pub fn privileged(&self) -> bool {
        !matches!(
            self,
            Message::Status
                | Message::Page { .. }
                | Message::Input { .. }
                | Message::Activity { .. }
        )
    }
}

/// A browser event the service worker listens to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum BrowserEvent {
    /// `chrome.tabs.onRemoved`.
    TabRemoved {
        /// The tab.
        tab_id: i64,
    },
    /// `chrome.tabs.onUpdated` with a new URL.
    TabUpdated {
        /// The tab.
        tab_id: i64,
        /// Its new URL.
        url: String,
    },
    /// `chrome.tabs.onActivated`: another tab is in front in its window.
    TabActivated {
        /// The tab.
        tab_id: i64,
    },
    /// `chrome.windows.onFocusChanged`; -1 when Chrome lost focus.
    WindowFocus {
        /// The window.
        window_id: i64,
    },
    /// `chrome.idle.onStateChanged`.
    Idle {
        /// `active`, `idle` or `locked`.
        state: reviewtime_core::IdleState,
    },
    /// `chrome.alarms.onAlarm`.
    Alarm {
        /// The alarm's name.
        name: String,
    },
    /// `chrome.runtime.onStartup` / `onInstalled`.
    Startup,
    /// The worker's `online` event.
    Online,
    /// The worker's `offline` event.
    Offline,
    /// A wake-up timer the engine asked for.
    Wake,
}
