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
use reviewtime_core::{Effect, Engine, Event, State, Status, UnixMillis};

use crate::browser::{Browser, BrowserError, UserConfig};
use crate::store::{self, Calls};

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

/// What the user or the shell decided: each becomes one of the engine's
/// command methods, in the commit that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Sync now ([`Engine::sync_now`]).
    SyncNow,
    /// Retry failed syncs: one, or all when `None` ([`Engine::retry_dead`]).
    RetryDead(Option<String>),
    /// Discard failed syncs: one, or all when `None` ([`Engine::discard_dead`]).
    DiscardDead(Option<String>),
    /// Credentials were saved ([`Engine::sign_in`]).
    SignIn,
    /// The shell refused a message ([`Engine::rejected_input`]).
    RejectedInput,
}

/// One input of a job: what the browser or the network said, or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Handled by [`Engine::handle`].
    Event(Event),
    /// Carried out by the engine's command method.
    Command(Command),
}

impl From<Event> for Input {
    fn from(event: Event) -> Self {
        Input::Event(event)
    }
}

impl From<Command> for Input {
    fn from(command: Command) -> Self {
        Input::Command(command)
    }
}

impl Input {
    fn apply(&self, engine: &mut Engine, now: UnixMillis) {
        match self {
            Input::Event(event) => engine.handle(event.clone(), now),
            Input::Command(Command::SyncNow) => engine.sync_now(now),
            Input::Command(Command::RetryDead(id)) => engine.retry_dead(id.as_deref(), now),
            Input::Command(Command::DiscardDead(id)) => engine.discard_dead(id.as_deref(), now),
            Input::Command(Command::SignIn) => engine.sign_in(now),
            Input::Command(Command::RejectedInput) => engine.rejected_input(now),
        }
    }
}

struct Job {
    inputs: Vec<Input>,
    answer: Answer,
}

#[derive(Default)]
struct Inner {
    queue: Vec<Job>,
    draining: bool,
    /// This worker life has loaded the state once (a later load, after a
    /// failed save dropped the cache, is not a new life).
    loaded: bool,
    /// The engine as this worker last saved it: a write-through cache of storage.
    cache: Option<Engine>,
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

    /// Feeds `inputs` in the next commit and answers with `reply`, read from
    /// the engine once the commit holding them was saved. With no inputs, a
    /// read: nothing is handled or written.
    pub async fn submit<R: 'static>(
        &self,
        inputs: Vec<Input>,
        reply: impl FnOnce(&Engine, UnixMillis) -> R + 'static,
    ) -> Result<R, DriverError> {
        let (tx, rx) = oneshot::channel();
        let answer: Answer = Box::new(move |outcome| {
            let _ = tx.send(outcome.map(|(engine, now)| reply(engine, now)));
        });
        let start = {
            let mut inner = self.inner.borrow_mut();
            inner.queue.push(Job { inputs, answer });
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
            Ok((engine, now, outcome)) => {
                for job in jobs {
                    (job.answer)(Ok((&engine, now)));
                }
                self.inner.borrow_mut().cache = Some(engine);
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
    async fn apply(&self, jobs: &[Job]) -> Result<(Engine, UnixMillis, Outcome), DriverError> {
        let user = self.browser.user_config().await?;
        let cached = self.inner.borrow_mut().cache.take();
        let mut new_run = false;
        let mut new_life = false;
        let (mut engine, pending) = match cached {
            Some(engine) => (engine, Calls::default()),
            None => {
                let entries = self.browser.load(store::PREFIX).await?;
                new_run = !self.browser.browser_run_marked().await?;
                let mut inner = self.inner.borrow_mut();
                inner.stats.loads += 1;
                new_life = !std::mem::replace(&mut inner.loaded, true);
                drop(inner);
                let now = self.browser.now();
                let loaded = store::load(entries, now, || self.fresh_state());
                let engine = Engine::loaded(loaded.state, loaded.meta, loaded.dead_stored);
                (engine, loaded.pending)
            }
        };
        let now = self.browser.now();
        engine.configure(configured(user));
        // A request left in flight by the last worker life died with it.
        let orphan = new_life && engine.has_request_in_flight();
        let writes =
            new_run || orphan || !pending.is_empty() || jobs.iter().any(|j| !j.inputs.is_empty());
        let mut outcome = Outcome::default();
        if !writes {
            // A read: answered from the state as it is, nothing handled or saved.
            return Ok((engine, now, outcome));
        }
        if orphan {
            engine.handle(Event::WorkerStarted, now);
        }
        if new_run {
            // Before anything of this run: the last run's sessions end at their
            // last sign of the user, its tab ids are forgotten.
            engine.handle(Event::BrowserStarted, now);
        }
        match (engine.signed_in(), user.paired) {
            (false, true) => engine.sign_in(now),
            (true, false) => engine.sign_out(now),
            _ => {}
        }
        for job in jobs {
            for input in &job.inputs {
                input.apply(&mut engine, now);
            }
        }
        // Time moved: sessions may have gone idle, retries fallen due.
        engine.handle(Event::Tick, now);
        let mut pending = Some(pending);
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::Persist(changes) => {
                    let calls = store::calls(&changes, engine.outbox());
                    let calls = match pending.take() {
                        Some(p) => store::merge(p, calls),
                        None => calls,
                    };
                    self.save(calls).await?;
                    // Only now does the engine release the commit's requests.
                    engine.persisted();
                    if std::mem::take(&mut new_run) {
                        self.browser.mark_browser_run().await?;
                    }
                }
                Effect::Send(request) => outcome.sends.push(request),
                Effect::Notify(status) => outcome.status = Some(*status),
            }
        }
        outcome.wake = engine.poll_timeout();
        Ok((engine, now, outcome))
    }

    async fn save(&self, changes: Calls) -> Result<(), DriverError> {
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
                            let _ = driver.submit(vec![Event::Tick.into()], |_, _| ()).await;
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
                let _ = driver.submit(vec![response.into()], |_, _| ()).await;
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
        State::new(format!("{id:016x}"), self.browser.random())
            .with_first_request_id(self.browser.random() >> 24)
    }
}

/// The tunables: code defaults, and the idle limit the user set.
fn configured(user: UserConfig) -> Config {
    Config {
        idle_limit_ms: user.idle_limit_ms,
        ..Config::default()
    }
}

#[derive(Default)]
struct Outcome {
    sends: Vec<reviewtime_core::Request>,
    wake: Option<UnixMillis>,
    status: Option<Status>,
}
