//! The engine's vocabulary: what comes in ([`Event`]), what goes out
//! ([`Effect`]), and the values they carry.
//!
//! Rules:
//! - An [`Event`] is only what the browser or the network tells the engine.
//!   What the user asks for (sync now, retry or discard a failed sync) and
//!   what the shell decides (credentials saved or removed, a message refused)
//!   are methods of [`super::Engine`], not events.
//! - An [`Effect`] carries all its data. [`Effect::Persist`] carries the
//!   changes to write; no [`Effect::Send`] of a commit is released before the
//!   shell calls [`super::Engine::persisted`].
//! - There is one deadline channel, [`super::Engine::poll_timeout`]; no
//!   effect repeats it.
//!
//! Words: a **tab** is a browser tab; a **view** is one of a pull request's
//! pages (Conversation, Commits, Checks, Files). The **front tab** is the
//! active tab of the focused window, as Chrome reports it
//! ([`Event::WindowFocus`]); a page's own `focused` report can take focus
//! away, never give it (docs/ARCHITECTURE.md, "front").

use std::collections::BTreeSet;

use reviewtime_protocol::{Activity, ActivityKind, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::outbox::ItemKey;
use crate::session::{PrPage, TabId};
use crate::state::InFlightItems;
use crate::status::Status;
use crate::UnixMillis;

/// The machine's idle state, from `chrome.idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleState {
    /// The user is there.
    Active,
    /// No input for a while.
    Idle,
    /// Screen locked.
    Locked,
}

/// How a request ended, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HttpResult {
    /// A server answered.
    Reply {
        /// Status code.
        status: u16,
        /// The Retry-After header, if any.
        retry_after: Option<String>,
        /// The body.
        body: String,
    },
    /// The request never reached a server (DNS, refused, reset).
    NetworkError {
        /// What the browser said.
        message: String,
    },
    /// No answer within the timeout; the server may have processed it.
    Timeout,
    /// The server address answered with a redirect (the shell fetches with
    /// `redirect: "manual"`): a sign-in page or a network's login portal,
    /// not ReviewTime's API, which never redirects.
    Redirected,
    /// The browser says it is offline; nothing was sent.
    Offline,
}

/// What the browser and the network tell the engine.
///
/// Presence (what tabs show, focus, idle, input, review actions), the
/// browser's life (a new run, a new worker life, the alarm, the wake-up the
/// engine asked for), the network (online, offline) and the answers to its
/// requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    // ---- presence ----
    /// A content script reports its page: on load, in-page navigation, visibility or focus change.
    Page {
        /// The tab.
        tab: TabId,
        /// The pull request, or `None` for any other page.
        page: Option<PrPage>,
        /// Whether the page is visible.
        visible: bool,
        /// Whether the page has focus.
        focused: bool,
    },
    /// Where a tab is (a PR, or `None` for any other page), from Chrome or a
    /// message's sender, saying nothing of visibility or focus: a tab the
    /// worker lost track of, found again.
    Location {
        /// The tab.
        tab: TabId,
        /// The pull request, or `None`.
        page: Option<PrPage>,
    },
    /// The user typed, clicked or scrolled in a tab: a sign of presence only
    /// if the tab is the visible front tab.
    UserInput {
        /// The tab.
        tab: TabId,
    },
    /// A review action.
    Activity {
        /// The tab.
        tab: TabId,
        /// What happened.
        kind: ActivityKind,
        /// The content script's id for it, so a message it repeats (its answer
        /// was lost to a worker restart) is recorded once.
        #[serde(default)]
        client_id: Option<String>,
        /// When the content script saw it.
        #[serde(default)]
        at: Option<UnixMillis>,
    },
    /// A tab closed.
    TabClosed {
        /// The tab.
        tab: TabId,
    },
    /// `chrome.idle` changed.
    Idle {
        /// The new state.
        state: IdleState,
    },
    /// The front tab, from Chrome (`tabs.onActivated`,
    /// `windows.onFocusChanged`); `None` when Chrome has no focus.
    WindowFocus {
        /// The tab, if any.
        tab: Option<TabId>,
    },
    /// The tabs open right now (Chrome's `tabs.query`): sessions of any other
    /// tab lost their close (the worker was stopped as it fired, or the
    /// browser quit) and end now.
    OpenTabs {
        /// Every open tab.
        tabs: Vec<TabId>,
        /// When the list was read (it reaches the engine later, and tabs
        /// reported in between are not in it).
        listed_at: UnixMillis,
    },

    // ---- the browser's life ----
    /// A new browser run (the browser started, or restarted after a quit or
    /// crash): sessions of the last run end at their last confirmed moment,
    /// and tab ids, focus and idle state are forgotten.
    BrowserStarted,
    /// A new service-worker life: a request the last one had in flight died
    /// with it (Chrome ends a stopped worker's fetches), so its marker is
    /// dropped at once rather than at its expiry; its items are sent again
    /// and the server keeps each once.
    WorkerStarted,
    /// The 1-minute alarm: flush everything due, probe the network.
    Alarm,
    /// Time passed: the wake-up asked for by [`super::Engine::poll_timeout`],
    /// or any commit's own look at the clock.
    Tick,

    // ---- the network ----
    /// The browser is online again.
    Online,
    /// The browser went offline.
    Offline,
    /// A request finished.
    Response {
        /// The request's id.
        request_id: u64,
        /// The request's items ([`Request::items`]).
        items: InFlightItems,
        /// How it ended.
        result: HttpResult,
    },
}

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// PUT.
    #[serde(rename = "PUT")]
    Put,
    /// POST.
    #[serde(rename = "POST")]
    Post,
}

/// A request for the shell to make (with the server URL and token it holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Echo it back in [`Event::Response`].
    pub id: u64,
    /// Method.
    pub method: Method,
    /// Path under the server URL.
    pub path: String,
    /// JSON body.
    pub body: String,
    /// Abort after this many ms.
    pub timeout_ms: i64,
    /// What it carries: echoed back in [`Event::Response`], so an answer is
    /// matched to its request by id *and* items.
    pub items: InFlightItems,
}

/// What storage must be told so it holds the state as the engine does: the
/// parts that changed since the last acknowledged persist, and nothing else.
///
/// The snapshot is kept in three kinds of part: the small part (everything
/// but the outbox and the dead letters), the dead-letter queue, and the
/// outbox's items one by one. How a store lays them out in keys is its own
/// business (crates/driver/src/store.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "write the changes, then call Engine::persisted: no request is released before"]
pub struct Changes {
    /// The small part as JSON, when it changed.
    pub meta: Option<String>,
    /// The dead-letter queue as JSON, when it changed.
    pub dead: Option<String>,
    /// The outbox items written or removed; read their values from
    /// [`super::Engine::outbox`] (an item no longer there was removed).
    pub items: BTreeSet<ItemKey>,
}

impl Changes {
    /// Whether storage is already up to date.
    pub fn is_empty(&self) -> bool {
        self.meta.is_none() && self.dead.is_none() && self.items.is_empty()
    }
}

/// What the shell must do, in the order [`super::Engine::poll_effect`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an effect is an instruction: ignoring it loses data or a request"]
pub enum Effect {
    /// Write these changes, then call [`super::Engine::persisted`]. Until
    /// then the engine releases nothing more: no request leaves unsaved.
    Persist(Changes),
    /// Make this request and feed the result back as [`Event::Response`].
    Send(Request),
    /// Show this status (badge, popup).
    Notify(Box<Status>),
}

/// What the content script should hold for its beacon: the session's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconPreview {
    /// The session as of `now` (not ended).
    pub session: SessionRecord,
    /// Its activities not yet acknowledged.
    pub activities: Vec<Activity>,
}

/// A content script's activity id: 8 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_client_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
