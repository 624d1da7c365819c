//! Load generator for the batch endpoint and session updates, on 127.0.0.1.
//!
//! `cargo run --release -p reviewtime-server --example loadgen -- URL[,URL…] TOKEN [SECONDS] [STORE] [RUNS]`
//! Several URLs are instances sharing one database: requests go to them
//! round-robin, as a load balancer would send them. Each ingest figure is the
//! median of RUNS runs (default 3) of SECONDS each (default 5), with every
//! activity new. Prints one JSON line per measurement, tagged with STORE
//! (default `sqlite`) and the number of instances.
//!
//! It writes far faster than the server's default rate limits allow: start
//! the server with them off (`REVIEWTIME_RATE_BURST=0
//! REVIEWTIME_ADDRESS_RATE_BURST=0`, or `--rate-burst 0 --address-rate-burst 0`).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reviewtime_protocol::{
    Activity, ActivityBatch, ActivityKind, BatchAck, PullRef, SessionRecord,
};

const LIMITED: &str =
    "the server rate-limits writes: start it with --rate-burst 0 --address-rate-burst 0";

fn batch(run: &str, client: usize, n: usize) -> ActivityBatch {
    ActivityBatch {
        activities: (0..100)
            .map(|i| Activity {
                id: format!("lg-{run}-{client}-{n}-{i}"),
                session_id: format!("lg-s-{client}"),
                at: 1_700_000_000_000 + i as i64,
                kind: ActivityKind::FileViewed {
                    path: Some(format!("src/module_{i}/file.rs")),
                },
            })
            .collect(),
    }
}

async fn ingest(urls: &[String], token: &str, clients: usize, secs: u64, tag: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let urls: Vec<String> = urls
            .iter()
            .map(|u| format!("{u}/api/v1/activities/batch"))
            .collect();
        let token = token.to_string();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut stored = 0u64;
            let mut n = 0;
            while Instant::now() < deadline {
                let body = batch(&tag, c, n);
                let r = http
                    .post(&urls[(c + n) % urls.len()])
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_ne!(r.status(), 429, "{LIMITED}");
                let ack: BatchAck = r.json().await.unwrap();
                assert_eq!(ack.accepted, 100, "every activity is new");
                stored += u64::from(ack.accepted);
                n += 1;
            }
            stored
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let urls: Vec<String> = args[1].split(',').map(str::to_string).collect();
    let token = &args[2];
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let store = args.get(4).map_or("sqlite", String::as_str);
    let runs: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let instances = urls.len();
    let tags = format!("\"store\":\"{store}\",\"instances\":{instances}");
    for clients in [1, 16] {
        let mut rates = Vec::new();
        for run in 0..runs {
            let tag = format!("{clients}c{run}");
            rates.push(ingest(&urls, token, clients, secs, &tag).await);
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        let (median, min, max) = (rates[rates.len() / 2], rates[0], rates[rates.len() - 1]);
        println!(
            "{{\"measure\":\"ingest\",{tags},\"clients\":{clients},\"runs\":{runs},\"secs\":{secs},\"activities_per_sec\":{median:.0},\"min\":{min:.0},\"max\":{max:.0}}}"
        );
    }
    let http = reqwest::Client::new();
    let mut lat = Vec::new();
    for i in 0..2000u64 {
        let s = SessionRecord {
            id: format!("lg-sess-{}", i % 200),
            pr: PullRef {
                host: "github.com".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: 1 + i % 200,
            },
            started_at: 1_700_000_000_000,
            ended_at: None,
            wall_secs: i,
            active_secs: i / 2,
            revision: i + 1,
        };
        let t = Instant::now();
        let url = &urls[i as usize % instances];
        let r = http
            .put(format!("{url}/api/v1/sessions/{}", s.id))
            .bearer_auth(token)
            .json(&s)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 429, "{LIMITED}");
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!("{{\"measure\":\"session_update_ms\",{tags},\"n\":{},\"p50\":{:.3},\"p99\":{:.3},\"min\":{:.3},\"max\":{:.3}}}", lat.len(), p(0.5), p(0.99), lat[0], lat[lat.len() - 1]);
}
