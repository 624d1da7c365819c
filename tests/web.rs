//! In-browser tests of the wasm shell (`wasm-pack test --headless --chrome`).
//!
//! `tests/run-wasm.sh` starts the real server on 127.0.0.1 and passes its URL
//! at compile time in `REVIEWTIME_TEST_SERVER`.
#![cfg(target_arch = "wasm32")]

use reviewtime_ext::transport;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> &'static str {
    option_env!("REVIEWTIME_TEST_SERVER").unwrap_or("http://127.0.0.1:9")
}

#[wasm_bindgen_test]
async fn fetches_health_from_the_real_local_server() {
    let url = format!("{}{}", server(), reviewtime_protocol::routes::HEALTH);
    let reply = transport::send("GET", &url, None, None, 5_000)
        .await
        .expect("the local server answers");
    assert_eq!(reply.status, 200);
    let health: reviewtime_protocol::Health =
        serde_json::from_str(&reply.body).expect("health JSON");
    assert_eq!(health.status, "ok");
}

#[wasm_bindgen_test]
async fn unknown_token_gets_401_with_a_json_error() {
    let url = format!("{}{}", server(), reviewtime_protocol::routes::WHOAMI);
    let reply = transport::send("GET", &url, Some("rt_not_a_token"), None, 5_000)
        .await
        .expect("the local server answers");
    assert_eq!(reply.status, 401);
    let err: reviewtime_protocol::ApiError = serde_json::from_str(&reply.body).expect("error JSON");
    assert_eq!(err.code, "unauthorized");
}

#[wasm_bindgen_test]
async fn a_port_nobody_listens_on_is_a_network_error_not_a_panic() {
    let err = transport::send("GET", "http://127.0.0.1:9/", None, None, 5_000)
        .await
        .expect_err("nothing listens on port 9");
    assert!(
        matches!(err, reviewtime_ext::error::ShellError::Network(_)),
        "{err:?}"
    );
}

/// Hostile input to the worker's entry points, from a fixed seed with a fixed
/// budget: random JSON shapes around the real message types, wrong types,
/// huge and truncated strings, odd numbers. Every call must answer
/// `{ok, error}` and never trap (a trap would stop the worker, and this test).
/// Chrome's APIs are absent on the test page, so a message that parses then
/// fails at its first `chrome.*` call: that path must not trap either.
#[wasm_bindgen_test]
async fn hostile_messages_and_events_get_answers_never_a_trap() {
    use reviewtime_core::rng::{Rng, SplitMix64};
    use wasm_bindgen::JsValue;
    const BUDGET: usize = 3_000;
    let mut rng = SplitMix64::new(0x5eed_f022);
    let types = [
        "status",
        "page",
        "input",
        "activity",
        "sync_now",
        "dead_letters",
        "retry_dead",
        "discard_dead",
        "export_dead",
        "get_settings",
        "set_settings",
        "test_connection",
        "snapshot",
        "browser_event",
        "nope",
        "",
    ];
    fn value(rng: &mut SplitMix64, depth: u32) -> String {
        match rng.up_to(if depth > 2 { 5 } else { 8 }) {
            0 => "null".into(),
            1 => ["true", "false"][rng.up_to(1) as usize].into(),
            2 => [
                "0",
                "-1",
                "1e308",
                "-9007199254740993",
                "3.5",
                "18446744073709551616",
            ][rng.up_to(5) as usize]
                .into(),
            3 => format!("{:?}", "x".repeat(rng.up_to(3) as usize * 40_000)),
            4 => format!(
                "{:?}",
                [
                    "https://github.com/o/r/pull/1",
                    "javascript:alert(1)",
                    "\u{0}",
                    "é\u{202e}"
                ][rng.up_to(3) as usize]
            ),
            5 => format!(
                "[{}]",
                (0..rng.up_to(3))
                    .map(|_| value(rng, depth + 1))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => {
                let keys = [
                    "url", "visible", "focused", "activity", "id", "at", "type", "settings",
                    "event", "source", "state", "tab_id", "verdict", "path",
                ];
                let fields: Vec<String> = (0..rng.up_to(4))
                    .map(|_| {
                        format!(
                            "{:?}:{}",
                            keys[rng.up_to(keys.len() as u64 - 1) as usize],
                            value(rng, depth + 1)
                        )
                    })
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
    let mut answered = 0;
    for i in 0..BUDGET {
        let kind = types[rng.up_to(types.len() as u64 - 1) as usize];
        let mut text = format!("{{\"type\":{kind:?},\"x\":{}}}", value(&mut rng, 0));
        if rng.up_to(3) == 0 {
            text = format!("{{\"type\":{kind:?}}}");
        }
        if rng.up_to(9) == 0 {
            let mut cut = rng.up_to(text.len() as u64) as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut); // truncated: not even JSON
        }
        let message = js_sys::JSON::parse(&text).unwrap_or_else(|_| JsValue::from_str(&text));
        let sender = js_sys::JSON::parse(&format!(
            "{{\"tab_id\":{},\"extension_page\":{}}}",
            rng.up_to(5),
            rng.up_to(1) == 0
        ))
        .unwrap_or(JsValue::NULL);
        let answer = reviewtime_ext::dispatch_message(message, sender).await;
        let ok = js_sys::Reflect::get(&answer, &"ok".into())
            .ok()
            .and_then(|v| v.as_bool());
        assert!(ok.is_some(), "input {i} got no {{ok}} answer: {text:.200}");
        if i % 5 == 0 {
            let event = js_sys::JSON::parse(&format!(
                "{{\"source\":{kind:?},\"x\":{}}}",
                value(&mut rng, 0)
            ))
            .unwrap_or(JsValue::UNDEFINED);
            let answer = reviewtime_ext::dispatch_event(event).await;
            assert!(js_sys::Reflect::get(&answer, &"ok".into())
                .ok()
                .and_then(|v| v.as_bool())
                .is_some());
        }
        answered += 1;
    }
    assert_eq!(answered, BUDGET);
}
