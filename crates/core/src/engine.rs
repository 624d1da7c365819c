//! The engine: `handle` an event at `now`, then `poll_effect` until `None`,
//! and arm a wake-up at `poll_timeout` (quinn-proto's shape).
//!
//! Effects come out in a fixed order — `Persist` before any `Send` — so the
//! shell cannot send something it has not saved (docs/ARCHITECTURE.md invariant 1).

use std::collections::HashSet;

use reviewtime_protocol::{
    routes, Activity, ActivityBatch, ActivityKind, BatchAck, PullRef, SessionAck, SessionRecord,
};
use serde::{Deserialize, Serialize};

use crate::batch;
use crate::dead_letter::{DeadLetter, DeadPayload};
use crate::limits;
use crate::outbox::Retry;
use crate::policy::{self, Answer, Decision, History};
use crate::session::{pr_key, PrPage, Report, TabId};
use crate::state::{Auth, Hold, InFlight, InFlightItems, Link, State};
use crate::status::Status;
use crate::UnixMillis;

/// A content script's activity id: 8 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_client_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How often an open session's progress is sent.
const PROGRESS_REPORT_MS: i64 = 5 * 60_000;

/// Most queued activities a beacon preview carries.
pub const BEACON_ACTIVITIES: usize = 25;

/// How long a closed tab's id is remembered, to refuse its late messages.
const CLOSED_TAB_MEMORY_MS: i64 = 10 * 60_000;

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

/// Everything that can happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
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
    /// Chrome or the page says `tab` shows `page` (a PR, or `None` for any
    /// other page), without saying anything of visibility or focus: a tab
    /// the worker lost track of, found again through a message's sender.
    Shows {
        /// The tab.
        tab: TabId,
        /// The pull request, or `None`.
        page: Option<PrPage>,
    },
    /// A new browser run (the browser started, or restarted after a quit or
    /// crash): sessions of the last run end at their last confirmed moment,
    /// and tab ids, focus and idle state are forgotten.
    BrowserStarted,
    /// A new service-worker life: a request the last one had in flight died
    /// with it (Chrome ends a stopped worker's fetches), so its marker is
    /// dropped at once rather than at its expiry; its items are sent again
    /// and the server keeps each once.
    WorkerStarted,
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
    /// The active tab of the focused window, from Chrome (`tabs.onActivated`,
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
    /// An input was refused as malformed or out of place (counted for the popup).
    Rejected,
    /// The 1-minute alarm: flush everything due, probe the network.
    Alarm,
    /// A wake-up the engine asked for.
    Tick,
    /// The browser is online again.
    Online,
    /// The browser went offline.
    Offline,
    /// Credentials were (re-)entered.
    SignedIn,
    /// Credentials were removed.
    SignedOut,
    /// The user asked to sync now.
    SyncNow,
    /// A request finished.
    Response {
        /// The request's id.
        request_id: u64,
        /// The request's items ([`Request::items`]).
        items: InFlightItems,
        /// How it ended.
        result: HttpResult,
    },
    /// Retry dead letters (one, or all when `id` is `None`): back to the outbox, attempts reset.
    RetryDead {
        /// Which.
        id: Option<String>,
    },
    /// Discard dead letters (one, or all when `id` is `None`).
    DiscardDead {
        /// Which.
        id: Option<String>,
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

/// What the shell must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
#[must_use]
pub enum Effect {
    /// Save [`Engine::state`] now, before anything else.
    Persist,
    /// Make this request and feed the result back as [`Event::Response`].
    Send(Request),
    /// Wake the engine with [`Event::Tick`] at this time (the 1-minute alarm stays as the safety net).
    Wake {
        /// When.
        at: UnixMillis,
    },
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

/// The sync engine over one [`State`].
#[derive(Debug)]
pub struct Engine {
    state: State,
    persist: bool,
    send: Option<Request>,
    wake: Option<UnixMillis>,
    /// The status is computed once, when the effect is polled, not per event.
    notify: Option<UnixMillis>,
    /// The latest `now` seen: times are checked against the clock when the
    /// state is loaded and whenever the clock reads earlier than before.
    seen: Option<UnixMillis>,
}

impl Engine {
    /// An engine over a loaded snapshot.
    pub fn new(state: State) -> Self {
        Engine {
            state,
            persist: false,
            send: None,
            wake: None,
            notify: None,
            seen: None,
        }
    }

    /// The snapshot to persist.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Gives the snapshot back.
    pub fn into_state(self) -> State {
        self.state
    }

    /// The status at `now`.
    pub fn status(&self, now: UnixMillis) -> Status {
        Status::of(&self.state, now)
    }

    /// Feeds one event at `now`.
    pub fn handle(&mut self, event: Event, now: UnixMillis) {
        self.settle(now);
        match event {
            Event::Page {
                tab,
                page,
                visible,
                focused,
            } => self.on_page(tab, page, visible, focused, now),
            Event::Shows { tab, page } => {
                if !self.tab_closed(tab) {
                    let mut reviews = std::mem::take(&mut self.state.reviews);
                    let reports = reviews.shows(tab, page, now, &mut || self.next_id("s"));
                    self.state.reviews = reviews;
                    self.queue_reports(reports, now);
                }
            }
            Event::WorkerStarted => {
                if self.state.in_flight.take().is_some() {
                    self.state.abandoned_requests += 1;
                }
            }
            Event::BrowserStarted => {
                let reports = self.state.reviews.new_browser_run();
                self.queue_reports(reports, now);
            }
            Event::UserInput { tab } => self.state.reviews.input(tab, now),
            Event::Activity {
                tab,
                kind,
                client_id,
                at,
            } => self.on_activity(tab, kind, client_id, at, now),
            Event::TabClosed { tab } => {
                let reports = self.state.reviews.tab_closed(tab, now);
                self.queue_reports(reports, now);
            }
            Event::Idle { state } => {
                let reports = self.state.reviews.idle(state != IdleState::Active, now);
                self.queue_reports(reports, now);
            }
            Event::WindowFocus { tab } => {
                let reports = self.state.reviews.front(tab, now);
                self.queue_reports(reports, now);
            }
            Event::Alarm => {
                self.refresh_open_sessions(now);
                self.state.flush_requested = true;
                self.probe_now(now);
            }
            Event::Tick => {}
            Event::OpenTabs { tabs, listed_at } => {
                let reports = self.state.reviews.open_tabs(&tabs, listed_at, now);
                self.queue_reports(reports, now);
            }
            Event::Rejected => self.state.rejected_inputs += 1,
            Event::Online => {
                self.state.link = Link::Online;
                self.state.flush_requested = true;
            }
            Event::Offline => {
                self.state.link = Link::Offline;
            }
            Event::SignedIn => {
                self.state.auth = Auth::Ready;
                self.state.flush_requested = true;
                self.probe_now(now);
            }
            Event::SignedOut => self.state.auth = Auth::Unpaired,
            Event::SyncNow => {
                self.state.flush_requested = true;
                self.probe_now(now);
                // One request checks a refused token again.
                if let Auth::Rejected { recheck_at, .. } = &mut self.state.auth {
                    *recheck_at = now;
                }
                self.state
                    .outbox
                    .edit_retries(|r| r.retry_at = r.retry_at.min(now));
            }
            Event::Response {
                request_id,
                items,
                result,
            } => self.on_response(request_id, &items, result, now),
            Event::RetryDead { id } => self.retry_dead(id.as_deref(), now),
            Event::DiscardDead { id } => {
                self.state.dead.take(id.as_deref());
            }
        }
        self.start_request(now);
        self.persist = true;
        self.wake = self.poll_timeout();
        self.notify = Some(now);
    }

    /// The next effect to perform; `None` when done.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        if std::mem::take(&mut self.persist) {
            return Some(Effect::Persist);
        }
        if let Some(r) = self.send.take() {
            return Some(Effect::Send(r));
        }
        if let Some(at) = self.wake.take() {
            return Some(Effect::Wake { at });
        }
        let at = self.notify.take()?;
        Some(Effect::Notify(Box::new(self.status(at))))
    }

    /// When the engine next needs a [`Event::Tick`]: a flush or retry falling
    /// due, an idle session to end, an in-flight request to presume lost.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let st = &self.state;
        let idle = st.reviews.next_deadline(st.config.idle_limit_ms);
        let in_flight = st.in_flight.as_ref().map(|f| f.expires_at);
        let send = if st.in_flight.is_none() {
            self.next_send_at()
        } else {
            None
        };
        [idle, in_flight, send].into_iter().flatten().min()
    }

    /// The session in `tab` as of `now`, for the content script's beacon: a
    /// progress record, never an end. A session belongs to its PR, and the
    /// page cannot know whether another tab still shows it; the worker ends
    /// it (on `tabs.onRemoved`, which wakes it, or at the next alarm).
    pub fn beacon_preview(&self, tab: TabId, now: UnixMillis) -> Option<BeaconPreview> {
        let mut s = self.state.reviews.session_of(tab)?.clone();
        s.set_active(false, now);
        let session = s.record(now, false);
        // The newest few activities ride along.
        // The rest stay persisted in the outbox and go with the worker's next sync,
        // so a burst costs every reply O(1), not O(queue).
        let mut activities: Vec<Activity> = self
            .state
            .outbox
            .activities()
            .iter()
            .rev()
            .filter(|a| a.activity.session_id == s.id)
            .take(BEACON_ACTIVITIES)
            .map(|a| a.activity.clone())
            .collect();
        activities.reverse();
        Some(BeaconPreview {
            session,
            activities,
        })
    }

    /// The dead-letter queue as JSON, for export.
    pub fn export_dead_letters(&self) -> String {
        #[derive(Serialize)]
        struct Export<'a> {
            dead_letters: &'a std::collections::VecDeque<DeadLetter>,
            evicted: u64,
            evicted_items: u64,
        }
        serde_json::to_string_pretty(&Export {
            dead_letters: &self.state.dead.entries,
            evicted: self.state.dead.evicted,
            evicted_items: self.state.dead.evicted_items,
        })
        .unwrap_or_default()
    }

    // ---- sessions ----

    fn next_id(&mut self, prefix: &str) -> String {
        self.state.next_seq += 1;
        format!(
            "{}-{prefix}{:x}",
            self.state.install_id, self.state.next_seq
        )
    }

    /// Ends sessions idle past the limit (at their last sign of the user) and
    /// forgets an in-flight marker past its expiry.
    fn settle(&mut self, now: UnixMillis) {
        if self.seen.is_none_or(|t| now < t) {
            self.clamp_times(now);
        }
        self.seen = Some(now);
        if self.state.hold.as_ref().is_some_and(|h| h.until <= now) {
            self.state.hold = None;
        }
        let limit = self.state.config.idle_limit_ms;
        let reports = self.state.reviews.settle(now, limit, CLOSED_TAB_MEMORY_MS);
        self.queue_reports(reports, now);
        if self
            .state
            .in_flight
            .as_ref()
            .is_some_and(|f| f.expires_at <= now)
        {
            self.state.in_flight = None;
            self.state.abandoned_requests += 1;
        }
    }

    /// A clock that went back (or a snapshot from a machine whose clock ran
    /// ahead) must not hold anything: each time further in the future than
    /// its policy allows is brought back within it, once per load.
    fn clamp_times(&mut self, now: UnixMillis) {
        let cfg = &self.state.config;
        let flight_limit = now + cfg.request_timeout_ms + cfg.in_flight_grace_ms;
        if self
            .state
            .in_flight
            .as_ref()
            .is_some_and(|f| f.started_at > now || f.expires_at > flight_limit)
        {
            self.state.in_flight = None;
            self.state.abandoned_requests += 1;
        }
        let probe_limit = now + cfg.probe_cap_ms;
        if let Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. } =
            &mut self.state.link
        {
            *probe_at = (*probe_at).min(probe_limit);
        }
        if let Auth::Rejected { recheck_at, .. } = &mut self.state.auth {
            *recheck_at = (*recheck_at).min(now + cfg.auth_recheck_ms);
        }
        if let Some(hold) = &mut self.state.hold {
            if hold.since > now {
                // Asked before a clock that now reads earlier: the wait asked for, from now.
                hold.until = now + (hold.until - hold.since).clamp(0, cfg.max_retry_after_ms);
                hold.since = now;
            }
            hold.until = hold.until.min(now + cfg.max_retry_after_ms);
        }
        // An item's own wait is its backoff (a server's longer ask is the hold).
        let backoff = cfg.backoff;
        self.state
            .outbox
            .clamp_times(now, |attempts| now + backoff.ceiling(attempts));
    }

    fn on_page(
        &mut self,
        tab: TabId,
        page: Option<PrPage>,
        visible: bool,
        focused: bool,
        now: UnixMillis,
    ) {
        if self.tab_closed(tab) {
            return;
        }
        // A switch between the PR's views (Conversation, Files…) is an activity.
        let switched = page.as_ref().and_then(|p| {
            let before = self.state.reviews.sessions.get(&pr_key(&p.pr))?;
            (p.tab.is_some() && p.tab != before.view)
                .then_some(p.tab)
                .flatten()
        });
        let mut reviews = std::mem::take(&mut self.state.reviews);
        let reports = reviews.page(tab, page, visible, focused, now, &mut || self.next_id("s"));
        self.state.reviews = reviews;
        self.queue_reports(reports, now);
        if let Some(view) = switched {
            self.on_activity(
                tab,
                ActivityKind::TabSwitched { tab: view },
                None,
                None,
                now,
            );
        }
    }

    fn queue_reports(&mut self, reports: Vec<Report>, now: UnixMillis) {
        for r in reports {
            let ended = r.record.ended_at.is_some();
            self.queue_session(r.record, now, r.urgent);
            if ended {
                // The session's actions go along with its end.
                self.state.flush_requested = true;
            }
        }
    }

    /// The outbox items changed since the last call, for a shell that stores
    /// items one by one ([`crate::outbox::Outbox::take_changes`]).
    pub fn take_outbox_changes(&mut self) -> std::collections::BTreeSet<crate::outbox::ItemKey> {
        self.state.outbox.take_changes()
    }

    /// The snapshot, for a shell that stores it in parts (it moves the outbox
    /// and dead letters out and back while it writes the rest).
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// A report from a tab already closed in this browser run (its last message
    /// raced the close) is refused: it would open a session no close will end.
    /// Chrome does not reuse tab ids within a run; across runs it does, and a
    /// new run forgets them ([`Event::BrowserStarted`]).
    fn tab_closed(&mut self, tab: TabId) -> bool {
        let closed = self.state.reviews.closed(tab);
        if closed {
            self.state.rejected_inputs += 1;
        }
        closed
    }

    fn on_activity(
        &mut self,
        tab: TabId,
        kind: ActivityKind,
        client_id: Option<String>,
        at: Option<UnixMillis>,
        now: UnixMillis,
    ) {
        self.state.reviews.input(tab, now);
        let Some((session_id, started_at, pr)) = self
            .state
            .reviews
            .session_of(tab)
            .map(|s| (s.id.clone(), s.started_at, s.pr.clone()))
        else {
            self.state.rejected_inputs += 1;
            return;
        };
        let id = match client_id {
            Some(id) if valid_client_id(&id) => {
                if self.state.outbox.contains_activity(&id) {
                    return; // a repeat of a message already recorded
                }
                id
            }
            Some(_) => {
                self.state.rejected_inputs += 1;
                return;
            }
            None => self.next_id("a"),
        };
        // A content script's clock is trusted only within the session and up to now.
        let at = at.filter(|t| (started_at..=now).contains(t)).unwrap_or(now);
        self.queue_activity(
            Activity {
                id,
                session_id,
                at,
                kind,
            },
            Some(pr),
            now,
        );
    }

    /// Queues a session state; refused (and counted, shown in the popup) only
    /// when the outbox is full and the session is not already queued.
    fn queue_session(&mut self, record: SessionRecord, now: UnixMillis, urgent: bool) {
        let cap = self.state.config.max_outbox_sessions;
        if self
            .state
            .outbox
            .queue_session(record, now, cap, urgent)
            .is_err()
        {
            self.state.refused_sessions += 1;
            self.state.last_error = Some(format!(
                "the sync queue is full ({cap} sessions waiting): newer sessions are not recorded"
            ));
        }
    }

    /// Queues an activity, made to fit the protocol's limits first (an
    /// over-long or multi-line path is shortened or escaped, with a marker);
    /// one that cannot fit is dead-lettered alone, with the reason, rather
    /// than sinking a batch. Refused and counted when the outbox is full.
    fn queue_activity(&mut self, activity: Activity, pr: Option<PullRef>, now: UnixMillis) {
        let activity = match limits::fit(activity) {
            Ok(a) => a,
            Err((activity, reason)) => {
                self.dead_letter(
                    DeadPayload::activities(vec![(activity, pr)]),
                    None,
                    format!("not sent: {reason}"),
                    0,
                    now,
                );
                return;
            }
        };
        let cap = self.state.config.max_outbox_activities;
        if self
            .state
            .outbox
            .queue_activity(activity, pr, now, cap)
            .is_err()
        {
            self.state.refused_activities += 1;
            self.state.last_error = Some(format!(
                "the sync queue is full ({cap} review actions waiting): newer actions are not recorded"
            ));
        }
    }

    /// Sessions in progress report their wall and active time to the dashboard
    /// every few minutes; their start and end go at once anyway.
    fn refresh_open_sessions(&mut self, now: UnixMillis) {
        let mut records = Vec::new();
        for s in self.state.reviews.sessions.values_mut() {
            if now - s.reported_at >= PROGRESS_REPORT_MS {
                s.reported_at = now;
                records.push(s.record(now, false));
            }
        }
        for r in records {
            self.queue_session(r, now, false);
        }
    }

    // ---- sending ----

    fn probe_now(&mut self, now: UnixMillis) {
        match &mut self.state.link {
            Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. } => {
                *probe_at = (*probe_at).min(now)
            }
            // An alarm or sign-in while "offline" probes: if the browser's online
            // event was missed while the worker slept, this recovers; if it is
            // still offline, the probe costs no attempt.
            link @ Link::Offline => {
                *link = Link::Unreachable {
                    probe_at: now,
                    failures: 0,
                }
            }
            Link::Online => {}
        }
    }

    /// The earliest time anything may be sent, whatever waits: the link,
    /// the credentials and the server's hold must all allow it; `None` while
    /// nothing but an outside event (online, sign-in) can.
    fn gate(&self) -> Option<UnixMillis> {
        let st = &self.state;
        let auth = match st.auth {
            Auth::Ready => i64::MIN,
            // One request checks a refused token again, now and then.
            Auth::Rejected { recheck_at, .. } => recheck_at,
            Auth::Unpaired => return None,
        };
        let link = match st.link {
            Link::Online => i64::MIN,
            Link::Offline => return None,
            Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. } => probe_at,
        };
        let hold = st.hold.as_ref().map_or(i64::MIN, |h| h.until);
        Some(auth.max(link).max(hold))
    }

    fn may_send(&self, now: UnixMillis) -> bool {
        self.gate().is_some_and(|at| at <= now)
    }

    /// When something becomes sendable, ignoring the in-flight marker.
    ///
    /// A session end is due at once; another session state, and the batch of
    /// activities, once its oldest item has waited the flush delay for company
    /// (at once when a flush was asked for, the batch is full, or it is a retry).
    fn next_send_at(&self) -> Option<UnixMillis> {
        let st = &self.state;
        if st.outbox.is_empty() {
            return None;
        }
        let gate = self.gate()?;
        let sessions = st.outbox.sessions().iter().map(|p| {
            if p.urgent {
                p.retry.retry_at
            } else {
                self.due_at(p.queued_at, &p.retry, false)
            }
        });
        let full = st.outbox.activities().len() >= st.batch_cap;
        let acts = st
            .outbox
            .activities()
            .iter()
            .map(|a| self.due_at(a.queued_at, &a.retry, full));
        sessions.chain(acts).min().map(|t| t.max(gate))
    }

    /// When an item queued at `queued_at` may leave.
    fn due_at(&self, queued_at: UnixMillis, retry: &Retry, full: bool) -> UnixMillis {
        if self.state.flush_requested || full || retry.attempts > 0 {
            retry.retry_at
        } else {
            retry
                .retry_at
                .max(queued_at.saturating_add(self.state.config.flush_delay_ms))
        }
    }

    fn start_request(&mut self, now: UnixMillis) {
        if self.state.in_flight.is_some() || !self.may_send(now) {
            return;
        }
        if self.next_send_at().is_none_or(|at| at > now) {
            if self.state.outbox.is_empty() {
                self.state.flush_requested = false;
            }
            return;
        }
        // Session ends first, then other session states, then activities.
        let sessions = self.state.outbox.sessions();
        let session = sessions
            .iter()
            .find(|p| p.urgent && p.record.ended_at.is_some() && p.retry.retry_at <= now)
            .or_else(|| {
                sessions
                    .iter()
                    .find(|p| p.urgent && p.retry.retry_at <= now)
            })
            .or_else(|| {
                sessions
                    .iter()
                    .find(|p| self.due_at(p.queued_at, &p.retry, false) <= now)
            })
            .map(|p| p.record.clone());
        if let Some(record) = session {
            let body = serde_json::to_string(&record).unwrap_or_default();
            let items = InFlightItems::Session {
                id: record.id.clone(),
                revision: record.revision,
            };
            self.launch(
                Method::Put,
                format!("{}/{}", routes::SESSIONS, record.id),
                body,
                items,
                now,
            );
            if self.state.outbox.activities().is_empty() {
                self.state.flush_requested = false;
            }
            return;
        }
        let activities = self.state.outbox.activities();
        let full = activities.len() >= self.state.batch_cap;
        if !activities
            .iter()
            .any(|a| self.due_at(a.queued_at, &a.retry, full) <= now)
        {
            return;
        }
        // The batch is due: every item not backing off goes with it, whenever it was queued.
        let ready: Vec<usize> = activities
            .iter()
            .enumerate()
            .filter(|(_, a)| a.retry.retry_at <= now)
            .map(|(i, _)| i)
            .collect();
        let sizes = ready.iter().map(|&i| activities[i].size);
        let n = batch::cut(
            sizes,
            self.state.batch_cap,
            self.state.config.max_batch_bytes,
        );
        if n == 0 {
            // The first ready item can never fit in any request.
            if let Some(item) = self.state.outbox.remove_activity_at(ready[0]) {
                let reason = format!(
                    "activity is {} bytes, larger than any request may be",
                    item.size
                );
                self.dead_letter(
                    DeadPayload::activities(vec![(item.activity, item.pr)]),
                    None,
                    reason,
                    item.retry.attempts,
                    now,
                );
            }
            return self.start_request(now);
        }
        let batch: Vec<Activity> = ready[..n]
            .iter()
            .map(|&i| activities[i].activity.clone())
            .collect();
        // The flush asked for is sent once no ready item is left behind.
        if n == ready.len() {
            self.state.flush_requested = false;
        }
        let ids = batch.iter().map(|a| a.id.clone()).collect();
        let body = serde_json::to_string(&ActivityBatch { activities: batch }).unwrap_or_default();
        self.launch(
            Method::Post,
            routes::ACTIVITIES_BATCH.to_string(),
            body,
            InFlightItems::Batch { ids },
            now,
        );
    }

    fn launch(
        &mut self,
        method: Method,
        path: String,
        body: String,
        items: InFlightItems,
        now: UnixMillis,
    ) {
        let id = self.state.next_request_id;
        self.state.next_request_id += 1;
        let timeout_ms = self.state.config.request_timeout_ms;
        if let Auth::Rejected { recheck_at, .. } = &mut self.state.auth {
            // This request re-checks the token; the next one waits its turn.
            *recheck_at = now + self.state.config.auth_recheck_ms;
        }
        self.state.in_flight = Some(InFlight {
            request_id: id,
            items: items.clone(),
            started_at: now,
            expires_at: now + timeout_ms + self.state.config.in_flight_grace_ms,
        });
        self.send = Some(Request {
            id,
            method,
            path,
            body,
            timeout_ms,
            items,
        });
    }

    // ---- responses ----

    fn on_response(
        &mut self,
        request_id: u64,
        items: &InFlightItems,
        result: HttpResult,
        now: UnixMillis,
    ) {
        let Some(flight) = self
            .state
            .in_flight
            .take_if(|f| f.request_id == request_id && f.items == *items)
        else {
            // An answer to a request presumed lost: its items are still queued and
            // will be sent again; the server's deduplication absorbs the repeat.
            return;
        };
        let items = flight.items;
        let answer = policy::classify(result, &items, &self.state.config, now);
        let history = History {
            items: items.len(),
            most_tried: self.most_tried(&items),
            probe_failures: match self.state.link {
                Link::Unreachable { failures, .. } | Link::NotApi { failures, .. } => failures,
                _ => 0,
            },
        };
        let decision = policy::decide(
            &answer,
            history,
            &self.state.config,
            now,
            &mut self.state.rng,
        );
        // A server answered: the link is up, unless what answered is not the API.
        if !matches!(
            answer,
            Answer::Offline | Answer::Unreachable { .. } | Answer::Timeout | Answer::NotApi { .. }
        ) {
            self.state.link = Link::Online;
        }
        // Only ReviewTime's own answer past authentication proves the token.
        if matches!(
            answer,
            Answer::Session(_) | Answer::Batch(_) | Answer::Refused { .. }
        ) && matches!(self.state.auth, Auth::Rejected { .. })
        {
            self.state.auth = Auth::Ready;
        }
        let (status, reason) = answer_words(&answer);
        match decision {
            Decision::Delivered => match answer {
                Answer::Session(ack) => self.session_delivered(&items, ack, now),
                Answer::Batch(ack) => self.batch_delivered(&items, &ack, now),
                _ => {}
            },
            Decision::WaitOnline => self.state.link = Link::Offline,
            Decision::Probe { probe_at, failures } => {
                self.state.link = match answer {
                    Answer::NotApi { detail } => Link::NotApi {
                        probe_at,
                        failures,
                        detail,
                    },
                    _ => Link::Unreachable { probe_at, failures },
                };
                self.state.last_error = Some(reason);
            }
            Decision::Retry { retry_at } => self.fail_items(&items, retry_at, status, reason, now),
            Decision::Hold { until, retry_at } => {
                self.state.hold = Some(Hold { since: now, until });
                // The items back off as any failure does; the hold gates every request.
                self.fail_items(&items, retry_at, status, reason, now);
            }
            Decision::SignedOut { recheck_at } => {
                let since = match self.state.auth {
                    Auth::Rejected { since, .. } => since,
                    _ => now,
                };
                self.state.auth = Auth::Rejected {
                    since,
                    status: status.unwrap_or(401),
                    recheck_at,
                };
                self.state.last_error = Some(reason);
            }
            Decision::Split { cap, bisect } => {
                self.state.batch_cap = cap.max(1);
                self.state.bisecting |= bisect;
                self.state.flush_requested = true;
            }
            Decision::DeadLetter => {
                if matches!(items, InFlightItems::Batch { .. }) {
                    // The refused item is found: batches grow back.
                    self.state.bisecting = false;
                    self.state.batch_cap = self.state.config.max_batch_items;
                }
                self.permanent(&items, status, reason, now);
            }
        }
    }

    /// Failed attempts of the request's most-tried item.
    fn most_tried(&self, items: &InFlightItems) -> u32 {
        match items {
            InFlightItems::Session { id, .. } => self
                .state
                .outbox
                .session(id)
                .map_or(0, |p| p.retry.attempts),
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                self.state
                    .outbox
                    .activities()
                    .iter()
                    .filter(|a| sent.contains(a.activity.id.as_str()))
                    .map(|a| a.retry.attempts)
                    .max()
                    .unwrap_or(0)
            }
        }
    }

    fn session_delivered(&mut self, items: &InFlightItems, ack: SessionAck, now: UnixMillis) {
        let InFlightItems::Session { id, revision } = items else {
            return;
        };
        let sent = self
            .state
            .outbox
            .session(id)
            .filter(|p| p.record.revision == *revision)
            .map(|p| p.record.clone());
        match sent {
            // The server holds the same revision with other content: a
            // divergence to show, not to hide.
            Some(sent) if ack.session.revision == sent.revision && ack.session != sent => {
                self.state.outbox.remove_session(id);
                self.dead_letter(
                    DeadPayload::Conflict {
                        sent,
                        stored: ack.session,
                    },
                    Some(409),
                    "conflict: the server holds this session, at the same revision, with other times"
                        .into(),
                    1,
                    now,
                );
            }
            // A newer revision queued meanwhile stays.
            _ => self
                .state
                .outbox
                .edit_session(id, |p| p.record.revision > *revision),
        }
        self.delivered(now);
    }

    fn batch_delivered(&mut self, items: &InFlightItems, ack: &BatchAck, now: UnixMillis) {
        let InFlightItems::Batch { ids } = items else {
            return;
        };
        let mut refused: Vec<(&str, u16, String)> = ack
            .conflicts
            .iter()
            .map(|c| (c.id.as_str(), 409, format!("conflict: {}", c.reason)))
            .collect();
        refused.extend(
            ack.rejected
                .iter()
                .map(|r| (r.id.as_str(), 400, format!("{} ({})", r.reason, r.code))),
        );
        let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut failed = Vec::new();
        self.state.outbox.edit_activities(&sent, |a| {
            if let Some((_, status, reason)) =
                refused.iter().find(|(id, _, _)| *id == a.activity.id)
            {
                failed.push((a.clone(), *status, reason.clone()));
            }
            false
        });
        // One bad item is one failed sync.
        for (a, status, reason) in failed {
            self.dead_letter(
                DeadPayload::activities(vec![(a.activity, a.pr)]),
                Some(status),
                reason,
                a.retry.attempts + 1,
                now,
            );
        }
        if !self.state.bisecting {
            self.state.batch_cap =
                (self.state.batch_cap * 2).min(self.state.config.max_batch_items);
        } else if self.state.outbox.activities().is_empty() {
            // Nothing left to search: what was refused passed item by item.
            self.state.bisecting = false;
            self.state.batch_cap = self.state.config.max_batch_items;
        }
        self.delivered(now);
    }

    fn delivered(&mut self, now: UnixMillis) {
        self.state.last_success_at = Some(now);
        if self.state.dead.entries.is_empty() {
            self.state.last_error = None;
        }
    }

    /// The items count one failed attempt and wait until `retry_at`; those
    /// past the attempt and age limits move to the dead-letter queue.
    fn fail_items(
        &mut self,
        items: &InFlightItems,
        retry_at: UnixMillis,
        status: Option<u16>,
        reason: String,
        now: UnixMillis,
    ) {
        let cfg = self.state.config.clone();
        let mut give_up = Vec::new();
        let fail = |retry: &mut Retry| -> bool {
            retry.attempts += 1;
            let first = *retry.first_failure_at.get_or_insert(now);
            retry.last_error = Some(reason.clone());
            retry.last_status = status;
            if policy::give_up(retry.attempts, first, &cfg, now) {
                return true;
            }
            retry.retry_at = retry_at;
            false
        };
        match items {
            InFlightItems::Session { id, .. } => {
                let mut dead = None;
                self.state.outbox.edit_session(id, |p| {
                    if fail(&mut p.retry) {
                        dead = Some((
                            DeadPayload::Session {
                                record: p.record.clone(),
                            },
                            p.retry.attempts,
                        ));
                        return false;
                    }
                    true
                });
                give_up.extend(dead);
            }
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                let mut dead = Vec::new();
                let mut attempts = 0;
                self.state.outbox.edit_activities(&sent, |a| {
                    if fail(&mut a.retry) {
                        attempts = attempts.max(a.retry.attempts);
                        dead.push((a.activity.clone(), a.pr.clone()));
                        return false;
                    }
                    true
                });
                if !dead.is_empty() {
                    give_up.push((DeadPayload::activities(dead), attempts));
                }
            }
        }
        self.state.last_error = Some(reason.clone());
        for (payload, attempts) in give_up {
            self.dead_letter(
                payload,
                status,
                format!("gave up after {attempts} attempts: {reason}"),
                attempts,
                now,
            );
        }
    }

    fn permanent(
        &mut self,
        items: &InFlightItems,
        status: Option<u16>,
        reason: String,
        now: UnixMillis,
    ) {
        match items {
            InFlightItems::Session { id, revision } => {
                let Some(p) = self.state.outbox.session(id) else {
                    return;
                };
                if p.record.revision > *revision {
                    // A newer state is queued; it may well succeed. Only the sent revision failed.
                    return;
                }
                let Some(p) = self.state.outbox.remove_session(id) else {
                    return;
                };
                self.dead_letter(
                    DeadPayload::Session { record: p.record },
                    status,
                    reason,
                    p.retry.attempts + 1,
                    now,
                );
            }
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                let mut dead = Vec::new();
                let mut attempts = 0;
                self.state.outbox.edit_activities(&sent, |a| {
                    attempts = attempts.max(a.retry.attempts + 1);
                    dead.push((a.activity.clone(), a.pr.clone()));
                    false
                });
                if !dead.is_empty() {
                    self.dead_letter(DeadPayload::activities(dead), status, reason, attempts, now);
                }
            }
        }
    }

    fn dead_letter(
        &mut self,
        payload: DeadPayload,
        status: Option<u16>,
        reason: String,
        attempts: u32,
        now: UnixMillis,
    ) {
        let entry = DeadLetter {
            id: String::new(),
            failed_at: now,
            status,
            reason: reason.clone(),
            attempts,
            payload,
        };
        let evicted = self
            .state
            .dead
            .push(entry, self.state.config.dead_letter_cap);
        self.state.last_error = Some(if evicted > 0 {
            format!("{reason} (the failed-sync list is full: {evicted} oldest entries dropped)")
        } else {
            reason
        });
    }

    fn retry_dead(&mut self, id: Option<&str>, now: UnixMillis) {
        for entry in self.state.dead.take(id) {
            match entry.payload {
                DeadPayload::Session { record } => self.queue_session(record, now, true),
                DeadPayload::Activities { items, prs } => {
                    for a in items {
                        if !self.state.outbox.contains_activity(&a.id) {
                            let pr = prs.get(&a.session_id).cloned();
                            self.queue_activity(a, pr, now);
                        }
                    }
                }
                // Nothing to send (a conflict sent again conflicts again): it
                // stays for the user to export or discard.
                payload @ (DeadPayload::Unreadable { .. } | DeadPayload::Conflict { .. }) => {
                    let entry = DeadLetter { payload, ..entry };
                    self.state.dead.restore(entry);
                }
            }
        }
        self.state.flush_requested = true;
        self.probe_now(now);
    }
}

/// The status and the words an answer comes with, for the popup and the
/// failed-sync list.
fn answer_words(answer: &Answer) -> (Option<u16>, String) {
    match answer {
        Answer::Session(_) | Answer::Batch(_) => (Some(200), String::new()),
        Answer::Offline => (None, "the browser is offline".into()),
        Answer::Unreachable { message } => (None, format!("cannot reach the server: {message}")),
        Answer::Timeout => (None, "the server did not answer in time".into()),
        Answer::NotApi { detail } => (None, detail.clone()),
        Answer::Unreadable { status } => (
            Some(*status),
            format!("the server's answer could not be read (HTTP {status}); it is sent again, and the server keeps each item once"),
        ),
        Answer::Throttled { status, reason, .. }
        | Answer::ServerError { status, reason }
        | Answer::Auth { status, reason }
        | Answer::Refused { status, reason } => (Some(*status), reason.clone()),
        Answer::TooLarge { reason } => (Some(413), reason.clone()),
    }
}
