//! The engine: one [`State`] and the commit in progress over it, in
//! quinn-proto's shape (`handle_*` for inputs, `poll_*` for outputs,
//! `poll_timeout` for the one deadline).
//!
//! # The contract
//! A shell drives the engine in commits. One commit is:
//! 1. any number of inputs: [`Engine::handle`] for what the browser and the
//!    network say, and the command methods ([`Engine::sync_now`],
//!    [`Engine::retry_dead`], …) for what the user or the shell decided,
//!    each with the time it happens at;
//! 2. [`Engine::poll_effect`] until it returns `None`. The first effect of a
//!    commit that handled anything is always [`Effect::Persist`]; after it,
//!    `poll_effect` returns `None` until the shell has written those changes
//!    and called [`Engine::persisted`]. Only then come the commit's
//!    [`Effect::Send`]s and its [`Effect::Notify`];
//! 3. a wake-up armed at [`Engine::poll_timeout`], fed back as [`Event::Tick`]
//!    (the 1-minute alarm stays as the safety net).
//!
//! An input handled after `Persist` was polled but before `persisted` means
//! the write is not known to have happened: its changes are owed again, and
//! nothing is released until the next `Persist` is acknowledged. A shell
//! whose write failed drops the engine and loads the state again from
//! storage. So no request ever leaves with an item storage does not hold
//! (docs/ARCHITECTURE.md invariant 1), whatever the shell does.
//!
//! # Parts
//! - [`io`]: the vocabulary (events, effects, requests, changes);
//! - `presence`: sessions and review actions, from events to the outbox;
//! - `send`: the gate, due times, starting the one request;
//! - `receive`: answers, delivery, failures;
//! - `dead`: the failed-sync list and what the user does with it.

pub mod io;

mod dead;
mod presence;
mod receive;
mod send;

use std::collections::{BTreeSet, VecDeque};

use crate::config::Config;
use crate::outbox::{ItemKey, Outbox};
use crate::session::TabId;
use crate::state::{Auth, Link, State};
use crate::status::Status;
use crate::UnixMillis;

pub use io::{
    valid_client_id, BeaconPreview, Changes, Effect, Event, HttpResult, IdleState, Method, Request,
};

/// Most queued activities a beacon preview carries.
pub const BEACON_ACTIVITIES: usize = 25;

/// How long a closed tab's id is remembered, to refuse its late messages.
const CLOSED_TAB_MEMORY_MS: i64 = 10 * 60_000;

/// What storage holds of the parts stored whole (the small part and the
/// dead-letter queue), so a commit writes them only when they changed.
#[derive(Debug, Clone, Default)]
struct Stored {
    meta: Option<String>,
    /// [`DeadLetters::version`] of the queue storage holds.
    dead: Option<(u64, u64, usize)>,
}

/// Where the commit in progress stands.
#[derive(Debug, Default)]
enum Phase {
    /// Nothing handled since the last commit ended.
    #[default]
    Idle,
    /// Inputs handled; the next effect is their `Persist`.
    Handled,
    /// `Persist` given out, not yet acknowledged: nothing is released.
    Persisting {
        /// What storage will hold once it is acknowledged.
        staged: Stored,
        /// The outbox items it wrote, owed again if it is not acknowledged.
        items: BTreeSet<ItemKey>,
    },
    /// Persisted: the commit's requests and status may go.
    Released,
}

/// The sync engine over one [`State`], kept for a whole worker life.
#[derive(Debug)]
pub struct Engine {
    state: State,
    stored: Stored,
    phase: Phase,
    /// Requests started in this commit, released after its persist.
    sends: VecDeque<Request>,
    /// The status is computed once, when the effect is polled, not per input.
    notify: Option<UnixMillis>,
    /// The latest `now` seen: times are checked against the clock when the
    /// state is loaded and whenever the clock reads earlier than before.
    seen: Option<UnixMillis>,
}

impl Engine {
    /// An engine over a state storage holds none of (a new install): its
    /// first persist writes every part.
    pub fn new(state: State) -> Self {
        Self::loaded(state, None, false)
    }

    /// An engine over a state read from storage: `meta` is the small part's
    /// text as storage holds it, `dead_stored` whether storage holds the
    /// dead-letter queue as loaded. Its outbox items are taken to be stored
    /// except those its journal names.
    pub fn loaded(state: State, meta: Option<String>, dead_stored: bool) -> Self {
        let dead = dead_stored.then(|| state.dead.version());
        Engine {
            state,
            stored: Stored { meta, dead },
            phase: Phase::Idle,
            sends: VecDeque::new(),
            notify: None,
            seen: None,
        }
    }

    // ---- getters ----

    /// The snapshot, read-only.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// What waits to be sent: a store reads the values of
    /// [`Changes::items`] here.
    pub fn outbox(&self) -> &Outbox {
        &self.state.outbox
    }

    /// Whether a session is open in `tab`.
    pub fn tracks(&self, tab: TabId) -> bool {
        self.state.reviews.session_of(tab).is_some()
    }

    /// The status at `now`.
    pub fn status(&self, now: UnixMillis) -> Status {
        Status::of(&self.state, now)
    }

    /// Sets the tunables (code defaults and what the user set); they are not
    /// stored, so new defaults reach existing installs.
    pub fn configure(&mut self, config: Config) {
        self.state.config = config;
    }

    /// Whether a request of an earlier worker life is marked in flight.
    pub fn has_request_in_flight(&self) -> bool {
        self.state.in_flight.is_some()
    }

    /// Whether the user paired this install with a server (credentials present).
    pub fn signed_in(&self) -> bool {
        !matches!(self.state.auth, Auth::Unpaired)
    }

    // ---- inputs ----

    /// Feeds one event that happened at `now`.
    ///
    /// Call it for every event the browser or the network delivers, in the
    /// order they arrive; then poll the commit's effects
    /// ([`Engine::poll_effect`]) before the next commit starts.
    pub fn handle(&mut self, event: Event, now: UnixMillis) {
        self.begin(now);
        match event {
            Event::Page {
                tab,
                page,
                visible,
                focused,
            } => self.on_page(tab, page, visible, focused, now),
            Event::Location { tab, page } => self.on_location(tab, page, now),
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
            Event::OpenTabs { tabs, listed_at } => {
                let reports = self.state.reviews.open_tabs(&tabs, listed_at, now);
                self.queue_reports(reports, now);
            }
            Event::BrowserStarted => {
                let reports = self.state.reviews.new_browser_run();
                self.queue_reports(reports, now);
            }
            Event::WorkerStarted => {
                if self.state.in_flight.take().is_some() {
                    self.state.counters.abandoned_requests += 1;
                }
            }
            Event::Alarm => {
                self.refresh_open_sessions(now);
                self.state.flush_requested = true;
                self.probe_now(now);
            }
            Event::Tick => {}
            Event::Online => {
                self.state.link = Link::Online;
                self.state.flush_requested = true;
            }
            Event::Offline => self.state.link = Link::Offline,
            Event::Response {
                request_id,
                items,
                result,
            } => self.on_response(request_id, &items, result, now),
        }
        self.finish(now);
    }

    /// The user asked to sync now: everything due goes, every backoff ends,
    /// and a refused token is checked again by one request.
    pub fn sync_now(&mut self, now: UnixMillis) {
        self.begin(now);
        self.state.flush_requested = true;
        self.probe_now(now);
        if let Auth::Rejected { recheck_at, .. } = &mut self.state.auth {
            *recheck_at = now;
        }
        self.state
            .outbox
            .edit_retries(|r| r.retry_at = r.retry_at.min(now));
        self.finish(now);
    }

    /// Credentials were saved (or saved again: the same pairing link lifts
    /// an authentication pause, since a 401 from a proxy is not fixed by a
    /// new token): sending resumes at once.
    pub fn sign_in(&mut self, now: UnixMillis) {
        self.begin(now);
        self.state.auth = Auth::Ready;
        self.state.flush_requested = true;
        self.probe_now(now);
        self.finish(now);
    }

    /// Credentials were removed: everything queues, nothing is sent.
    pub fn sign_out(&mut self, now: UnixMillis) {
        self.begin(now);
        self.state.auth = Auth::Unpaired;
        self.finish(now);
    }

    /// The shell refused an input as malformed or out of place; counted for
    /// the popup's diagnostics.
    pub fn rejected_input(&mut self, now: UnixMillis) {
        self.begin(now);
        self.state.counters.rejected_inputs += 1;
        self.finish(now);
    }

    // ---- outputs ----

    /// The next effect of the commit, or `None`.
    ///
    /// Call it after the commit's inputs until it returns `None`. `Persist`
    /// comes first; after it, `None` until [`Engine::persisted`]; then the
    /// requests and the status.
    #[must_use = "effects are instructions: dropping one loses data or a request"]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        match self.phase {
            Phase::Handled => {
                let (changes, staged) = self.changes();
                self.phase = Phase::Persisting {
                    staged,
                    items: changes.items.clone(),
                };
                return Some(Effect::Persist(changes));
            }
            Phase::Persisting { .. } => return None,
            Phase::Idle | Phase::Released => {}
        }
        while let Some(request) = self.sends.pop_front() {
            // A request superseded within the commit (its marker dropped) never leaves.
            if self
                .state
                .in_flight
                .as_ref()
                .is_some_and(|f| f.request_id == request.id)
            {
                return Some(Effect::Send(request));
            }
        }
        let at = self.notify.take()?;
        self.phase = Phase::Idle;
        Some(Effect::Notify(Box::new(self.status(at))))
    }

    /// The shell wrote the changes of the last [`Effect::Persist`]: the
    /// commit's requests are released. Call it only once the write
    /// succeeded; a failed write means dropping the engine and loading
    /// again.
    pub fn persisted(&mut self) {
        if let Phase::Persisting { staged, .. } = std::mem::take(&mut self.phase) {
            self.stored = staged;
            self.phase = Phase::Released;
        }
    }

    /// When the engine next needs an [`Event::Tick`]: a flush or retry
    /// falling due, an idle session to end, an in-flight request to presume
    /// lost. The only deadline channel: arm one timer at it after every
    /// commit (the 1-minute alarm stays as the safety net).
    #[must_use]
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
        // The newest few activities ride along; the rest stay persisted in the
        // outbox and go with the worker's next sync, so a burst costs every
        // reply O(1), not O(queue).
        let mut activities: Vec<_> = self
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

    // ---- the commit ----

    /// Before an input: a persist given out but not acknowledged is owed
    /// again; time moved (sessions may go idle, an in-flight marker expire).
    fn begin(&mut self, now: UnixMillis) {
        if let Phase::Persisting { items, .. } = std::mem::take(&mut self.phase) {
            self.state.outbox.owe(items);
        }
        self.pass_time(now);
    }

    /// After an input: start what may go, and owe a persist and a status.
    fn finish(&mut self, now: UnixMillis) {
        if let Some(request) = self.start_request(now) {
            self.sends.push_back(request);
        }
        self.phase = Phase::Handled;
        self.notify = Some(now);
    }

    /// What storage must be told, and what it will then hold.
    fn changes(&mut self) -> (Changes, Stored) {
        let items = self.state.outbox.take_changes();
        let meta = self.state.small_part_json();
        let dead_version = self.state.dead.version();
        let mut staged = self.stored.clone();
        let meta = (self.stored.meta.as_deref() != Some(meta.as_str())).then(|| {
            staged.meta = Some(meta.clone());
            meta
        });
        // Entries never change once added: the counts say whether the queue did.
        let dead = if self.stored.dead != Some(dead_version) {
            staged.dead = Some(dead_version);
            Some(self.state.dead.to_json())
        } else {
            None
        };
        (Changes { meta, dead, items }, staged)
    }

    /// Applies the passing of time up to `now`: ends sessions idle past the
    /// limit (at their last sign of the user), lifts a hold that ran out,
    /// forgets an in-flight marker past its expiry.
    fn pass_time(&mut self, now: UnixMillis) {
        if self.seen.is_none_or(|t| now < t) {
            self.clamp_times(now);
        }
        self.seen = Some(now);
        if self.state.hold.as_ref().is_some_and(|h| h.until <= now) {
            self.state.hold = None;
        }
        let limit = self.state.config.idle_limit_ms;
        let reports = self
            .state
            .reviews
            .end_idle(now, limit, CLOSED_TAB_MEMORY_MS);
        self.queue_reports(reports, now);
        if self
            .state
            .in_flight
            .as_ref()
            .is_some_and(|f| f.expires_at <= now)
        {
            self.state.in_flight = None;
            self.state.counters.abandoned_requests += 1;
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
            self.state.counters.abandoned_requests += 1;
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
}
