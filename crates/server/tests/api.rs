//! The API over real HTTP against the real server binary on 127.0.0.1, on
//! both stores: every test runs once on a real SQLite file (`sqlite::`) and
//! once on a real PostgreSQL database (`postgres::`, see tests/common).

#![allow(clippy::unwrap_used)]
mod common;

use common::{activity, session, start, Backend, Client, Db};
use reviewtime_protocol::{ActivityBatch, ApiError, BatchAck, SessionAck};
use serde_json::json;

/// Runs each listed `async fn(Backend)` as two tests, one per store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_stores!(
    health_and_pairing_on_first_start,
    sessions_are_idempotent_superseded_by_revision_and_never_reopened,
    activities_are_stored_once_and_conflicts_are_answered,
    every_limit_and_bad_input_gets_a_clear_json_error,
    one_user_can_neither_read_nor_alter_another_users_data,
    the_beacon_records_ends_with_its_key_and_reads_nothing,
    concurrent_writers_lose_nothing_and_a_restart_keeps_everything,
    the_cli_issues_and_revokes_credentials,
    lists_filter_page_and_total_the_same_way,
);

async fn health_and_pairing_on_first_start(backend: Backend) {
    let Some(db) = Db::fresh(backend, "health").await else {
        return;
    };
    let server = start(&db);
    let health: serde_json::Value = reqwest::get(format!("{}/api/v1/health", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let store = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(
        health["database"], store,
        "health names the store it checked"
    );
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

async fn sessions_are_idempotent_superseded_by_revision_and_never_reopened(backend: Backend) {
    let Some(db) = Db::fresh(backend, "sessions").await else {
        return;
    };
    let server = start(&db);
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

async fn activities_are_stored_once_and_conflicts_are_answered(backend: Backend) {
    let Some(db) = Db::fresh(backend, "activities").await else {
        return;
    };
    let server = start(&db);
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
    // An id repeated inside one batch: the first occurrence is stored, the
    // repeats are compared with it, as if sent one after the other.
    let mut other = activity("r1");
    other.at += 9;
    let ack: BatchAck = c
        .batch(vec![
            activity("r1"),
            activity("r1"),
            other.clone(),
            activity("r2"),
        ])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ack.accepted, ack.duplicates, ack.conflicts.len()),
        (2, 1, 1)
    );
    let ack: BatchAck = c
        .batch(vec![other, activity("r1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ack.accepted, ack.duplicates, ack.conflicts.len()),
        (0, 1, 1)
    );
    assert_eq!(c.activity_count().await, 5);
}

async fn every_limit_and_bad_input_gets_a_clear_json_error(backend: Backend) {
    let Some(db) = Db::fresh(backend, "limits").await else {
        return;
    };
    let server = start(&db);
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

async fn one_user_can_neither_read_nor_alter_another_users_data(backend: Backend) {
    let Some(db) = Db::fresh(backend, "isolation").await else {
        return;
    };
    let server = start(&db);
    let alice = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let bob_pairing = db.add_user("bob");
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

async fn the_beacon_records_ends_with_its_key_and_reads_nothing(backend: Backend) {
    let Some(db) = Db::fresh(backend, "beacon").await else {
        return;
    };
    let server = start(&db);
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
    // A beacon whose session conflicts with the stored one stores none of itself.
    let mut clash = session("b1", 3, true);
    clash.pr.number = 99;
    let body = json!({"key": p.beacon_key, "sessions": [clash], "activities": [activity("ba2")]});
    let r = http
        .post(format!("{}/api/v1/beacon", server.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(c.activity_count().await, 1, "the beacon was rolled back");
    assert_eq!(c.sessions().await[0].revision, 2);
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

async fn concurrent_writers_lose_nothing_and_a_restart_keeps_everything(backend: Backend) {
    let Some(db) = Db::fresh(backend, "concurrent").await else {
        return;
    };
    let server = start(&db);
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
    let server = start(&db);
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
    assert_eq!(c.activity_count().await, 16 * 10 * 50);
    drop(server);
    db.remove().await;
}

async fn the_cli_issues_and_revokes_credentials(backend: Backend) {
    let Some(db) = Db::fresh(backend, "cli").await else {
        return;
    };
    let server = start(&db);
    let bob = db.add_user("bob");
    let again = db.cli(&["user", "add", "bob"]);
    assert!(!again.status.success(), "a name is taken once");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let out = db.cli(&["token", "issue", "--user", "bob"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let id = text.lines().find_map(|l| l.strip_prefix("id ")).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .unwrap();
    let issued = Client::new(&server.url, secret);
    assert_eq!(issued.get("/api/v1/whoami").await["user"], "bob");
    assert!(db.cli(&["token", "revoke", id]).status.success());
    let r = issued
        .http
        .get(format!("{}/api/v1/whoami", server.url))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked token is refused at once");
    assert!(!db.cli(&["token", "revoke", id]).status.success());
    // Bob's paired token is untouched.
    assert_eq!(
        Client::new(&server.url, &bob.token)
            .get("/api/v1/whoami")
            .await["user"],
        "bob"
    );
    drop(server);
    db.remove().await;
}

async fn lists_filter_page_and_total_the_same_way(backend: Backend) {
    let Some(db) = Db::fresh(backend, "lists").await else {
        return;
    };
    let server = start(&db);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let day = 86_400_000i64;
    let today = common_now() / day * day;
    for (i, (repo, number, days_ago, ended)) in [
        ("widgets", 1, 0, true),
        ("widgets", 2, 0, false),
        ("Widgets", 3, 1, true),
        ("gadgets", 4, 2, true),
        ("gadgets", 4, 40, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = session(&format!("L{i}"), 1, ended);
        s.pr.repo = repo.into();
        s.pr.number = number;
        s.started_at = today - days_ago * day + 3_600_000;
        s.ended_at = ended.then_some(s.started_at + 600_000);
        s.wall_secs = 600;
        s.active_secs = 100 * (i as u64 + 1);
        assert_eq!(c.put(&s).await.status(), 200);
    }
    let page = c.get("/api/v1/sessions?repo=octo/widgets").await;
    assert_eq!(page["total"], 2, "repository names match exactly");
    let page = c.get("/api/v1/sessions?status=in_progress").await;
    assert_eq!(page["sessions"][0]["id"], "L1");
    let page = c.get("/api/v1/sessions?limit=2").await;
    assert_eq!(
        (page["total"].as_u64(), page["next_offset"].as_u64()),
        (Some(5), Some(2))
    );
    let ids: Vec<&str> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["L0", "L1"], "newest first, then by id");
    let page = c.get("/api/v1/sessions?pr=4&from=0").await;
    assert_eq!(page["total"], 2);
    let totals = c.get("/api/v1/totals?days=3").await;
    assert_eq!(
        totals["per_repo"],
        json!([
            {"repo": "octo/gadgets", "sessions": 1, "active_secs": 400, "wall_secs": 600},
            {"repo": "octo/Widgets", "sessions": 1, "active_secs": 300, "wall_secs": 600},
            {"repo": "octo/widgets", "sessions": 2, "active_secs": 300, "wall_secs": 1200},
        ]),
        "most time first, ties by name bytewise"
    );
    let days: Vec<u64> = totals["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["active_secs"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [400, 300, 300], "oldest day first");
    c.batch((0..5).map(|i| activity(&format!("act{i}"))).collect())
        .await;
    let page = c.get("/api/v1/activities?limit=2&offset=3").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["activities"][0]["id"], "act3");
    drop(server);
    db.remove().await;
}

fn common_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
