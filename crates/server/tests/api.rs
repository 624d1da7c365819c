//! The API over real HTTP against the real server binary on 127.0.0.1 with a
//! real SQLite file.

#![allow(clippy::unwrap_used, clippy::zombie_processes)] // Server::drop waits for the child.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reviewtime_protocol::{
    Activity, ActivityBatch, ActivityKind, ApiError, BatchAck, Pairing, PullRef, SessionAck,
    SessionRecord,
};
use serde_json::json;

struct Server {
    child: Child,
    url: String,
    pairing: Option<Pairing>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reviewtime-server"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--exit-after",
            "300",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut pairing = None;
    loop {
        let line = lines.next().expect("server prints LISTENING").unwrap();
        if let Some(link) = line.strip_prefix("PAIRING ") {
            pairing = Pairing::parse_link(link);
        }
        if let Some(url) = line.strip_prefix("LISTENING ") {
            // Keep draining its output, as a terminal would.
            std::thread::spawn(move || lines.for_each(drop));
            return Server {
                child,
                url: url.to_string(),
                pairing,
            };
        }
    }
}

fn add_user(data: &Path, name: &str) -> Pairing {
    let out = Command::new(env!("CARGO_BIN_EXE_reviewtime-server"))
        .args(["--data", data.to_str().unwrap(), "user", "add", name])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    Pairing::parse_link(text.trim().strip_prefix("PAIRING ").unwrap()).unwrap()
}

fn session(id: &str, revision: u64, ended: bool) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        pr: PullRef {
            host: "github.com".into(),
            owner: "octo".into(),
            repo: "widgets".into(),
            number: 7,
        },
        started_at: 1_700_000_000_000,
        ended_at: ended.then_some(1_700_000_060_000),
        wall_secs: 60,
        active_secs: 40 + revision,
        revision,
    }
}

fn activity(id: &str) -> Activity {
    Activity {
        id: id.into(),
        session_id: "s1".into(),
        at: 1_700_000_001_000,
        kind: ActivityKind::CommentPosted,
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    fn new(url: &str, token: &str) -> Self {
        Client {
            http: reqwest::Client::new(),
            url: url.into(),
            token: token.into(),
        }
    }
    async fn put(&self, s: &SessionRecord) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/sessions/{}", self.url, s.id))
            .bearer_auth(&self.token)
            .json(s)
            .send()
            .await
            .unwrap()
    }
    async fn batch(&self, items: Vec<Activity>) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/activities/batch", self.url))
            .bearer_auth(&self.token)
            .json(&ActivityBatch { activities: items })
            .send()
            .await
            .unwrap()
    }
    async fn sessions(&self) -> Vec<SessionRecord> {
        let page: serde_json::Value = self
            .http
            .get(format!("{}/api/v1/sessions", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        serde_json::from_value(page["sessions"].clone()).unwrap()
    }
}

#[tokio::test]
async fn health_and_pairing_on_first_start() {
    let data = data_dir("health");
    let server = start(&data);
    let health: serde_json::Value = reqwest::get(format!("{}/api/v1/health", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let pairing = server
        .pairing
        .clone()
        .expect("first start prints a pairing link");
    assert_eq!(pairing.server, server.url);
    let who: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", server.url))
        .bearer_auth(&pairing.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["user"], "local");
}

#[tokio::test]
async fn sessions_are_idempotent_superseded_by_revision_and_never_reopened() {
    let data = data_dir("sessions");
    let server = start(&data);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    // Ending a session the server never saw works in one request.
    let r = c.put(&session("s1", 3, true)).await;
    assert_eq!(r.status(), 200);
    let ack: SessionAck = r.json().await.unwrap();
    assert!(ack.applied);
    // Repeats change nothing; an older in-progress state arriving late never reopens it.
    for _ in 0..3 {
        let ack: SessionAck = c.put(&session("s1", 3, true)).await.json().await.unwrap();
        assert!(!ack.applied);
    }
    let ack: SessionAck = c.put(&session("s1", 2, false)).await.json().await.unwrap();
    assert!(!ack.applied);
    let ack: SessionAck = c.put(&session("s1", 9, false)).await.json().await.unwrap();
    assert!(
        !ack.applied,
        "an in-progress state never reopens an ended session"
    );
    assert_eq!(ack.session.ended_at, Some(1_700_000_060_000));
    // In order: start, progress, end.
    for rev in [1, 2] {
        assert!(
            c.put(&session("s2", rev, false))
                .await
                .json::<SessionAck>()
                .await
                .unwrap()
                .applied
        );
    }
    assert!(
        c.put(&session("s2", 3, true))
            .await
            .json::<SessionAck>()
            .await
            .unwrap()
            .applied
    );
    let list = c.sessions().await;
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s.ended_at.is_some()));
    // The same id for another PR is a conflict.
    let mut other = session("s2", 4, true);
    other.pr.number = 8;
    let r = c.put(&other).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<ApiError>().await.unwrap().code, "conflict");
}

#[tokio::test]
async fn activities_are_stored_once_and_conflicts_are_answered() {
    let data = data_dir("activities");
    let server = start(&data);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let ack: BatchAck = c
        .batch(vec![activity("a1"), activity("a2")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (2, 0));
    let mut changed = activity("a2");
    changed.at += 5;
    let ack: BatchAck = c
        .batch(vec![activity("a1"), changed, activity("a3")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ack.accepted, ack.duplicates, ack.conflicts.len()),
        (1, 1, 1)
    );
    assert_eq!(ack.conflicts[0].id, "a2");
}

#[tokio::test]
async fn every_limit_and_bad_input_gets_a_clear_json_error() {
    let data = data_dir("limits");
    let server = start(&data);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let http = reqwest::Client::new();
    let batch_url = format!("{}/api/v1/activities/batch", server.url);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (http.post(&batch_url).json(&json!({"activities": []})), 401, "unauthorized"),
        (http.post(&batch_url).bearer_auth("rt_wrong").json(&json!({"activities": []})), 401, "unauthorized"),
        (http.post(&batch_url).bearer_auth(&c.token).body("{not json"), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": [{"id": 5}]})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": [{"id": "", "session_id": "s", "at": 1, "type": "comment_posted"}]})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": [{"id": "x".repeat(600), "session_id": "s", "at": 1, "type": "comment_posted"}]})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&ActivityBatch { activities: (0..101).map(|i| activity(&format!("m{i}"))).collect() }), 413, "too_large"),
        (http.post(&batch_url).bearer_auth(&c.token).body(format!("{{\"activities\":[],\"pad\":\"{}\"}}", "x".repeat(70_000))), 413, "too_large"),
        (http.post(&batch_url).bearer_auth(&c.token).body("x".repeat(300_000)), 413, "too_large"),
        (http.put(format!("{}/api/v1/sessions/other", server.url)).bearer_auth(&c.token).json(&session("s1", 1, false)), 400, "bad_request"),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let err: ApiError = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {i}: not a JSON error: {e}"));
        assert_eq!(err.code, code, "case {i}");
        assert!(!err.message.is_empty());
    }
    let mut bad = session("s9", 1, true);
    bad.ended_at = Some(bad.started_at - 1);
    assert_eq!(c.put(&bad).await.status(), 400);
    // Still healthy after all that.
    assert_eq!(c.batch(vec![activity("ok")]).await.status(), 200);
}

#[tokio::test]
async fn one_user_can_neither_read_nor_alter_another_users_data() {
    let data = data_dir("isolation");
    let server = start(&data);
    let alice = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let bob_pairing = add_user(&data, "bob");
    let bob = Client::new(&server.url, &bob_pairing.token);
    assert!(
        alice
            .put(&session("shared-id", 1, false))
            .await
            .json::<SessionAck>()
            .await
            .unwrap()
            .applied
    );
    assert!(
        bob.sessions().await.is_empty(),
        "bob sees none of alice's sessions"
    );
    // Bob using the same id creates his own session; alice's is untouched.
    assert!(
        bob.put(&session("shared-id", 5, true))
            .await
            .json::<SessionAck>()
            .await
            .unwrap()
            .applied
    );
    let alices = alice.sessions().await;
    assert_eq!(alices.len(), 1);
    assert_eq!((alices[0].revision, alices[0].ended_at), (1, None));
    // Bob's beacon key cannot be used as an API token.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/sessions", server.url))
        .bearer_auth(&bob_pairing.beacon_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_beacon_records_ends_with_its_key_and_reads_nothing() {
    let data = data_dir("beacon");
    let server = start(&data);
    let p = server.pairing.clone().unwrap();
    let http = reqwest::Client::new();
    let body = json!({"key": p.beacon_key, "sessions": [session("b1", 2, true)], "activities": [activity("ba1")]}).to_string();
    let r = http
        .post(format!("{}/api/v1/beacon", server.url))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Duplicate delivery (beacon and worker both) is harmless.
    http.post(format!("{}/api/v1/beacon", server.url))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    let c = Client::new(&server.url, &p.token);
    let list = c.sessions().await;
    assert_eq!(list.len(), 1);
    assert!(list[0].ended_at.is_some());
    let open = json!({"key": p.beacon_key, "sessions": [session("b2", 1, false)]}).to_string();
    assert_eq!(
        http.post(format!("{}/api/v1/beacon", server.url))
            .body(open)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let wrong = json!({"key": p.token, "sessions": []}).to_string();
    assert_eq!(
        http.post(format!("{}/api/v1/beacon", server.url))
            .body(wrong)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_a_restart_keeps_everything() {
    let data = data_dir("concurrent");
    let server = start(&data);
    let token = server.pairing.clone().unwrap().token;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let c = Client::new(&server.url, &token);
        tasks.push(tokio::spawn(async move {
            for b in 0..10 {
                let items = (0..50)
                    .map(|i| activity(&format!("w{w}-b{b}-{i}")))
                    .collect();
                // Every batch twice: the second is all duplicates.
                let first: BatchAck = c.batch(items).await.json().await.unwrap();
                assert_eq!(first.accepted, 50);
                let items = (0..50)
                    .map(|i| activity(&format!("w{w}-b{b}-{i}")))
                    .collect();
                let again: BatchAck = c.batch(items).await.json().await.unwrap();
                assert_eq!(again.duplicates, 50);
            }
            c.put(&session(&format!("sess-{w}"), 1, true))
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    drop(server);
    let server = start(&data);
    assert!(
        server.pairing.is_none(),
        "a restart on the same database creates no new user"
    );
    let c = Client::new(&server.url, &token);
    assert_eq!(
        c.sessions().await.len(),
        16,
        "sessions survive the restart, token still valid"
    );
    let conn = rusqlite::Connection::open(data.join("reviewtime.sqlite3")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM activities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 16 * 10 * 50);
}
