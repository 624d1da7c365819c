//! Property-based fuzzing of the HTTP API (proptest, fixed seed, fixed
//! budget): every write endpoint and the reads' query strings get thousands
//! of malformed, oversized, truncated and hostile inputs, in process through
//! the real router and a real store. For every one:
//! - the answer is never a 5xx, and the server never panics;
//! - every refusal is a JSON error with a code;
//! - a refused input changes nothing stored: the user's sessions, activities
//!   and totals read the same before and after;
//! - an accepted batch or beacon accounts for every activity sent exactly
//!   once (`accepted + duplicates + conflicts + rejected`), stores exactly
//!   `accepted` new ones, and rejects only ids it was sent.
//!
//! Inputs start from plausible records and mutate them (fields removed or
//! replaced by extreme numbers, hostile strings, wrong types), then the
//! bytes themselves (truncated, garbage, invalid UTF-8, deeply nested,
//! oversized), so that some inputs are accepted and most are refused at
//! every layer: body limits, JSON parsing, bounds, credentials, capability
//! scope, the store's revision rules.
//!
//! SQLite runs in the test command with [`CASES`] inputs per target;
//! PostgreSQL (when `REVIEWTIME_TEST_PG` names a server) with [`PG_CASES`].

#![allow(clippy::unwrap_used)]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::{Backend, Db};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reviewtime_protocol::{ApiError, BatchAck};
use reviewtime_server::rate::RateLimits;
use reviewtime_server::store::postgres::PgStore;
use reviewtime_server::store::sqlite::SqliteStore;
use reviewtime_server::store::{
    ActivityFilter, ActivityPage, SessionFilter, SessionPage, Store, UserId,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

/// Inputs per target on SQLite.
const CASES: u32 = 2_000;
/// Inputs per target on PostgreSQL.
const PG_CASES: u32 = 500;
/// The seed: the same inputs on every run (apart from times, which are
/// relative to the clock).
const SEED: [u8; 32] = *b"reviewtime issue 14 fuzz seed 01";
/// The registered session a beacon capability may write.
const SESSION: &str = "fz1";
const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The four targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Session,
    Batch,
    Beacon,
    Reads,
}

struct Fixture {
    app: Router,
    token: String,
    beacon_key: String,
    now: i64,
    /// When [`SESSION`] started (a beacon's record must repeat it).
    started: i64,
    store: Arc<dyn Store>,
    user: UserId,
    /// What the user's data read as after the last accepted input.
    snapshot: Mutex<Snapshot>,
    /// Answers by status, for the report.
    tally: Mutex<BTreeMap<u16, u32>>,
    /// Accepted batches that rejected some of their items.
    partly_rejected: Mutex<u32>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.to_vec())
}

fn request(method: Method, uri: &str, token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        r = r.header("authorization", format!("Bearer {token}"));
    }
    r.header("content-type", "text/plain")
        .body(Body::from(body))
        .unwrap()
}

/// What is stored for the user: every session and activity, as the store
/// reads them (straight from the store: the per-input check must be cheap).
async fn snapshot(f: &Fixture) -> Snapshot {
    let sessions = f
        .store
        .sessions(
            f.user,
            &SessionFilter {
                limit: 10_000,
                ..SessionFilter::default()
            },
        )
        .await
        .unwrap();
    let activities = f
        .store
        .activities(
            f.user,
            &ActivityFilter {
                limit: 10_000,
                ..ActivityFilter::default()
            },
        )
        .await
        .unwrap();
    (sessions, activities)
}

type Snapshot = (SessionPage, ActivityPage);

async fn fixture(backend: Backend) -> Option<(Fixture, Db)> {
    let db = Db::fresh(backend, "fuzz").await?;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open(&db.data.join("fuzz.sqlite3")).unwrap()),
        Backend::Postgres => Arc::new(
            PgStore::connect(db.url.as_deref().unwrap(), 4)
                .await
                .unwrap(),
        ),
    };
    let pairing = reviewtime_server::first_run(store.as_ref(), "http://fuzz")
        .await
        .unwrap()
        .unwrap();
    let app = reviewtime_server::app(store.clone(), Arc::new(RateLimits::off()));
    let user = store.user_id("local").await.unwrap().unwrap();
    let now = now_ms();
    let started = now - 3_600_000;
    let empty = (
        SessionPage {
            sessions: Vec::new(),
            total: 0,
            next_offset: None,
        },
        ActivityPage {
            activities: Vec::new(),
            total: 0,
        },
    );
    let mut f = Fixture {
        app,
        store,
        user,
        token: pairing.token,
        beacon_key: pairing.beacon_key,
        now,
        started,
        snapshot: Mutex::new(empty),
        tally: Mutex::new(BTreeMap::new()),
        partly_rejected: Mutex::new(0),
    };
    // The session a beacon capability speaks for, registered by the client.
    let body = json!({
        "id": SESSION, "pr": {"host": "github.com", "owner": "octo", "repo": "widgets", "number": 7},
        "started_at": started, "ended_at": null, "wall_secs": 60, "active_secs": 30, "revision": 1,
        "beacon_hash": hex(&Sha256::digest(SECRET.as_bytes())),
    });
    let (status, _) = send(
        &f.app,
        request(
            Method::PUT,
            &format!("/api/v1/sessions/{SESSION}"),
            Some(&f.token),
            body.to_string().into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 200);
    f.snapshot = Mutex::new(snapshot(&f).await);
    Some((f, db))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- strategies ----

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(SESSION.to_string()),
        "[a-z0-9-]{1,12}",
        "\\PC{0,40}",
        ".{0,24}",
        Just("x".repeat(513)),
        Just("é".repeat(300)),
        Just("\u{0}".to_string()),
        Just("a\nb\tc".to_string()),
        Just("'; DROP TABLE sessions; --".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("\u{202e}\u{fffd}\u{feff}".to_string()),
        Just("%00%ff".to_string()),
    ]
}

fn hostile_number(now: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(1u64 << 31)),
        Just(json!((1u64 << 31) + 1)),
        Just(json!(1u64 << 53)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-2 * 86_400_000i64..2 * 86_400_000).prop_map(move |d| json!(now + d)),
        (0u64..5_000).prop_map(|n| json!(n)),
    ]
}

fn hostile_value(now: i64) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => hostile_number(now),
        3 => hostile_string().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What happens to one field of a plausible record.
#[derive(Debug, Clone)]
enum Edit {
    Remove(String),
    Replace(String, Value),
}

fn apply(mut v: Value, edits: Vec<Edit>) -> Value {
    for edit in edits {
        let (path, value) = match edit {
            Edit::Remove(path) => (path, None),
            Edit::Replace(path, value) => (path, Some(value)),
        };
        let mut target = &mut v;
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().unwrap();
        for p in parts {
            if !target.get(p).is_some_and(Value::is_object) {
                target[p] = json!({});
            }
            target = &mut target[p];
        }
        if let Some(o) = target.as_object_mut() {
            match value {
                None => {
                    o.remove(last);
                }
                Some(value) => {
                    o.insert(last.to_string(), value);
                }
            }
        }
    }
    v
}

fn edits(now: i64, fields: &'static [&'static str]) -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        1 => prop::sample::select(fields).prop_map(|f| Edit::Remove(f.to_string())),
        4 => (prop::sample::select(fields), hostile_value(now))
            .prop_map(|(f, v)| Edit::Replace(f.to_string(), v)),
    ];
    // Half the records stay plausible, so the store is reached too.
    prop_oneof![
        1 => Just(Vec::new()),
        1 => prop::collection::vec(edit, 1..4),
    ]
}

const SESSION_FIELDS: &[&str] = &[
    "id",
    "pr",
    "pr.host",
    "pr.owner",
    "pr.repo",
    "pr.number",
    "started_at",
    "ended_at",
    "wall_secs",
    "active_secs",
    "revision",
    "beacon_hash",
    "extra",
];

/// A session record, plausible before its edits: consistent times, a
/// revision near the registered one (sometimes far), maybe a beacon hash.
fn session_value(now: i64, started: i64) -> impl Strategy<Value = Value> {
    let base = (
        prop_oneof![Just(SESSION.to_string()), "s[0-9]{1,2}"],
        prop_oneof![Just(started), (0i64..86_400_000).prop_map(move |a| now - a)],
        0u64..4_000,
        any::<bool>(),
        prop_oneof![4 => 1u64..20, 1 => 1u64..3_000],
        prop_oneof![
            Just(None),
            Just(Some(hex(&Sha256::digest(SECRET.as_bytes())))),
            "[0-9a-f]{64}".prop_map(Some),
        ],
    )
        .prop_map(move |(id, started_at, wall, ended, revision, hash)| {
            let mut v = json!({
                "id": id,
                "pr": {"host": "github.com", "owner": "octo", "repo": "widgets", "number": 7},
                "started_at": started_at,
                "ended_at": ended.then_some(started_at + 1000 * wall as i64),
                "wall_secs": wall,
                "active_secs": wall / 2,
                "revision": revision,
            });
            if let Some(hash) = hash {
                v["beacon_hash"] = json!(hash);
            }
            v
        });
    (base, edits(now, SESSION_FIELDS)).prop_map(|(v, e)| apply(v, e))
}

const ACTIVITY_FIELDS: &[&str] = &["id", "session_id", "at", "type", "verdict", "path", "tab"];

fn activity_value(now: i64) -> impl Strategy<Value = Value> {
    let base = (
        "a[0-9]{1,3}",
        prop_oneof![Just(SESSION.to_string()), "s[0-9]"],
        0i64..86_400_000,
        prop::sample::select(vec![
            json!({"type": "comment_posted"}),
            json!({"type": "review_submitted", "verdict": "approve"}),
            json!({"type": "review_submitted"}),
            json!({"type": "file_viewed", "path": "src/lib.rs"}),
            json!({"type": "file_viewed"}),
            json!({"type": "tab_switched", "tab": "files"}),
            json!({"type": "tab_switched", "tab": "nowhere"}),
            json!({"type": "unknown_kind"}),
        ]),
    )
        .prop_map(move |(id, session_id, ago, kind)| {
            let mut v = kind;
            v["id"] = json!(id);
            v["session_id"] = json!(session_id);
            v["at"] = json!(now - ago);
            v
        });
    (base, edits(now, ACTIVITY_FIELDS)).prop_map(|(v, e)| apply(v, e))
}

/// How a JSON value becomes the body's bytes.
#[derive(Debug, Clone)]
enum Encoding {
    Json,
    Truncated(prop::sample::Index),
    Garbage(Vec<u8>),
    InvalidUtf8(prop::sample::Index),
    Deep(usize),
    Oversized(usize),
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        8 => Just(Encoding::Json),
        3 => any::<prop::sample::Index>().prop_map(Encoding::Truncated),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Encoding::Garbage),
        1 => any::<prop::sample::Index>().prop_map(Encoding::InvalidUtf8),
        1 => (100usize..100_000).prop_map(Encoding::Deep),
        1 => (60_000usize..300_000).prop_map(Encoding::Oversized),
    ]
}

fn encode(value: &Value, how: &Encoding) -> Vec<u8> {
    let json = value.to_string().into_bytes();
    match how {
        Encoding::Json => json,
        Encoding::Truncated(at) => json[..at.index(json.len().max(1)).min(json.len())].to_vec(),
        Encoding::Garbage(bytes) => bytes.clone(),
        Encoding::InvalidUtf8(at) => {
            let mut bytes = json;
            let i = at.index(bytes.len().max(1)).min(bytes.len());
            bytes.splice(i..i, [0xff, 0xfe, 0xc0]);
            bytes
        }
        Encoding::Deep(n) => {
            let mut bytes = b"{\"activities\":".to_vec();
            bytes.extend(std::iter::repeat_n(b'[', *n));
            bytes
        }
        Encoding::Oversized(n) => {
            let mut v = value.clone();
            if let Some(o) = v.as_object_mut() {
                o.insert("pad".into(), json!("x".repeat(*n)));
                v.to_string().into_bytes()
            } else {
                "x".repeat(*n).into_bytes()
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters, so any string is a valid URI part.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Which credential a request carries.
#[derive(Debug, Clone)]
enum Credential {
    Token,
    None,
    BeaconKey,
    Other(String),
}

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        8 => Just(Credential::Token),
        1 => Just(Credential::None),
        1 => Just(Credential::BeaconKey),
        1 => "[ -~]{0,80}".prop_map(Credential::Other),
    ]
}

fn auth<'a>(f: &'a Fixture, c: &'a Credential) -> Option<&'a str> {
    match c {
        Credential::Token => Some(&f.token),
        Credential::None => None,
        Credential::BeaconKey => Some(&f.beacon_key),
        Credential::Other(s) => Some(s),
    }
}

/// One fuzzed request, described (so proptest can print and shrink it).
#[derive(Debug, Clone)]
struct Input {
    method: Method,
    uri: String,
    credential: Credential,
    body: Value,
    encoding: Encoding,
}

fn session_input(now: i64, started: i64) -> impl Strategy<Value = Input> {
    (
        session_value(now, started),
        prop_oneof![3 => Just(None), 1 => hostile_string().prop_map(Some)],
        credential(),
        encoding(),
    )
        .prop_map(|(body, path_id, credential, encoding)| {
            let id = path_id.unwrap_or_else(|| body["id"].as_str().unwrap_or("").to_string());
            Input {
                method: Method::PUT,
                uri: format!("/api/v1/sessions/{}", pct(&id)),
                credential,
                body,
                encoding,
            }
        })
}

fn batch_input(now: i64) -> impl Strategy<Value = Input> {
    let activities = prop_oneof![
        8 => prop::collection::vec(activity_value(now), 0..6).prop_map(Value::Array),
        1 => prop::collection::vec(activity_value(now), 101..102).prop_map(Value::Array),
        1 => hostile_value(now),
    ];
    (
        activities,
        edits(now, &["activities", "extra"]),
        credential(),
        encoding(),
    )
        .prop_map(|(activities, e, credential, encoding)| Input {
            method: Method::POST,
            uri: "/api/v1/activities/batch".into(),
            credential,
            body: apply(json!({ "activities": activities }), e),
            encoding,
        })
}

const BEACON_FIELDS: &[&str] = &[
    "key",
    "session_id",
    "beacon_secret",
    "sessions",
    "activities",
];

fn beacon_input(now: i64, started: i64, beacon_key: String) -> impl Strategy<Value = Input> {
    let sessions = prop::collection::vec(session_value(now, started), 0..3);
    let activities = prop::collection::vec(activity_value(now), 0..4);
    let credential = prop_oneof![
        3 => Just(json!({"session_id": SESSION, "beacon_secret": SECRET})),
        1 => Just(json!({"key": beacon_key})),
        1 => (prop_oneof![Just(SESSION.to_string()), hostile_string()], hostile_string())
            .prop_map(|(id, secret)| json!({"session_id": id, "beacon_secret": secret})),
        1 => hostile_string().prop_map(|key| json!({"key": key})),
    ];
    (
        sessions,
        activities,
        credential,
        edits(now, BEACON_FIELDS),
        encoding(),
    )
        .prop_map(|(sessions, activities, credential, e, encoding)| {
            let mut body = credential;
            body["sessions"] = Value::Array(sessions);
            body["activities"] = Value::Array(activities);
            Input {
                method: Method::POST,
                uri: "/api/v1/beacon".into(),
                credential: Credential::None,
                body: apply(body, e),
                encoding,
            }
        })
}

fn reads_input(now: i64) -> impl Strategy<Value = Input> {
    let key = prop_oneof![
        4 => prop::sample::select(&[
            "repo", "pr", "from", "to", "status", "limit", "offset", "days", "session_id",
        ][..]).prop_map(str::to_string),
        1 => hostile_string(),
    ];
    let value = prop_oneof![
        hostile_string(),
        hostile_number(now).prop_map(|v| v.to_string()),
        Just("octo/widgets".to_string()),
        Just("in_progress".to_string()),
    ];
    let pairs = prop::collection::vec((key, value), 0..5);
    let path = prop::sample::select(
        &[
            "/api/v1/sessions",
            "/api/v1/activities",
            "/api/v1/totals",
            "/api/v1/whoami",
            "/api/v1/health",
            "/api/v1/nowhere",
            "/",
        ][..],
    );
    let method =
        prop_oneof![8 => Just(Method::GET), 1 => Just(Method::DELETE), 1 => Just(Method::PATCH)];
    (
        path,
        pairs,
        prop::option::of("[ -~]{0,60}"),
        credential(),
        method,
    )
        .prop_map(|(path, pairs, raw, credential, method)| {
            let query = match raw {
                // Raw printable text, with what a URI cannot hold escaped.
                Some(raw) => raw
                    .bytes()
                    .map(|b| match b {
                        b' ' | b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                        | b'#' => format!("%{b:02X}"),
                        _ => (b as char).to_string(),
                    })
                    .collect(),
                None => pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            };
            Input {
                method,
                uri: format!("{path}?{query}"),
                credential,
                body: Value::Null,
                encoding: Encoding::Garbage(Vec::new()),
            }
        })
}

/// Sends one input and checks the answer and the stored data.
async fn check(f: &Fixture, input: &Input) -> Result<(), TestCaseError> {
    let body = encode(&input.body, &input.encoding);
    let token = auth(f, &input.credential);
    let (status, answer) = send(
        &f.app,
        request(input.method.clone(), &input.uri, token, body.clone()),
    )
    .await;
    *f.tally.lock().unwrap().entry(status.as_u16()).or_default() += 1;
    let text = String::from_utf8_lossy(&answer);
    prop_assert!(
        !status.is_server_error(),
        "{} {} answered {status}: {text}",
        input.method,
        input.uri
    );
    let after = snapshot(f).await;
    if status.is_success() {
        let before = std::mem::replace(&mut *f.snapshot.lock().unwrap(), after.clone());
        if input.method == Method::POST {
            check_batch_ack(f, &body, &answer, &before, &after)?;
        }
        return Ok(());
    }
    let error: Result<ApiError, _> = serde_json::from_slice(&answer);
    prop_assert!(
        error
            .as_ref()
            .is_ok_and(|e| !e.code.is_empty() && !e.message.is_empty()),
        "{status} is not a JSON error with a code: {text}"
    );
    let before = f.snapshot.lock().unwrap().clone();
    prop_assert!(
        after == before,
        "refused ({status} {text}) but the stored data changed"
    );
    Ok(())
}

/// An accepted batch or beacon (`body` as sent): its [`BatchAck`] accounts
/// for each activity once, and the store gained exactly `accepted` of them.
fn check_batch_ack(
    f: &Fixture,
    body: &[u8],
    answer: &[u8],
    before: &Snapshot,
    after: &Snapshot,
) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(answer);
    let ack: BatchAck = serde_json::from_slice(answer)
        .map_err(|e| TestCaseError::fail(format!("200 is not a BatchAck ({e}): {text}")))?;
    // Read as the server reads it: other fields skipped unread (serde_json
    // does not check the UTF-8 of what it skips).
    #[derive(serde::Deserialize)]
    struct Sent {
        #[serde(default)]
        activities: Vec<Value>,
    }
    let items = serde_json::from_slice::<Sent>(body)
        .map_err(|e| TestCaseError::fail(format!("accepted a body it cannot read: {e}")))?
        .activities;
    prop_assert_eq!(
        ack.accounted(),
        items.len(),
        "accepted + duplicates + conflicts + rejected differs from the items sent: {}",
        text
    );
    prop_assert_eq!(
        after.1.total,
        before.1.total + u64::from(ack.accepted),
        "the store gained other than `accepted` activities: {}",
        text
    );
    for r in &ack.rejected {
        prop_assert!(
            items.iter().any(|i| i["id"].as_str() == Some(&r.id)),
            "rejected an id that was not sent: {}",
            text
        );
        prop_assert!(!r.code.is_empty() && !r.reason.is_empty(), "{}", text);
    }
    if !ack.rejected.is_empty() {
        *f.partly_rejected.lock().unwrap() += 1;
    }
    Ok(())
}

fn fuzz(backend: Backend, target: Target) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some((f, db)) = runtime.block_on(fixture(backend)) else {
        return;
    };
    // REVIEWTIME_FUZZ_CASES overrides the budget (longer runs by hand).
    let cases = std::env::var("REVIEWTIME_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(match backend {
            Backend::Sqlite => CASES,
            Backend::Postgres => PG_CASES,
        });
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let run = |input: Input| runtime.block_on(check(&f, &input));
    let outcome = match target {
        Target::Session => runner.run(&session_input(f.now, f.started), run),
        Target::Batch => runner.run(&batch_input(f.now), run),
        Target::Beacon => runner.run(&beacon_input(f.now, f.started, f.beacon_key.clone()), run),
        Target::Reads => runner.run(&reads_input(f.now), run),
    };
    let tally = f.tally.lock().unwrap().clone();
    let partly_rejected = *f.partly_rejected.lock().unwrap();
    let total: u32 = tally.values().sum();
    // Printed for the record (`cargo test -- --nocapture`): how many inputs, which answers.
    println!("fuzz {target:?} on {backend:?}: {total} requests, answers by status {tally:?}, {partly_rejected} accepted with items rejected");
    if let Err(e) = outcome {
        panic!("{target:?} on {backend:?}: {e}");
    }
    let accepted: u32 = tally
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    assert!(total >= cases, "every case was sent");
    // Whatever was accepted, the totals still add up.
    let (status, body) = runtime.block_on(send(
        &f.app,
        request(
            Method::GET,
            "/api/v1/totals?days=366",
            Some(&f.token),
            Vec::new(),
        ),
    ));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    if target != Target::Reads {
        assert!(
            accepted > cases / 50,
            "some inputs reach the store ({accepted} accepted)"
        );
        assert!(
            total - accepted > cases / 2,
            "most inputs are refused ({accepted} accepted)"
        );
    }
    if target == Target::Batch {
        assert!(
            partly_rejected > cases / 50,
            "some accepted batches reject some of their items ({partly_rejected})"
        );
    }
    drop(f);
    runtime.block_on(db.remove());
}

macro_rules! targets {
    ($($name:ident => $target:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::fuzz(super::Backend::Sqlite, $target)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::fuzz(super::Backend::Postgres, $target)
                }
            )*
        }
    };
}

targets!(
    session_puts_never_fail_and_refusals_store_nothing => super::Target::Session,
    activity_batches_never_fail_and_refusals_store_nothing => super::Target::Batch,
    beacons_never_fail_and_refusals_store_nothing => super::Target::Beacon,
    read_query_strings_never_fail_nor_change_anything => super::Target::Reads,
);
