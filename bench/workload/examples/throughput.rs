//! Events per second through the engine, natively:
//! `cargo run --release -p reviewtime-workload --example throughput -- [EVENTS]`.

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut rates = Vec::new();
    for seed in 0..5 {
        let started = std::time::Instant::now();
        let effects = reviewtime_workload::run(seed, events);
        let secs = started.elapsed().as_secs_f64();
        rates.push(events as f64 / secs);
        assert!(effects > events, "every event produces effects");
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"measure\":\"core_native\",\"events\":{events},\"median_events_per_sec\":{:.0},\"min\":{:.0},\"max\":{:.0}}}",
        rates[2], rates[0], rates[4]
    );
}
