//! A reproducible synthetic workload for benchmarks: a reviewer across five
//! tabs, with activities, visibility changes, closes, alarms, and a server that
//! answers every request. Used natively (`examples/throughput.rs`) and in wasm
//! (the root crate's `tests/throughput.rs`) so both numbers measure the same
//! thing. It drives the engine as a shell does: each event is one commit
//! (handle, persist, persisted, send).

use reviewtime_protocol::{ActivityKind, BatchAck, PullRef, SessionAck, SessionRecord};

use reviewtime_core::rng::{Rng, SplitMix64};
use reviewtime_core::session::PrPage;
use reviewtime_core::state::InFlightItems;
use reviewtime_core::{Effect, Engine, Event, HttpResult, State};

/// Drives a fresh engine through `events` events and returns how many effects it produced.
pub fn run(seed: u64, events: usize) -> usize {
    let mut rng = SplitMix64::new(seed);
    let mut engine = Engine::new(State::new("bench", seed));
    let mut now = 1_700_000_000_000i64;
    let mut effects = 0;
    let mut pending: Vec<(u64, String, String, InFlightItems)> = Vec::new();
    engine.sign_in(now);
    let mut tabs = [1i64, 2, 3, 4, 5];
    for _ in 0..events {
        now += rng.up_to(400) as i64;
        let slot = rng.up_to(4) as usize;
        let tab = tabs[slot];
        let event = match rng.up_to(99) {
            0..=9 => Event::Page {
                tab,
                page: Some(PrPage {
                    pr: PullRef {
                        host: "github.com".into(),
                        owner: "octo".into(),
                        repo: "widgets".into(),
                        number: tab as u64,
                    },
                    view: None,
                }),
                visible: true,
                focused: rng.up_to(1) == 0,
            },
            10..=69 => Event::Activity {
                tab,
                kind: ActivityKind::CommentPosted,
                client_id: None,
                at: None,
            },
            70..=71 => {
                tabs[slot] += 5;
                Event::TabClosed { tab }
            }
            72..=73 => Event::Alarm,
            _ => match pending.pop() {
                Some(req) => Event::Response {
                    request_id: req.0,
                    items: req.3,
                    result: ok(&req.1, &req.2),
                },
                None => Event::Tick,
            },
        };
        engine.handle(event, now);
        while let Some(effect) = engine.poll_effect() {
            effects += 1;
            match effect {
                Effect::Persist(_) => engine.persisted(),
                Effect::Send(r) => pending.push((r.id, r.path, r.body, r.items)),
                Effect::Notify(_) => {}
            }
        }
    }
    effects
}

fn ok(path: &str, body: &str) -> HttpResult {
    let body = if path.ends_with("/batch") {
        let n = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("activities").and_then(|a| a.as_array()).map(Vec::len))
            .unwrap_or(0);
        serde_json::to_string(&BatchAck {
            accepted: n as u32,
            ..BatchAck::default()
        })
    } else {
        match serde_json::from_str::<SessionRecord>(body) {
            Ok(session) => serde_json::to_string(&SessionAck {
                session,
                applied: true,
            }),
            Err(e) => Err(e),
        }
    };
    HttpResult::Reply {
        status: 200,
        retry_after: None,
        body: body.unwrap_or_default(),
    }
}
