//! A test harness: an engine, a clock, and helpers to answer requests.
#![allow(dead_code, clippy::unwrap_used, clippy::new_without_default)]

use reviewtime_core::protocol::{BatchAck, PullRef, SessionAck, SessionRecord};
use reviewtime_core::session::PrPage;
use reviewtime_core::{Effect, Engine, Event, HttpResult, Request, State};

pub struct Harness {
    pub engine: Engine,
    pub now: i64,
}

pub const T0: i64 = 1_700_000_000_000;

pub fn pr(n: u64) -> PrPage {
    PrPage {
        pr: PullRef {
            host: "github.com".into(),
            owner: "octo".into(),
            repo: "widgets".into(),
            number: n,
        },
        view: None,
    }
}

impl Harness {
    pub fn new() -> Self {
        let mut h = Harness {
            engine: Engine::new(State::new("test", 1)),
            now: T0,
        };
        h.command(|e, now| e.sign_in(now));
        h
    }

    /// Handles an event in a commit of its own and returns its effects.
    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        self.engine.handle(event, self.now);
        self.effects()
    }

    /// Runs one of the engine's command methods in a commit of its own and
    /// returns the requests it released.
    pub fn command(&mut self, f: impl FnOnce(&mut Engine, i64)) -> Vec<Request> {
        f(&mut self.engine, self.now);
        Self::sends(&self.effects())
    }

    /// Polls the commit's effects as a shell does: a persist is acknowledged
    /// as soon as it is seen (the write "succeeded"), which releases the rest.
    pub fn effects(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        while let Some(effect) = self.engine.poll_effect() {
            if matches!(effect, Effect::Persist(_)) {
                self.engine.persisted();
            }
            out.push(effect);
        }
        out
    }

    pub fn sends(effects: &[Effect]) -> Vec<Request> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn handle_sends(&mut self, event: Event) -> Vec<Request> {
        Self::sends(&self.handle(event))
    }

    pub fn advance(&mut self, ms: i64) -> Vec<Request> {
        self.now += ms;
        self.handle_sends(Event::Tick)
    }

    pub fn open(&mut self, tab: i64, n: u64) -> Vec<Request> {
        self.handle_sends(Event::Page {
            tab,
            page: Some(pr(n)),
            visible: true,
            focused: true,
        })
    }

    pub fn reply(
        &mut self,
        req: &Request,
        status: u16,
        retry_after: Option<&str>,
        body: String,
    ) -> Vec<Request> {
        self.handle_sends(Event::Response {
            request_id: req.id,
            items: req.items.clone(),
            result: HttpResult::Reply {
                status,
                retry_after: retry_after.map(str::to_string),
                body,
            },
        })
    }

    /// What a healthy server answers to `req`.
    pub fn ok_body(req: &Request) -> String {
        if req.path.ends_with("/batch") {
            let n = serde_json::from_str::<serde_json::Value>(&req.body).unwrap()["activities"]
                .as_array()
                .unwrap()
                .len();
            serde_json::to_string(&BatchAck {
                accepted: n as u32,
                ..BatchAck::default()
            })
            .unwrap()
        } else {
            let session: SessionRecord = serde_json::from_str(&req.body).unwrap();
            serde_json::to_string(&SessionAck {
                session,
                applied: true,
            })
            .unwrap()
        }
    }

    /// The server refuses the token of `req` (401 with its JSON error).
    pub fn unauthorized(&mut self, req: &Request) -> Vec<Request> {
        self.reply(
            req,
            401,
            None,
            r#"{"code":"unauthorized","message":"unknown token"}"#.into(),
        )
    }

    /// The worker dies: the next wake loads the last persisted snapshot.
    pub fn reload(&mut self) {
        let saved = self.engine.state().to_json();
        self.engine = Engine::new(State::from_json(&saved).unwrap());
    }

    pub fn ok(&mut self, req: &Request) -> Vec<Request> {
        let body = Self::ok_body(req);
        self.reply(req, 200, None, body)
    }
}
