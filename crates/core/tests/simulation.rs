//! A seeded simulation: random review sessions across tabs, a fake server and
//! a fake clock, with faults injected between any two effects. After every run
//! it checks the invariants of docs/ARCHITECTURE.md.
//!
//! `SIM_SEEDS=N` sets how many seeds run (default 10,000); `SIM_SEED=S` replays one.

mod common;

use std::collections::{HashMap, HashSet};

use common::pr;
use reviewtime_core::dead_letter::DeadPayload;
use reviewtime_core::protocol::{
    Activity, ActivityBatch, ActivityKind, BatchAck, Conflict, PrTab, Rejected, ReviewVerdict,
    SessionAck, SessionRecord,
};
use reviewtime_core::rng::{Rng, SplitMix64};
use reviewtime_core::state::InFlightItems;
use reviewtime_core::{Effect, Engine, Event, HttpResult, IdleState, Request, State};

/// The server's rules, as the real one implements them.
#[derive(Default)]
struct FakeServer {
    sessions: HashMap<String, SessionRecord>,
    activities: HashMap<String, String>,
    conflicts: u64,
    /// Answers a batch holding a bad item with a 400 for the whole batch
    /// (as servers before per-item results did), instead of per item.
    old: bool,
}

/// An item this server refuses for what it holds (a path it will not store).
fn is_bad(a: &Activity) -> bool {
    matches!(&a.kind, ActivityKind::FileViewed { path: Some(p) } if p.starts_with("bad/"))
}

impl FakeServer {
    /// The status and body it answers `req` with.
    fn answer(&mut self, req: &Request) -> (u16, String) {
        if self.old && req.path.ends_with("/batch") {
            let batch: ActivityBatch =
                serde_json::from_str(&req.body).expect("client sends valid batches");
            if batch.activities.iter().any(is_bad) {
                return (
                    400,
                    r#"{"code":"bad_request","message":"path refused"}"#.into(),
                );
            }
        }
        (200, self.apply(req))
    }

    fn apply(&mut self, req: &Request) -> String {
        if req.path.ends_with("/batch") {
            let batch: ActivityBatch =
                serde_json::from_str(&req.body).expect("client sends valid batches");
            let mut ack = BatchAck::default();
            for a in batch.activities {
                if is_bad(&a) {
                    ack.rejected.push(Rejected {
                        id: a.id,
                        code: "field_invalid".into(),
                        reason: "path refused".into(),
                    });
                    continue;
                }
                let body = serde_json::to_string(&a).expect("encode");
                match self.activities.get(&a.id) {
                    None => {
                        self.activities.insert(a.id.clone(), body);
                        ack.accepted += 1;
                    }
                    Some(old) if *old == body => ack.duplicates += 1,
                    Some(_) => {
                        self.conflicts += 1;
                        ack.conflicts.push(Conflict {
                            id: a.id,
                            reason: "differs".into(),
                        });
                    }
                }
            }
            serde_json::to_string(&ack).expect("encode")
        } else {
            let s: SessionRecord =
                serde_json::from_str(&req.body).expect("client sends valid sessions");
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
            .expect("encode")
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    /// Only faults that must never dead-letter a good item: network,
    /// offline, timeouts, 5xx, 429/503 holds, 401, 413 splits, web pages and
    /// redirects where the API should be, clock jumps, kills, duplicates, and
    /// a server that refuses bad items (per item, or a whole batch for an old one).
    Transient,
    /// Everything, including 400s and garbled answers, with a small dead-letter cap.
    Hostile,
}

struct Sim {
    rng: SplitMix64,
    profile: Profile,
    engine: Engine,
    persisted: String,
    now: i64,
    server: FakeServer,
    in_transit: Vec<Request>,
    healthy: bool,
    signed_out_until: Option<i64>,
    created: HashSet<String>,
    ended_sessions: HashSet<String>,
    acked: HashSet<String>,
    evicted: HashSet<String>,
    tabs: [i64; 4],
    events: u64,
    /// Bad items created (the server refuses them).
    bad: HashSet<String>,
    /// The latest hold the engine persisted: no request before it.
    held_until: i64,
    /// What the last persisted snapshot holds of the outbox: session revisions and activity ids.
    stored_sessions: HashMap<String, u64>,
    stored_activities: HashSet<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let profile = if seed % 2 == 0 {
            Profile::Transient
        } else {
            Profile::Hostile
        };
        let mut state = State::new("sim", seed);
        if profile == Profile::Hostile {
            let mut config = state.config().clone();
            config.dead_letter_cap = 3;
            state.set_config(config);
        }
        let engine = Engine::new(state);
        let persisted = engine.state().to_json();
        let mut sim = Sim {
            rng: SplitMix64::new(seed ^ 0x5eed),
            profile,
            engine,
            persisted,
            now: common::T0,
            server: FakeServer::default(),
            in_transit: Vec::new(),
            healthy: false,
            signed_out_until: None,
            created: HashSet::new(),
            ended_sessions: HashSet::new(),
            acked: HashSet::new(),
            evicted: HashSet::new(),
            tabs: [1, 2, 3, 4],
            events: 0,
            bad: HashSet::new(),
            held_until: i64::MIN,
            stored_sessions: HashMap::new(),
            stored_activities: HashSet::new(),
        };
        sim.server.old = seed % 4 < 2;
        sim.command(|e, now| e.sign_in(now));
        sim
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.up_to(99) < percent
    }

    fn outbox_ids(&self) -> HashSet<String> {
        self.engine
            .state()
            .outbox()
            .activities()
            .iter()
            .map(|a| a.activity.id.clone())
            .collect()
    }

    fn dead_ids(&self) -> HashSet<String> {
        let mut ids = HashSet::new();
        for e in self.engine.state().dead().entries() {
            match &e.payload {
                DeadPayload::Activities { items, .. } => {
                    ids.extend(items.iter().map(|a| a.id.clone()))
                }
                DeadPayload::Session { record } => {
                    ids.insert(record.id.clone());
                }
                DeadPayload::Conflict { .. } => panic!("the fake server never diverges"),
                DeadPayload::Unreadable { .. } => panic!("the core never reads storage"),
            }
        }
        ids
    }

    fn attempts(&self) -> u64 {
        self.engine
            .state()
            .outbox()
            .retries()
            .map(|r| u64::from(r.attempts))
            .sum()
    }

    /// Runs a command method of the engine in a commit of its own.
    fn command(&mut self, f: impl FnOnce(&mut Engine, i64)) {
        f(&mut self.engine, self.now);
        self.handle(Event::Tick);
    }

    /// Feeds an event and performs its effects, maybe dying between two of them.
    fn handle(&mut self, event: Event) {
        self.events += 1;
        let is_response = matches!(event, Event::Response { .. });
        // Answers that say nothing of the items: no attempt is used.
        let offline_result = matches!(
            &event,
            Event::Response {
                result: HttpResult::Offline
                    | HttpResult::NetworkError { .. }
                    | HttpResult::Redirected,
                ..
            }
        ) || matches!(
            &event,
            Event::Response {
                result: HttpResult::Reply { body, .. },
                ..
            } if body.starts_with("<!DOCTYPE")
        );
        let before_outbox = self.outbox_ids();
        let before_dead = self.dead_ids();
        let before_attempts = self.attempts();
        let before_evicted = self.engine.state().dead().evicted_items();
        self.engine.handle(event, self.now);
        let evicted_now = self.engine.state().dead().evicted_items() - before_evicted;
        let after_dead = self.dead_ids();
        // The simulated user never retries or discards, so whatever leaves the queue was evicted.
        self.evicted
            .extend(before_dead.difference(&after_dead).cloned());
        if is_response {
            let after_outbox = self.outbox_ids();
            let mut gone = 0;
            for id in before_outbox.difference(&after_outbox) {
                if after_dead.contains(id) || before_dead.contains(id) {
                    continue;
                }
                if self.server.activities.contains_key(id) {
                    self.acked.insert(id.clone());
                } else {
                    // Dead-lettered and evicted within this one event.
                    gone += 1;
                    self.evicted.insert(id.clone());
                }
            }
            assert!(
                gone <= evicted_now,
                "{gone} items left the queue unaccounted"
            );
        }
        if offline_result {
            assert_eq!(
                self.attempts(),
                before_attempts,
                "offline, unreachable or not-the-API consumed attempts"
            );
            assert_eq!(
                after_dead.len(),
                before_dead.len(),
                "offline, unreachable or not-the-API dead-lettered"
            );
        }
        while let Some(effect) = self.engine.poll_effect() {
            match effect {
                Effect::Persist(_) => {
                    self.persisted = self.engine.state().to_json();
                    let st = self.engine.state();
                    self.stored_sessions = st
                        .outbox()
                        .sessions()
                        .iter()
                        .map(|p| (p.record.id.clone(), p.record.revision))
                        .collect();
                    self.stored_activities = st
                        .outbox()
                        .activities()
                        .iter()
                        .map(|a| a.activity.id.clone())
                        .collect();
                    if let Some(h) = st.hold() {
                        self.held_until = self.held_until.max(h.until);
                    }
                    self.created.extend(
                        st.outbox()
                            .activities()
                            .iter()
                            .map(|a| a.activity.id.clone()),
                    );
                    self.bad.extend(
                        st.outbox()
                            .activities()
                            .iter()
                            .filter(|a| is_bad(&a.activity))
                            .map(|a| a.activity.id.clone()),
                    );
                    for p in st.outbox().sessions() {
                        if p.record.ended_at.is_some() {
                            self.ended_sessions.insert(p.record.id.clone());
                        }
                    }
                    assert!(
                        st.dead().entries().len() <= st.config().dead_letter_cap,
                        "dead-letter cap exceeded"
                    );
                    assert_eq!(
                        st.dead().added(),
                        st.dead().entries().len() as u64
                            + st.dead().evicted()
                            + st.dead().released(),
                        "an eviction went uncounted"
                    );
                    // Killed between the write and its acknowledgement:
                    // nothing of the commit may have left.
                    if !self.healthy && self.chance(3) {
                        return self.kill();
                    }
                    self.engine.persisted();
                }
                Effect::Send(r) => {
                    // Persist before send: what a request carries is in the
                    // snapshot storage holds.
                    let carried = match &r.items {
                        InFlightItems::Session { id, revision } => self
                            .stored_sessions
                            .get(id)
                            .is_some_and(|stored| stored >= revision),
                        InFlightItems::Batch { ids } => {
                            ids.iter().all(|id| self.stored_activities.contains(id))
                        }
                    };
                    assert!(
                        carried,
                        "a request left with items storage does not hold: {:?}",
                        r.items
                    );
                    assert!(
                        self.now >= self.held_until,
                        "a request at {} while the server asked to wait until {} (hold now {:?})",
                        self.now,
                        self.held_until,
                        self.engine.state().hold()
                    );
                    // A second request may only go once the first is presumed lost.
                    let st = self.engine.state();
                    assert_eq!(
                        st.in_flight().map(|f| f.request_id),
                        Some(r.id),
                        "a send without its in-flight marker"
                    );
                    self.in_transit.push(r);
                }
                Effect::Notify(_) => {}
            }
        }
    }

    /// The worker dies: memory is gone, the last persisted snapshot is what the next wake sees.
    fn kill(&mut self) {
        for r in std::mem::take(&mut self.in_transit) {
            if self.chance(50) {
                self.server.apply(&r); // it reached the server; the answer is lost
            }
        }
        // Tunables are not persisted: the shell applies them on every load.
        let config = self.engine.state().config().clone();
        let mut state = State::from_json(&self.persisted).expect("persisted snapshots always load");
        state.set_config(config);
        self.engine = Engine::new(state);
    }

    fn deliver(&mut self) {
        if self.in_transit.is_empty() {
            return;
        }
        let r = self.in_transit.remove(0);
        let roll = if self.healthy {
            100
        } else {
            self.rng.up_to(99)
        };
        let hostile = self.profile == Profile::Hostile;
        let is_batch = r.path.ends_with("/batch");
        let batch_len = if is_batch {
            serde_json::from_str::<ActivityBatch>(&r.body)
                .map(|b| b.activities.len())
                .unwrap_or(0)
        } else {
            0
        };
        let result = match roll {
            0..=7 => HttpResult::NetworkError {
                message: "connection refused".into(),
            },
            8..=11 => {
                self.handle(Event::Offline);
                HttpResult::Offline
            }
            12..=15 => {
                if self.chance(50) {
                    self.server.apply(&r);
                }
                HttpResult::Timeout
            }
            16..=21 => reply(503, None, "upstream down"),
            22..=23 => reply(
                200,
                None,
                "<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>",
            ),
            24..=27 => {
                let after = match self.rng.up_to(3) {
                    0 | 1 => format!("{}", self.rng.up_to(90)),
                    2 => "Thu, 01 Jan 2099 00:00:00 GMT".into(),
                    _ => "Sunday, 06-Nov-94 08:49:37 GMT".into(),
                };
                reply([429, 503][self.rng.up_to(1) as usize], Some(after), "")
            }
            28..=29 => {
                self.signed_out_until = Some(self.now + 60_000);
                reply(
                    401,
                    None,
                    r#"{"code":"unauthorized","message":"token revoked"}"#,
                )
            }
            30..=32 if batch_len > 1 => reply(413, None, ""),
            33..=34 if hostile => reply(400, None, r#"{"code":"bad_request","message":"nope"}"#),
            35..=36 if hostile => {
                self.server.apply(&r);
                reply(200, None, r#"{"garbled":true}"#)
            }
            35..=36 => HttpResult::Redirected,
            37..=40 => {
                self.server.apply(&r); // duplicate delivery
                reply(200, None, &self.server.apply(&r))
            }
            _ => {
                let (status, body) = self.server.answer(&r);
                reply(status, None, &body)
            }
        };
        self.handle(Event::Response {
            request_id: r.id,
            items: r.items.clone(),
            result,
        });
    }

    fn step(&mut self) {
        let slot = self.rng.up_to(3) as usize;
        let tab = self.tabs[slot];
        match self.rng.up_to(99) {
            0..=5 => {
                // Mostly the tab's own PR (a visibility or focus change), sometimes another (navigation).
                let number = if self.chance(80) {
                    tab as u64
                } else {
                    1 + self.rng.up_to(4)
                };
                let mut page = pr(number);
                page.view = [None, Some(PrTab::Conversation), Some(PrTab::Files)]
                    [self.rng.up_to(2) as usize];
                let (visible, focused) = (self.chance(80), self.chance(60));
                self.handle(Event::Page {
                    tab,
                    page: Some(page),
                    visible,
                    focused,
                });
            }
            6..=29 => {
                let kind = match self.rng.up_to(3) {
                    0 => ActivityKind::CommentPosted,
                    1 => ActivityKind::ReviewSubmitted {
                        verdict: ReviewVerdict::Approve,
                    },
                    2 if self.chance(10) => ActivityKind::FileViewed {
                        path: Some(format!("bad/f{}.rs", self.rng.up_to(50))),
                    },
                    2 => ActivityKind::FileViewed {
                        path: Some(format!("src/f{}.rs", self.rng.up_to(50))),
                    },
                    _ => ActivityKind::TabSwitched { tab: PrTab::Checks },
                };
                self.handle(Event::Activity {
                    tab,
                    kind,
                    client_id: None,
                    at: None,
                });
            }
            30..=33 => {
                self.handle(Event::TabClosed { tab });
                // Chrome never reuses a tab id: a new tab gets a new one.
                self.tabs[slot] = self.tabs.iter().max().copied().unwrap_or(0) + 1;
            }
            34..=35 => self.handle(Event::Page {
                tab,
                page: None,
                visible: true,
                focused: true,
            }),
            36..=38 => {
                let state = [IdleState::Active, IdleState::Idle, IdleState::Locked]
                    [self.rng.up_to(2) as usize];
                self.handle(Event::Idle { state });
            }
            39..=40 => self.handle(Event::WindowFocus { tab: Some(tab) }),
            41..=43 => self.handle(Event::UserInput { tab }),
            44..=69 => self.deliver(),
            70..=71 => self.kill(),
            72 => {
                // The clock jumps back (up to two hours): nothing may wait for it.
                self.now -= self.rng.up_to(7_200_000) as i64;
                self.held_until = i64::MIN;
                self.handle(Event::Tick);
            }
            73..=75 => self.handle(Event::Alarm),
            76..=77 => self.handle(Event::Online),
            _ => {
                let to = match self.engine.poll_timeout() {
                    Some(t) if self.chance(50) => t.max(self.now),
                    _ => self.now + self.rng.up_to(5_000) as i64,
                };
                self.now = to;
                self.handle(Event::Tick);
            }
        }
        if let Some(t) = self.signed_out_until {
            if self.now >= t {
                self.signed_out_until = None;
                self.command(|e, now| e.sign_in(now));
            }
        }
    }

    /// Faults stop, the user closes everything; run until quiet.
    fn heal(&mut self) {
        self.healthy = true;
        self.signed_out_until = None;
        self.command(|e, now| e.sign_in(now));
        self.handle(Event::Online);
        for tab in self.tabs {
            self.handle(Event::TabClosed { tab });
        }
        for _ in 0..2_000 {
            if !self.in_transit.is_empty() {
                self.deliver();
                continue;
            }
            if self.engine.state().outbox().is_empty() && self.engine.state().in_flight().is_none()
            {
                return;
            }
            self.now += 60_000;
            self.handle(Event::Alarm);
        }
        panic!(
            "did not drain after healing: {} waiting",
            self.engine.state().outbox().len()
        );
    }

    fn check(&self) {
        let st = self.engine.state();
        let dead = self.dead_ids();
        assert_eq!(
            self.server.conflicts, 0,
            "an id was reused with other content"
        );
        for id in &self.acked {
            assert!(
                !dead.contains(id),
                "{id} is both acknowledged and dead-lettered"
            );
            assert!(
                self.server.activities.contains_key(id),
                "{id} acknowledged but not on the server"
            );
        }
        // A session can be dead-lettered at two revisions, so ids undercount entries.
        assert!(
            self.evicted.len() as u64 <= st.dead().evicted_items(),
            "evictions went uncounted"
        );
        let missing: Vec<&String> = self
            .created
            .iter()
            .filter(|id| {
                !self.acked.contains(*id) && !dead.contains(*id) && !self.evicted.contains(*id)
            })
            .collect();
        assert!(missing.is_empty(), "lost without a trace: {missing:?}");
        for id in &self.ended_sessions {
            let on_server = self
                .server
                .sessions
                .get(id)
                .is_some_and(|s| s.ended_at.is_some());
            match self.profile {
                Profile::Transient => assert!(
                    on_server,
                    "session {id} ended but in progress on the server"
                ),
                Profile::Hostile => assert!(
                    on_server || dead.contains(id) || self.evicted.contains(id),
                    "session {id} end lost"
                ),
            }
        }
        for id in &self.bad {
            assert!(
                !self.server.activities.contains_key(id),
                "{id}: a refused item on the server"
            );
        }
        if self.profile == Profile::Transient {
            // Only what the server refuses is dead-lettered, each alone.
            for e in st.dead().entries() {
                match &e.payload {
                    DeadPayload::Activities { items, .. } => assert!(
                        items.len() == 1 && self.bad.contains(&items[0].id),
                        "transient faults dead-lettered good items: {}",
                        e.reason
                    ),
                    _ => panic!("transient faults dead-lettered: {}", e.reason),
                }
            }
            let dead = self.dead_ids();
            for id in &self.bad {
                assert!(
                    dead.contains(id) || self.evicted.contains(id),
                    "{id}: a refused item lost"
                );
            }
        }
    }
}

fn reply(status: u16, retry_after: Option<String>, body: &str) -> HttpResult {
    HttpResult::Reply {
        status,
        retry_after,
        body: body.to_string(),
    }
}

fn run(seed: u64, steps: usize) -> u64 {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.step();
    }
    sim.heal();
    sim.check();
    sim.events
}

#[test]
fn invariants_hold_over_many_seeds() {
    let steps = 200;
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed.parse().expect("SIM_SEED is a number");
        run(seed, steps);
        return;
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let started = std::time::Instant::now();
    let mut events = 0;
    for seed in 0..seeds {
        let outcome = std::panic::catch_unwind(|| run(seed, steps));
        match outcome {
            Ok(n) => events += n,
            Err(_) => panic!("seed {seed} failed; replay with: SIM_SEED={seed} cargo test -p reviewtime-core --test simulation -- --nocapture"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulation: {seeds} seeds, {events} events in {secs:.1} s ({:.0} seeds/s, {:.0} events/s)",
        seeds as f64 / secs,
        events as f64 / secs
    );
}
