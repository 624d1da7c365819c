//! Events per second through the core engine inside the browser's wasm.
//! In the test command it runs a small workload as a smoke check; the benchmark
//! command sets `REVIEWTIME_BENCH_EVENTS` at compile time for the real figure.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn engine_throughput_in_wasm() {
    let events: usize = option_env!("REVIEWTIME_BENCH_EVENTS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let mut rates = Vec::new();
    for seed in 0..5 {
        let started = js_sys::Date::now();
        let effects = reviewtime_workload::run(seed, events);
        let ms = (js_sys::Date::now() - started).max(1.0);
        assert!(effects > events, "every event produces effects");
        rates.push(events as f64 / ms * 1000.0);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    web_sys::console::log_1(
        &format!(
            "{{\"measure\":\"core_wasm\",\"events\":{events},\"median_events_per_sec\":{:.0},\"min\":{:.0},\"max\":{:.0}}}",
            rates[2], rates[0], rates[4]
        )
        .into(),
    );
}
