//! The real commit loop, driven over a deterministic fake browser.
//!
//! Each seed plays a few hundred steps: events arriving in bursts (as Chrome
//! delivers them to a waking worker), storage calls completing late and in
//! any order the browser allows, requests answered, failed or timed out,
//! wake-ups firing, time passing, and the worker killed between any two
//! awaits (its pending storage write lands or not, its request reaches the
//! server or not). Then faults stop, every tab closes, and it drains.
//!
//! Checked over every seed:
//! - one writer: a worker never has two storage calls outstanding;
//! - one request in flight: a worker never starts a request while its last
//!   one is unanswered, and request ids never repeat;
//! - no lost update: every review action the worker acknowledged as queued,
//!   and every session it reported, reaches the server, exactly once;
//! - storage holds what the worker believes: at rest, the snapshot loaded
//!   from storage equals the worker's;
//! - reads are free: a read-only request writes nothing, and a status is
//!   pushed only when it changed.
//!
//! `SIM_SEEDS=N` sets how many seeds run (default 10,000); `SIM_SEED=S` replays one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use reviewtime_core::protocol::{
    ActivityBatch, ActivityKind, BatchAck, PullRef, SessionAck, SessionRecord,
};
use reviewtime_core::rng::{Rng, SplitMix64};
use reviewtime_core::session::PrPage;
use reviewtime_core::{Event, HttpResult, Request, State, Status, UnixMillis};
use reviewtime_driver::store;
use reviewtime_driver::{Browser, BrowserError, Command, Driver, Input, Task, UserConfig};

const T0: i64 = 1_700_000_000_000;

// ---- a deterministic executor ----

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Spawned {
    task: Task,
    woken: Arc<Flag>,
}

// ---- the fake browser's pending calls ----

enum OpResult {
    Load(Vec<(String, String)>),
    Done,
    Fetch(HttpResult),
}

#[derive(Default)]
struct Slot {
    result: Option<OpResult>,
    waker: Option<Waker>,
}

struct OpFuture(Rc<RefCell<Slot>>);
impl Future for OpFuture {
    type Output = OpResult;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult> {
        let mut slot = self.0.borrow_mut();
        match slot.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

enum OpKind {
    Load,
    Write(Vec<(String, String)>),
    Remove(Vec<String>),
    Fetch(Request),
}

struct Op {
    gen: u64,
    kind: OpKind,
    slot: Rc<RefCell<Slot>>,
}

impl Op {
    fn is_storage(&self) -> bool {
        !matches!(self.kind, OpKind::Fetch(_))
    }
    fn complete(self, result: OpResult) {
        let mut slot = self.slot.borrow_mut();
        slot.result = Some(result);
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
}

/// The server's rules, as the real one implements them.
#[derive(Default)]
struct FakeServer {
    sessions: HashMap<String, SessionRecord>,
    activities: HashMap<String, String>,
    stored_twice: u64,
}

impl FakeServer {
    fn apply(&mut self, req: &Request) -> String {
        if req.path.ends_with("/batch") {
            let batch: ActivityBatch = serde_json::from_str(&req.body).unwrap();
            let mut ack = BatchAck::default();
            for a in batch.activities {
                let body = serde_json::to_string(&a).unwrap();
                match self.activities.get(&a.id) {
                    None => {
                        self.activities.insert(a.id.clone(), body);
                        ack.accepted += 1;
                    }
                    Some(old) => {
                        assert_eq!(*old, body, "an activity id reused with other content");
                        ack.duplicates += 1;
                    }
                }
            }
            serde_json::to_string(&ack).unwrap()
        } else {
            let s: SessionRecord = serde_json::from_str(&req.body).unwrap();
            let apply = match self.sessions.get(&s.id) {
                None => true,
                Some(old) => {
                    s.revision > old.revision && !(old.ended_at.is_some() && s.ended_at.is_none())
                }
            };
            if apply {
                self.sessions.insert(s.id.clone(), s.clone());
            }
            serde_json::to_string(&SessionAck {
                session: s,
                applied: apply,
            })
            .unwrap()
        }
    }
}

/// A wake-up asked for: the worker life, when, and what to call.
type Wakeup = (u64, i64, Box<dyn FnOnce()>);

struct World {
    now: Cell<i64>,
    rng: RefCell<SplitMix64>,
    gen: Cell<u64>,
    storage: RefCell<BTreeMap<String, String>>,
    ops: RefCell<Vec<Op>>,
    tasks: RefCell<Vec<Spawned>>,
    wake: RefCell<Option<Wakeup>>,
    request_ids: RefCell<HashSet<u64>>,
    pushes: Cell<u64>,
    last_push: RefCell<Option<Status>>,
    storage_calls: Cell<u64>,
    /// `chrome.storage.session`'s mark of this browser run (gone when the browser quits).
    run_marked: Cell<bool>,
}

#[derive(Clone)]
struct FakeBrowser {
    world: Rc<World>,
    gen: u64,
}

impl FakeBrowser {
    fn call(&self, kind: OpKind) -> OpFuture {
        let mut ops = self.world.ops.borrow_mut();
        let storage = !matches!(kind, OpKind::Fetch(_));
        if storage {
            assert!(
                !ops.iter().any(|o| o.gen == self.gen && o.is_storage()),
                "two storage calls outstanding: two commits at once"
            );
            self.world
                .storage_calls
                .set(self.world.storage_calls.get() + 1);
        } else {
            assert!(
                !ops.iter().any(|o| o.gen == self.gen && !o.is_storage()),
                "two requests in flight"
            );
        }
        let slot = Rc::new(RefCell::new(Slot::default()));
        ops.push(Op {
            gen: self.gen,
            kind,
            slot: slot.clone(),
        });
        OpFuture(slot)
    }
}

impl Browser for FakeBrowser {
    async fn load(&self, prefix: &str) -> Result<Vec<(String, String)>, BrowserError> {
        match self.call(OpKind::Load).await {
            OpResult::Load(entries) => Ok(entries
                .into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .collect()),
            _ => unreachable!(),
        }
    }
    async fn write(&self, items: Vec<(String, String)>) -> Result<(), BrowserError> {
        self.call(OpKind::Write(items)).await;
        Ok(())
    }
    async fn remove(&self, keys: Vec<String>) -> Result<(), BrowserError> {
        self.call(OpKind::Remove(keys)).await;
        Ok(())
    }
    async fn user_config(&self) -> Result<UserConfig, BrowserError> {
        Ok(UserConfig {
            paired: true,
            idle_limit_ms: 15 * 60_000,
        })
    }
    async fn browser_run_marked(&self) -> Result<bool, BrowserError> {
        Ok(self.world.run_marked.get())
    }
    async fn mark_browser_run(&self) -> Result<(), BrowserError> {
        self.world.run_marked.set(true);
        Ok(())
    }
    async fn fetch(&self, request: &Request) -> HttpResult {
        assert!(
            self.world.request_ids.borrow_mut().insert(request.id),
            "request id {} used twice",
            request.id
        );
        match self.call(OpKind::Fetch(request.clone())).await {
            OpResult::Fetch(r) => r,
            _ => unreachable!(),
        }
    }
    async fn notify(&self, status: &Status) {
        let mut last = self.world.last_push.borrow_mut();
        assert_ne!(
            last.as_ref(),
            Some(status),
            "a status pushed twice unchanged"
        );
        *last = Some(status.clone());
        self.world.pushes.set(self.world.pushes.get() + 1);
    }
    fn now(&self) -> UnixMillis {
        self.world.now.get()
    }
    fn random(&self) -> u64 {
        self.world.rng.borrow_mut().next_u64()
    }
    fn set_wake(&self, at: UnixMillis, wake: Box<dyn FnOnce()>) {
        *self.world.wake.borrow_mut() = Some((self.gen, at, wake));
    }
    fn spawn(&self, task: Task) {
        self.world.tasks.borrow_mut().push(Spawned {
            task,
            woken: Arc::new(Flag(AtomicBool::new(true))),
        });
    }
}

// ---- the simulation ----

struct Sim {
    world: Rc<World>,
    rng: SplitMix64,
    driver: Option<Rc<Driver<FakeBrowser>>>,
    server: FakeServer,
    healthy: bool,
    /// Tabs and the PR each shows (the content script's view).
    tabs: BTreeMap<i64, u64>,
    next_tab: i64,
    /// Review actions the content script still holds (it repeats them until answered).
    unacked: BTreeMap<String, (i64, ActivityKind, i64)>,
    /// Actions the worker answered.
    answered: Rc<RefCell<HashSet<String>>>,
    /// Actions the worker answered as queued: each must reach the server.
    recorded: Rc<RefCell<HashSet<String>>>,
    /// Sessions the worker reported open: each must reach the server, ended.
    sessions: Rc<RefCell<HashSet<String>>>,
    next_action: u64,
    kills: u64,
    steps: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let world = Rc::new(World {
            now: Cell::new(T0),
            rng: RefCell::new(SplitMix64::new(seed ^ 0xb10c)),
            gen: Cell::new(0),
            storage: RefCell::new(BTreeMap::new()),
            ops: RefCell::new(Vec::new()),
            tasks: RefCell::new(Vec::new()),
            wake: RefCell::new(None),
            request_ids: RefCell::new(HashSet::new()),
            pushes: Cell::new(0),
            last_push: RefCell::new(None),
            storage_calls: Cell::new(0),
            run_marked: Cell::new(false),
        });
        Sim {
            world,
            rng: SplitMix64::new(seed),
            driver: None,
            server: FakeServer::default(),
            healthy: true,
            tabs: BTreeMap::new(),
            next_tab: 1,
            unacked: BTreeMap::new(),
            answered: Rc::default(),
            recorded: Rc::default(),
            sessions: Rc::default(),
            next_action: 0,
            kills: 0,
            steps: 0,
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.up_to(99) < percent
    }

    fn driver(&mut self) -> Rc<Driver<FakeBrowser>> {
        if self.driver.is_none() {
            // A worker wakes: a new life, nothing in memory.
            self.driver = Some(Driver::new(FakeBrowser {
                world: self.world.clone(),
                gen: self.world.gen.get(),
            }));
        }
        self.driver.clone().unwrap()
    }

    /// Polls every woken task until none is.
    fn run(&mut self) {
        loop {
            let mut progressed = false;
            let mut i = 0;
            loop {
                let mut task = {
                    let mut tasks = self.world.tasks.borrow_mut();
                    if i >= tasks.len() {
                        break;
                    }
                    if !tasks[i].woken.0.swap(false, Ordering::SeqCst) {
                        i += 1;
                        continue;
                    }
                    tasks.remove(i)
                };
                progressed = true;
                let waker = Waker::from(task.woken.clone());
                let mut cx = Context::from_waker(&waker);
                if task.task.as_mut().poll(&mut cx).is_pending() {
                    self.world.tasks.borrow_mut().insert(i, task);
                    i += 1;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// A caller (a listener in sw.js): submits `events` as a task of this worker life.
    fn submit(
        &mut self,
        inputs: Vec<Input>,
        on_ok: impl FnOnce(&reviewtime_core::Engine) + 'static,
    ) {
        let driver = self.driver();
        let task = async move {
            let _ = driver.submit(inputs, move |engine, _| on_ok(engine)).await;
        };
        self.driver().browser().spawn(Box::pin(task));
    }

    fn open_tab(&mut self) {
        let tab = self.next_tab;
        self.next_tab += 1;
        let pr = 1 + self.rng.up_to(3);
        self.tabs.insert(tab, pr);
        self.report(tab);
    }

    fn report(&mut self, tab: i64) {
        let Some(&n) = self.tabs.get(&tab) else {
            return;
        };
        let page = PrPage {
            pr: PullRef {
                host: "github.com".into(),
                owner: "octo".into(),
                repo: "widgets".into(),
                number: n,
            },
            view: None,
        };
        let sessions = self.sessions.clone();
        self.submit(
            vec![Event::Page {
                tab,
                page: Some(page),
                visible: true,
                focused: true,
            }
            .into()],
            move |engine| {
                if let Some(s) = engine.state().reviews().session_of(tab) {
                    sessions.borrow_mut().insert(s.id.clone());
                }
            },
        );
    }

    fn act(&mut self, tab: i64) {
        self.next_action += 1;
        let id = format!("cs-action-{:06}", self.next_action);
        let kind = match self.rng.up_to(2) {
            0 => ActivityKind::CommentPosted,
            1 => ActivityKind::FileViewed {
                path: Some(format!("src/f{}.rs", self.next_action)),
            },
            _ => ActivityKind::ReviewSubmitted {
                verdict: reviewtime_core::protocol::ReviewVerdict::Approve,
            },
        };
        // Like the content script, an action keeps the time it was made across repeats.
        self.unacked
            .insert(id.clone(), (tab, kind, self.world.now.get()));
        self.deliver_action(id);
    }

    /// The content script sends (or repeats) an action; the answer comes once the worker saved it.
    fn deliver_action(&mut self, id: String) {
        let Some((tab, kind, at)) = self.unacked.get(&id).cloned() else {
            return;
        };
        let answered = self.answered.clone();
        let recorded = self.recorded.clone();
        let event = Event::Activity {
            tab,
            kind,
            client_id: Some(id.clone()),
            at: Some(at),
        };
        self.submit(vec![event.into()], move |engine| {
            answered.borrow_mut().insert(id.clone());
            if engine.state().outbox().contains_activity(&id) {
                recorded.borrow_mut().insert(id);
            }
        });
    }

    /// The content script drops what the worker answered, and repeats the rest.
    fn content_script_retry(&mut self) {
        let answered = self.answered.borrow().clone();
        self.unacked.retain(|id, _| !answered.contains(id));
        let ids: Vec<String> = self.unacked.keys().cloned().collect();
        for id in ids {
            self.deliver_action(id);
        }
    }

    /// A storage call completes (Chrome serialises them: the oldest of a worker first).
    fn complete_storage(&mut self) {
        let gen = self.world.gen.get();
        let op = {
            let mut ops = self.world.ops.borrow_mut();
            let Some(i) = ops.iter().position(|o| o.gen == gen && o.is_storage()) else {
                return;
            };
            ops.remove(i)
        };
        self.apply_storage(op);
    }

    fn apply_storage(&mut self, op: Op) {
        let result = match &op.kind {
            OpKind::Load => OpResult::Load(
                self.world
                    .storage
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            OpKind::Write(items) => {
                let mut st = self.world.storage.borrow_mut();
                for (k, v) in items {
                    st.insert(k.clone(), v.clone());
                }
                OpResult::Done
            }
            OpKind::Remove(keys) => {
                let mut st = self.world.storage.borrow_mut();
                for k in keys {
                    st.remove(k);
                }
                OpResult::Done
            }
            OpKind::Fetch(_) => unreachable!(),
        };
        op.complete(result);
    }

    /// The request in flight is answered (or fails).
    fn complete_fetch(&mut self) {
        let gen = self.world.gen.get();
        let op = {
            let mut ops = self.world.ops.borrow_mut();
            let Some(i) = ops.iter().position(|o| o.gen == gen && !o.is_storage()) else {
                return;
            };
            ops.remove(i)
        };
        let OpKind::Fetch(req) = &op.kind else {
            unreachable!()
        };
        let reply = |status: u16, body: String| HttpResult::Reply {
            status,
            retry_after: None,
            body,
        };
        let result = if self.healthy {
            reply(200, self.server.apply(req))
        } else {
            match self.rng.up_to(5) {
                0 => HttpResult::NetworkError {
                    message: "refused".into(),
                },
                1 => HttpResult::Offline,
                2 => {
                    if self.chance(50) {
                        self.server.apply(req);
                    }
                    HttpResult::Timeout
                }
                3 => reply(503, String::new()),
                4 => {
                    // Forwarded, then the answer was lost to a proxy.
                    self.server.apply(req);
                    reply(502, String::new())
                }
                _ => reply(429, String::new()),
            }
        };
        op.complete(OpResult::Fetch(result));
    }

    /// Chrome stops the worker: everything in memory is gone. A storage write
    /// it had made lands or not; a request it had made reached the server or not.
    fn kill(&mut self) {
        self.kills += 1;
        let gen = self.world.gen.get();
        let ops: Vec<Op> = std::mem::take(&mut *self.world.ops.borrow_mut());
        for op in ops {
            if op.gen != gen {
                continue;
            }
            match &op.kind {
                OpKind::Write(_) | OpKind::Remove(_) if self.chance(50) => self.apply_storage(op),
                OpKind::Fetch(req) if self.chance(50) => {
                    self.server.apply(req);
                }
                _ => {}
            }
        }
        self.world.tasks.borrow_mut().clear();
        *self.world.wake.borrow_mut() = None;
        self.driver = None;
        self.world.gen.set(gen + 1);
        *self.world.last_push.borrow_mut() = None;
    }

    fn fire_wake(&mut self) {
        let due = {
            let mut wake = self.world.wake.borrow_mut();
            match &*wake {
                Some((gen, at, _))
                    if *gen == self.world.gen.get() && *at <= self.world.now.get() =>
                {
                    wake.take()
                }
                _ => None,
            }
        };
        if let Some((_, _, f)) = due {
            f();
        }
    }

    fn advance(&mut self, ms: i64) {
        self.world.now.set(self.world.now.get() + ms);
        self.fire_wake();
    }

    fn step(&mut self) {
        self.steps += 1;
        match self.rng.up_to(99) {
            0..=9 => self.open_tab(),
            10..=24 => {
                // A burst of review actions, as a waking worker receives them.
                let n = 1 + self.rng.up_to(4);
                for _ in 0..n {
                    if let Some(&tab) = self.pick_tab() {
                        self.act(tab);
                    }
                }
            }
            25..=29 => {
                if let Some(&tab) = self.pick_tab() {
                    self.tabs.remove(&tab);
                    self.submit(vec![Event::TabClosed { tab }.into()], |_| {});
                }
            }
            30..=32 => self.submit(vec![Event::Alarm.into()], |_| {}),
            33..=34 => self.submit(vec![Command::SyncNow.into()], |_| {}),
            35..=39 => self.read_only_probe(),
            40..=49 => self.complete_storage(),
            50..=57 => self.complete_fetch(),
            58..=63 => {
                let ms = 1 + self.rng.up_to(4_000) as i64;
                self.advance(ms);
            }
            64..=67 => self.content_script_retry(),
            68..=69 => self.healthy = !self.healthy,
            70..=71 => self.kill(),
            76 => {
                // The browser quits and starts again: the worker dies, the run's
                // mark and every tab are gone (restored tabs report as new ones).
                self.kill();
                self.world.run_marked.set(false);
                self.tabs.clear();
                self.unacked.clear();
            }
            72..=74 => {
                if let Some(&tab) = self.pick_tab() {
                    self.report(tab);
                }
            }
            _ => {}
        }
        self.run();
    }

    fn pick_tab(&mut self) -> Option<&i64> {
        if self.tabs.is_empty() {
            return None;
        }
        let i = self.rng.up_to(self.tabs.len() as u64 - 1) as usize;
        self.tabs.keys().nth(i)
    }

    /// A popup reading the status: answered without a storage call or a push.
    fn read_only_probe(&mut self) {
        let calls = self.world.storage_calls.get();
        let pushes = self.world.pushes.get();
        let busy = !self.world.tasks.borrow().is_empty() || !self.world.ops.borrow().is_empty();
        let warm = self.driver.as_ref().is_some_and(|d| d.stats().loads > 0);
        self.submit(Vec::new(), |_| {});
        self.run();
        if !busy && warm {
            assert_eq!(
                self.world.storage_calls.get(),
                calls,
                "a read wrote to storage"
            );
            assert_eq!(self.world.pushes.get(), pushes, "a read pushed a status");
        }
    }

    /// Nothing pending: storage holds exactly the worker's snapshot.
    fn check_at_rest(&mut self) {
        if !self.world.tasks.borrow().is_empty() || !self.world.ops.borrow().is_empty() {
            return;
        }
        let Some(driver) = self.driver.clone() else {
            return;
        };
        if driver.stats().loads == 0 {
            return;
        }
        let seen: Rc<RefCell<Option<State>>> = Rc::default();
        let out = seen.clone();
        let task = async move {
            let _ = driver
                .submit(Vec::new(), move |e, _| {
                    *out.borrow_mut() = Some(e.state().clone())
                })
                .await;
        };
        self.driver().browser().spawn(Box::pin(task));
        self.run();
        let mine = seen
            .borrow_mut()
            .take()
            .expect("a read is answered at once");
        let entries = self.world.storage.borrow().clone().into_iter().collect();
        // Nothing stored yet (only reads so far): the worker's fresh state is all there is.
        let fresh = mine.clone();
        let mut stored = store::load(entries, self.world.now.get(), || fresh).state;
        stored.set_config(mine.config().clone());
        if stored != mine {
            let a = serde_json::to_string_pretty(&stored).unwrap();
            let b = serde_json::to_string_pretty(&mine).unwrap();
            for (x, y) in a.lines().zip(b.lines()) {
                if x != y {
                    eprintln!("stored: {x}\nworker: {y}");
                }
            }
            panic!("storage differs from the worker's snapshot");
        }
    }

    /// Faults stop, tabs close, and everything drains.
    fn finish(&mut self) {
        self.healthy = true;
        let tabs: Vec<i64> = self.tabs.keys().copied().collect();
        self.tabs.clear();
        for _ in 0..200 {
            self.content_script_retry();
            self.submit(
                vec![
                    Event::OpenTabs {
                        tabs: Vec::new(),
                        listed_at: self.world.now.get(),
                    }
                    .into(),
                    Command::SyncNow.into(),
                ],
                |_| {},
            );
            for _ in 0..20 {
                self.run();
                self.complete_storage();
                self.complete_fetch();
                self.run();
            }
            self.advance(5_000);
            self.run();
            let quiet = self.unacked.is_empty()
                && self.world.ops.borrow().is_empty()
                && self.world.tasks.borrow().is_empty();
            let drained = quiet && {
                let entries: Vec<(String, String)> =
                    self.world.storage.borrow().clone().into_iter().collect();
                let st = store::load(entries, 0, || State::new("x", 0)).state;
                st.outbox().is_empty() && st.reviews().sessions().len() == 0
            };
            if drained {
                break;
            }
        }
        let _ = tabs;
        self.check_at_rest();
    }

    fn check(&self, seed: u64) {
        assert!(
            self.unacked.is_empty(),
            "seed {seed}: actions never answered"
        );
        let entries: Vec<(String, String)> =
            self.world.storage.borrow().clone().into_iter().collect();
        let st = store::load(entries, 0, || State::new("x", 0)).state;
        assert!(
            st.outbox().is_empty(),
            "seed {seed}: {} items never sent",
            st.outbox().len()
        );
        assert!(
            st.dead().entries().is_empty(),
            "seed {seed}: dead letters {:?}",
            st.dead().entries()
        );
        for id in self.recorded.borrow().iter() {
            assert!(
                self.server.activities.contains_key(id),
                "seed {seed}: action {id} was acknowledged but never reached the server"
            );
        }
        for id in self.sessions.borrow().iter() {
            let s = self.server.sessions.get(id);
            assert!(
                s.is_some_and(|s| s.ended_at.is_some()),
                "seed {seed}: session {id} never reached the server ended: {s:?}"
            );
        }
        assert_eq!(self.server.stored_twice, 0);
    }
}

fn run_seed(seed: u64) -> (u64, usize, usize) {
    let mut sim = Sim::new(seed);
    let steps = 150 + sim.rng.up_to(150);
    for _ in 0..steps {
        sim.step();
        if sim.rng.up_to(9) == 0 {
            sim.check_at_rest();
        }
    }
    sim.finish();
    sim.check(seed);
    let recorded = sim.recorded.borrow().len();
    let sessions = sim.sessions.borrow().len();
    (sim.kills, recorded, sessions)
}

#[test]
fn one_writer_no_lost_update_over_many_seeds() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        run_seed(seed.parse().expect("SIM_SEED is a number"));
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let (mut kills, mut actions, mut sessions) = (0, 0, 0);
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed));
        match result {
            Ok((k, a, s)) => {
                kills += k;
                actions += a;
                sessions += s;
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("seed {seed} failed (replay with SIM_SEED={seed}): {msg}");
            }
        }
    }
    println!(
        "driver simulation: {seeds} seeds, {kills} worker kills, {actions} acknowledged actions and {sessions} sessions all on the server"
    );
    assert!(
        actions > seeds as usize,
        "the simulation must exercise actions"
    );
}
