//! The commit loop: one writer, events grouped (docs/ARCHITECTURE.md invariant 12).
//!
//! Every caller [`Driver::submit`]s its events with a function that reads its
//! answer from the engine. Jobs wait in a queue; one drain task commits them:
//! load (once per worker life, then a write-through cache), handle every
//! job's events, persist what changed, answer, notify, then start any request.
//! Jobs arriving during a commit join the next one (group commit).
//!
//! The drain is started by the `submit` that finds no drain running, and the
//! flag saying one runs is set in that same synchronous step and cleared only
//! by that drain, in the step where it finds the queue empty. Whatever order a
//! waking worker receives its events in, and however long storage takes, at
//! most one commit runs: no commit can overwrite another's save.
//!
//! A job with no events is read-only: a commit of read-only jobs does not
//! handle, persist or notify, so an open popup polling its status costs no
//! writes. A status is pushed only when it differs from the last one pushed.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use reviewtime_core::config::Config;
use reviewtime_core::state::Auth;
use reviewtime_core::{Effect, Engine, Event, State, Status, UnixMillis};

use crate::browser::{Browser, BrowserError, UserConfig};
use crate::store::{self, Changes, Written};

/// Why a job was not committed. Nothing it carried was saved: its sender may repeat it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Storage failed.
    #[error("could not save: {0}")]
    Storage(String),
    /// The driver went away (the worker is stopping) before answering.
    #[error("the background stopped before answering")]
    Stopped,
}

impl From<BrowserError> for DriverError {
    fn from(e: BrowserError) -> Self {
        DriverError::Storage(e.0)
    }
}

type Answer = Box<dyn FnOnce(Result<(&Engine, UnixMillis), DriverError>)>;

struct Job {
    events: Vec<Event>,
    answer: Answer,
}

/// The snapshot as this worker last saved it.
struct Cached {
    state: State,
    written: Written,
}

#[derive(Default)]
struct Inner {
    queue: Vec<Job>,
    draining: bool,
    /// This worker life has loaded the state once (a later load, after a
    /// failed save dropped the cache, is not a new life).
    loaded: bool,
    cache: Option<Cached>,
    last_status: Option<Status>,
    stats: Stats,
}

/// What the driver did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commits run.
    pub commits: u64,
    /// Commits that wrote to storage.
    pub writes: u64,
    /// Bytes written to storage.
    pub bytes_written: u64,
    /// Status pushes.
    pub pushes: u64,
    /// Snapshot loads from storage.
    pub loads: u64,
}

/// The driver of one worker life.
pub struct Driver<B: Browser> {
    browser: B,
    inner: RefCell<Inner>,
    me: Weak<Driver<B>>,
}

impl<B: Browser> Driver<B> {
    /// A driver over `browser`; state is read from storage at the first commit.
    pub fn new(browser: B) -> Rc<Self> {
        Rc::new_cyclic(|me| Driver {
            browser,
            inner: RefCell::new(Inner::default()),
            me: me.clone(),
        })
    }

    /// The browser it runs on.
    pub fn browser(&self) -> &B {
        &self.browser
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        self.inner.borrow().stats
    }

    /// Feeds `events` in the next commit and answers with `reply`, read from
    /// the engine once the commit holding the events was saved. With no
    /// events, a read: nothing is handled or written.
    pub async fn submit<R: 'static>(
        &self,
        events: Vec<Event>,
        reply: impl FnOnce(&Engine, UnixMillis) -> R + 'static,
    ) -> Result<R, DriverError> {
        let (tx, rx) = oneshot::channel();
        let answer: Answer = Box::new(move |outcome| {
            let _ = tx.send(outcome.map(|(engine, now)| reply(engine, now)));
        });
        let start = {
            let mut inner = self.inner.borrow_mut();
            inner.queue.push(Job { events, answer });
            !std::mem::replace(&mut inner.draining, true)
        };
        if start {
            if let Some(me) = self.me.upgrade() {
                self.browser.spawn(Box::pin(me.drain()));
            }
        }
        rx.await.unwrap_or(Err(DriverError::Stopped))
    }

    /// Commits queued jobs until none are left; the only task that clears `draining`.
    async fn drain(self: Rc<Self>) {
        loop {
            let jobs = {
                let mut inner = self.inner.borrow_mut();
                if inner.queue.is_empty() {
                    inner.draining = false;
                    return;
                }
                std::mem::take(&mut inner.queue)
            };
            self.commit(jobs).await;
        }
    }

    async fn commit(&self, jobs: Vec<Job>) {
        self.inner.borrow_mut().stats.commits += 1;
        match self.apply(&jobs).await {
            Ok((engine, now, written, outcome)) => {
                for job in jobs {
                    (job.answer)(Ok((&engine, now)));
                }
                self.inner.borrow_mut().cache = Some(Cached {
                    state: engine.into_state(),
                    written,
                });
                self.perform(outcome).await;
            }
            Err(e) => {
                // Nothing was saved; the cache may be ahead of storage: drop it.
                self.inner.borrow_mut().cache = None;
                for job in jobs {
                    (job.answer)(Err(e.clone()));
                }
            }
        }
    }

    /// Loads, handles, persists. Returns the engine and what is left to do.
    async fn apply(
        &self,
        jobs: &[Job],
    ) -> Result<(Engine, UnixMillis, Written, Outcome), DriverError> {
        let user = self.browser.user_config().await?;
        let cached = self.inner.borrow_mut().cache.take();
        let mut new_run = false;
        let mut new_life = false;
        let (state, mut written, pending) = match cached {
            Some(c) => (c.state, c.written, Changes::default()),
            None => {
                let entries = self.browser.load(store::PREFIX).await?;
                new_run = !self.browser.browser_run_marked().await?;
                let mut inner = self.inner.borrow_mut();
                inner.stats.loads += 1;
                new_life = !std::mem::replace(&mut inner.loaded, true);
                drop(inner);
                let now = self.browser.now();
                let loaded = store::load(entries, now, || self.fresh_state());
                (loaded.state, loaded.written, loaded.pending)
            }
        };
        let now = self.browser.now();
        let mut engine = Engine::new(configured(state, user));
        // A request left in flight by the last worker life died with it.
        let orphan = new_life && engine.state().in_flight.is_some();
        let writes =
            new_run || orphan || !pending.is_empty() || jobs.iter().any(|j| !j.events.is_empty());
        let mut outcome = Outcome::default();
        if !writes {
            // A read: answered from the state as it is, nothing handled or saved.
            return Ok((engine, now, written, outcome));
        }
        if orphan {
            engine.handle(Event::WorkerStarted, now);
        }
        if new_run {
            // Before anything of this run: the last run's sessions end at their
            // last sign of the user, its tab ids are forgotten.
            engine.handle(Event::BrowserStarted, now);
        }
        match (&engine.state().auth, user.paired) {
            (Auth::Unpaired, true) => engine.handle(Event::SignedIn, now),
            (Auth::Ready | Auth::Rejected { .. }, false) => engine.handle(Event::SignedOut, now),
            _ => {}
        }
        for job in jobs {
            for event in &job.events {
                engine.handle(event.clone(), now);
            }
        }
        // Time moved: sessions may have gone idle, retries fallen due.
        engine.handle(Event::Tick, now);
        let mut pending = Some(pending);
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::Persist => {
                    let (changes, next) = store::changes(engine.state_mut(), &written);
                    let changes = match pending.take() {
                        Some(p) => store::merge(p, changes),
                        None => changes,
                    };
                    self.save(changes).await?;
                    written = next;
                    if std::mem::take(&mut new_run) {
                        self.browser.mark_browser_run().await?;
                    }
                }
                Effect::Send(request) => outcome.sends.push(request),
                Effect::Wake { at } => outcome.wake = Some(at),
                Effect::Notify(status) => outcome.status = Some(*status),
            }
        }
        Ok((engine, now, written, outcome))
    }

    async fn save(&self, changes: Changes) -> Result<(), DriverError> {
        if changes.is_empty() {
            return Ok(());
        }
        let bytes = changes.bytes() as u64;
        if !changes.write.is_empty() {
            self.browser.write(changes.write).await?;
        }
        // Removals after the write: a worker stopped in between leaves an
        // acknowledged item behind, which is sent again and deduplicated.
        if !changes.remove.is_empty() {
            self.browser.remove(changes.remove).await?;
        }
        let mut inner = self.inner.borrow_mut();
        inner.stats.writes += 1;
        inner.stats.bytes_written += bytes;
        Ok(())
    }

    /// After the callers were answered: wake-up, status push, requests.
    async fn perform(&self, outcome: Outcome) {
        if let Some(at) = outcome.wake {
            let me = self.me.clone();
            self.browser.set_wake(
                at,
                Box::new(move || {
                    if let Some(me) = me.upgrade() {
                        let driver = me.clone();
                        me.browser.spawn(Box::pin(async move {
                            let _ = driver.submit(vec![Event::Tick], |_, _| ()).await;
                        }));
                    }
                }),
            );
        }
        for request in outcome.sends {
            let Some(me) = self.me.upgrade() else { return };
            let driver = me.clone();
            me.browser.spawn(Box::pin(async move {
                let result = driver.browser.fetch(&request).await;
                let response = Event::Response {
                    request_id: request.id,
                    items: request.items,
                    result,
                };
                let _ = driver.submit(vec![response], |_, _| ()).await;
            }));
        }
        if let Some(status) = outcome.status {
            let changed = self.inner.borrow().last_status.as_ref() != Some(&status);
            if changed {
                self.inner.borrow_mut().stats.pushes += 1;
                self.browser.notify(&status).await;
                self.inner.borrow_mut().last_status = Some(status);
            }
        }
    }

    /// A new install (or one whose small part was unreadable): its id, jitter
    /// seed and first request id come from the browser's randomness, so they
    /// never repeat those of an earlier life.
    fn fresh_state(&self) -> State {
        let id = self.browser.random();
        let mut state = State::new(format!("{id:016x}"), self.browser.random());
        state.next_request_id = (self.browser.random() >> 24).max(1);
        state
    }
}

/// The tunables: code defaults, and the idle limit the user set.
fn configured(mut state: State, user: UserConfig) -> State {
    state.config = Config {
        idle_limit_ms: user.idle_limit_ms,
        ..Config::default()
    };
    state
}

#[derive(Default)]
struct Outcome {
    sends: Vec<reviewtime_core::Request>,
    wake: Option<UnixMillis>,
    status: Option<Status>,
}
