//! The API over real HTTP against the real server binary on 127.0.0.1, on
//! both stores: every test runs once on a real SQLite file (`sqlite::`) and
//! once on a real PostgreSQL database (`postgres::`, see tests/common).

#![allow(clippy::unwrap_used)]
mod common;

use common::{activity, session, start, start_with, Backend, Client, Db, UNLIMITED};
use reviewtime_protocol::{
    ActivityBatch, ActivityKind, ApiError, BatchAck, SessionAck, SessionRecord,
};
use serde_json::json;
use sha2::{Digest, Sha256};

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
    one_bad_item_is_rejected_alone_and_the_rest_of_its_batch_is_stored,
    every_limit_and_bad_input_gets_a_clear_json_error,
    one_user_can_neither_read_nor_alter_another_users_data,
    the_beacon_records_ends_with_its_key_and_reads_nothing,
    concurrent_writers_lose_nothing_and_a_restart_keeps_everything,
    the_cli_issues_and_revokes_credentials,
    lists_filter_page_and_total_the_same_way,
    public_ids_share_nothing_with_secrets_and_beacon_keys_rotate,
    bounds_refuse_absurd_values_with_clear_codes_and_store_nothing,
    totals_answer_even_when_stored_sums_would_overflow,
    a_session_beacon_touches_only_its_own_session_and_never_blocks_the_client,
    the_rate_limit_answers_429_with_retry_after_per_token_and_per_address,
    a_version_1_database_is_rekeyed_and_its_credentials_and_sessions_keep_working,
    the_server_prints_no_secret_beyond_the_first_start_pairing_line,
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

/// The ids of the user's stored activities, in the server's order.
async fn stored_ids(c: &Client) -> Vec<String> {
    let page = c.get("/api/v1/activities?limit=1000").await;
    page["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// `(id, code)` of each rejected item, in the order sent.
fn rejected(ack: &BatchAck) -> Vec<(&str, &str)> {
    ack.rejected
        .iter()
        .map(|r| (r.id.as_str(), r.code.as_str()))
        .collect()
}

async fn one_bad_item_is_rejected_alone_and_the_rest_of_its_batch_is_stored(backend: Backend) {
    let Some(db) = Db::fresh(backend, "rejected").await else {
        return;
    };
    let server = start(&db);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let viewed = |id: &str, path: &str| {
        let mut a = activity(id);
        a.kind = ActivityKind::FileViewed {
            path: Some(path.into()),
        };
        a
    };
    // Paths git allows but the server cannot store, between two good items.
    let batch = vec![
        viewed("long", &format!("src/{}.rs", "x".repeat(600))),
        viewed("good1", "src/lib.rs"),
        viewed("tab", "docs/a\tb.md"),
        viewed("empty", ""),
        activity("good2"),
    ];
    let r = c.batch(batch.clone()).await;
    assert_eq!(r.status(), 200);
    let ack: BatchAck = r.json().await.unwrap();
    assert_eq!(
        (ack.accepted, ack.duplicates, ack.conflicts.len()),
        (2, 0, 0)
    );
    assert_eq!(
        rejected(&ack),
        [
            ("long", "field_too_long"),
            ("tab", "field_control_character"),
            ("empty", "field_empty"),
        ]
    );
    assert_eq!(
        ack.rejected[0].reason,
        "the file path (path) is 607 bytes long; the limit is 512"
    );
    assert_eq!(ack.accounted(), batch.len());
    assert_eq!(stored_ids(&c).await, ["good1", "good2"]);

    // Sent again: the good items are duplicates, the bad ones rejected again.
    let ack: BatchAck = c.batch(batch.clone()).await.json().await.unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (0, 2));
    assert_eq!(rejected(&ack).len(), 3);

    // An item this server cannot read, but with an id to answer it by, is
    // rejected alone too; so is one with an impossible time. The same id
    // twice is two items: a rejected one and a stored one.
    let r = c
        .http
        .post(format!("{}/api/v1/activities/batch", server.url))
        .bearer_auth(&c.token)
        .json(&json!({"activities": [
            {"id": "future", "session_id": "s1", "at": 1_700_000_001_000i64, "type": "emoji_reacted", "emoji": "+1"},
            {"id": "twice", "session_id": "s1", "at": 1_700_000_001_000i64, "type": "review_submitted"},
            activity("good3"),
            activity("twice"),
            {"id": "old", "session_id": "s1", "at": 5, "type": "comment_posted"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ack: BatchAck = r.json().await.unwrap();
    assert_eq!(
        rejected(&ack),
        [
            ("future", "malformed_item"),
            ("twice", "malformed_item"),
            ("old", "time_out_of_range"),
        ]
    );
    assert!(
        ack.rejected[0].reason.contains("emoji_reacted"),
        "{}",
        ack.rejected[0].reason
    );
    assert_eq!((ack.accepted, ack.accounted()), (2, 5));
    assert_eq!(stored_ids(&c).await, ["good1", "good2", "good3", "twice"]);

    // An item without an id cannot be answered: the whole batch is refused
    // and nothing of it stored.
    let r = c
        .http
        .post(format!("{}/api/v1/activities/batch", server.url))
        .bearer_auth(&c.token)
        .json(&json!({"activities": [activity("good4"), {"id": 7, "type": "comment_posted"}]}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request", "an item without a string id").await;
    assert_eq!(c.activity_count().await, 4);
    drop(server);
    db.remove().await;
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
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": [activity("v1"), {"session_id": "s", "at": 1, "type": "comment_posted"}]})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": [activity("v1"), "comment_posted"]})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!({"activities": {"id": "v1"}})), 400, "bad_request"),
        (http.post(&batch_url).bearer_auth(&c.token).json(&json!([activity("v1")])), 400, "bad_request"),
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
    let server = start_with(&db, UNLIMITED);
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

async fn public_ids_share_nothing_with_secrets_and_beacon_keys_rotate(backend: Backend) {
    let Some(db) = Db::fresh(backend, "rotate").await else {
        return;
    };
    let server = start(&db);
    let paired = server.pairing.clone().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(db.data.join("pairing-link.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the pairing file is private");
    }
    // Every id, listed or issued, is 16 hex characters found nowhere in its secret.
    let issue = |kind: &str| {
        let out = db.cli(&["token", "issue", "--user", "local", "--kind", kind]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        (field("id "), field("secret "))
    };
    let (api_id, api_secret) = issue("api");
    let (new_beacon_id, new_beacon) = issue("beacon");
    for (id, secret) in [(&api_id, &api_secret), (&new_beacon_id, &new_beacon)] {
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        for window in id.as_bytes().windows(6) {
            let part = std::str::from_utf8(window).unwrap();
            assert!(
                !secret.contains(part),
                "id {id} shares {part} with its secret"
            );
        }
    }
    let listed = String::from_utf8(db.cli(&["token", "list", "--user", "local"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 4, "{listed}");
    for line in listed.lines() {
        let id = line.split(' ').next().unwrap();
        assert_eq!(id.len(), 16);
        for secret in [&paired.token, &paired.beacon_key, &api_secret, &new_beacon] {
            assert!(
                !secret.contains(&id[..8]),
                "listed id {id} is part of a secret"
            );
        }
    }
    // Rotating the beacon key: the paired one is revoked, the new one works.
    let old_id = listed
        .lines()
        .find(|l| l.contains(" beacon ") && !l.starts_with(&new_beacon_id))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    assert!(db.cli(&["token", "revoke", &old_id]).status.success());
    let http = reqwest::Client::new();
    let beacon = |key: &str, id: &str| {
        let body = json!({"key": key, "sessions": [session(id, 1, true)]}).to_string();
        http.post(format!("{}/api/v1/beacon", server.url))
            .body(body)
            .send()
    };
    assert_eq!(
        beacon(&paired.beacon_key, "r1").await.unwrap().status(),
        401
    );
    assert_eq!(beacon(&new_beacon, "r2").await.unwrap().status(), 200);
    let listed = String::from_utf8(db.cli(&["token", "list", "--user", "local"]).stdout).unwrap();
    assert!(listed
        .lines()
        .any(|l| l.starts_with(&old_id) && l.contains("revoked")));
    let c = Client::new(&server.url, &api_secret);
    let ids: Vec<String> = c.sessions().await.into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["r2"], "only the live key's beacon was stored");
    drop(server);
    db.remove().await;
}

fn now_ms() -> i64 {
    common_now()
}

/// A session that ended a minute ago, consistent in every field.
fn recent(id: &str, revision: u64) -> SessionRecord {
    let mut s = session(id, revision, true);
    s.started_at = now_ms() - 3_600_000;
    s.ended_at = Some(s.started_at + 600_000);
    s.wall_secs = 600;
    s.active_secs = 300;
    s
}

async fn expect_error(r: reqwest::Response, status: u16, code: &str, case: &str) {
    assert_eq!(r.status().as_u16(), status, "{case}");
    let err: ApiError = r
        .json()
        .await
        .unwrap_or_else(|e| panic!("{case}: not a JSON error: {e}"));
    assert_eq!(err.code, code, "{case}: {}", err.message);
    assert!(!err.message.is_empty());
}

async fn bounds_refuse_absurd_values_with_clear_codes_and_store_nothing(backend: Backend) {
    let Some(db) = Db::fresh(backend, "bounds").await else {
        return;
    };
    let server = start(&db);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let kept = recent("kept", 1);
    assert!(c.put(&kept).await.status().is_success());
    let before = c.sessions().await;
    let now = now_ms();
    let day = 86_400_000;
    type Edit = Box<dyn Fn(&mut SessionRecord)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "started in 1970",
            Box::new(|s| s.started_at = 1),
            "time_out_of_range",
        ),
        (
            "started in 2019",
            Box::new(|s| {
                s.started_at = 1_546_300_800_000;
                s.ended_at = Some(s.started_at + 600_000);
            }),
            "time_out_of_range",
        ),
        (
            "started two days ahead",
            Box::new(move |s| {
                s.started_at = now + 2 * day;
                s.ended_at = Some(s.started_at + 600_000);
            }),
            "time_out_of_range",
        ),
        (
            "ended at i64::MAX",
            Box::new(|s| s.ended_at = Some(i64::MAX)),
            "time_out_of_range",
        ),
        (
            "ended before it started",
            Box::new(|s| s.ended_at = Some(s.started_at - 1)),
            "wall_time_inconsistent",
        ),
        (
            "wall longer than its span",
            Box::new(|s| s.wall_secs = 601 + 1),
            "wall_time_inconsistent",
        ),
        (
            "wall shorter than its span",
            Box::new(|s| s.wall_secs = 10),
            "wall_time_inconsistent",
        ),
        (
            "in progress, wall past the server's clock",
            Box::new(|s| {
                s.ended_at = None;
                s.wall_secs = 3_600 + 2 * 86_400;
            }),
            "wall_time_inconsistent",
        ),
        (
            "wall of 2^63",
            Box::new(|s| s.wall_secs = 1 << 63),
            "session_too_long",
        ),
        (
            "active above wall",
            Box::new(|s| s.active_secs = 601),
            "active_exceeds_wall",
        ),
        (
            "active of u64::MAX",
            Box::new(|s| s.active_secs = u64::MAX),
            "active_exceeds_wall",
        ),
        (
            "revision 2^31 + 1",
            Box::new(|s| s.revision = (1 << 31) + 1),
            "revision_out_of_range",
        ),
        (
            "revision u64::MAX",
            Box::new(|s| s.revision = u64::MAX),
            "revision_out_of_range",
        ),
        (
            "revision 0",
            Box::new(|s| s.revision = 0),
            "revision_out_of_range",
        ),
        (
            "first revision beyond one step",
            Box::new(|s| s.revision = 1_001),
            "revision_jump",
        ),
        (
            "pull request 2^40",
            Box::new(|s| s.pr.number = 1 << 40),
            "number_out_of_range",
        ),
    ];
    for (case, edit, code) in &cases {
        let mut s = recent("absurd", 1);
        edit(&mut s);
        expect_error(c.put(&s).await, 400, code, case).await;
    }
    // A stored session's revision may not jump more than 1,000 ahead.
    let mut jump = kept.clone();
    jump.revision = 1_002;
    expect_error(c.put(&jump).await, 400, "revision_jump", "jump").await;
    jump.revision = 1_001;
    assert!(
        c.put(&jump)
            .await
            .json::<SessionAck>()
            .await
            .unwrap()
            .applied,
        "exactly one step is fine"
    );
    // Activities: times within the window too, each refused on its own.
    for at in [1, 1_000_000_000_000, now + 2 * day, i64::MAX, i64::MIN] {
        let mut a = activity("bad-at");
        a.at = at;
        let r = c.batch(vec![a]).await;
        assert_eq!(r.status(), 200, "at {at}");
        let ack: BatchAck = r.json().await.unwrap();
        assert_eq!(ack.accepted, 0, "at {at}");
        let codes: Vec<_> = ack.rejected.iter().map(|r| (&*r.id, &*r.code)).collect();
        assert_eq!(codes, [("bad-at", "time_out_of_range")], "at {at}");
    }
    // Numbers that do not fit the wire types are malformed.
    let r = c
        .http
        .put(format!("{}/api/v1/sessions/big", server.url))
        .bearer_auth(&c.token)
        .body(r#"{"id":"big","pr":{"host":"h","owner":"o","repo":"r","number":1},"started_at":1700000000000,"ended_at":null,"wall_secs":1e30,"active_secs":0,"revision":1}"#)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request", "1e30").await;
    // NUL, which PostgreSQL's text cannot hold (the fuzz test found a 500
    // there): refused as input, in query strings and beacons alike.
    for path in [
        "/api/v1/activities?session_id=%00",
        "/api/v1/sessions?repo=o%00/r",
    ] {
        let r = c
            .http
            .get(format!("{}{path}", server.url))
            .bearer_auth(&c.token)
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "field_control_character", path).await;
    }
    let r = c
        .http
        .post(format!("{}/api/v1/beacon", server.url))
        .body(json!({"session_id": "s\u{0}", "beacon_secret": "e".repeat(64)}).to_string())
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        400,
        "field_control_character",
        "NUL in a beacon's session_id",
    )
    .await;
    let mut after = c.sessions().await;
    assert_eq!(after.len(), before.len(), "nothing refused was stored");
    assert_eq!(after.remove(0).revision, 1_001);
    assert_eq!(c.activity_count().await, 0);
    drop(server);
    db.remove().await;
}

async fn totals_answer_even_when_stored_sums_would_overflow(backend: Backend) {
    let Some(db) = Db::fresh(backend, "overflow").await else {
        return;
    };
    let server = start(&db);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    assert!(c.put(&recent("normal", 1)).await.status().is_success());
    // Rows written before the bounds existed: the old server accepted any
    // value up to i64::MAX, and two of them overflowed SUM into a 500.
    let started = now_ms() - 7_200_000;
    let huge = i64::MAX;
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(db.data.join("reviewtime.sqlite3")).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            for id in ["old1", "old2"] {
                conn.execute(
                    "INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at)
                     VALUES (1, ?1, 'github.com', 'octo', 'widgets', 7, ?2, ?2, ?3, ?3, ?3, ?2)",
                    rusqlite::params![id, started, huge],
                )
                .unwrap();
            }
        }
        Backend::Postgres => {
            let admin = common::admin(db.url.as_deref().unwrap()).await;
            for id in ["old1", "old2"] {
                admin
                    .execute(
                        "INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at)
                         VALUES (1, $1, 'github.com', 'octo', 'widgets', 7, $2, $2, $3, $3, $3, $2)",
                        &[&id, &started, &huge],
                    )
                    .await
                    .unwrap();
            }
        }
    }
    let totals = c.get("/api/v1/totals?days=2").await;
    let widgets = &totals["per_repo"][0];
    assert_eq!(widgets["repo"], "octo/widgets");
    assert_eq!(widgets["sessions"], 3);
    let active = widgets["active_secs"].as_u64().unwrap();
    assert!(
        active >= i64::MAX as u64,
        "saturated, not wrapped: {active}"
    );
    let today = totals["per_day"].as_array().unwrap().last().unwrap()["active_secs"]
        .as_u64()
        .unwrap();
    assert!(today >= i64::MAX as u64 || started / 86_400_000 != now_ms() / 86_400_000);
    // Such a frozen session does not block a new one, nor the lists.
    assert_eq!(c.sessions().await.len(), 3);
    drop(server);
    db.remove().await;
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client's PUT with the session's beacon hash.
async fn put_with_hash(c: &Client, s: &SessionRecord, secret: &str) -> reqwest::Response {
    let mut body = serde_json::to_value(s).unwrap();
    body["beacon_hash"] = json!(sha256_hex(secret));
    c.http
        .put(format!("{}/api/v1/sessions/{}", c.url, s.id))
        .bearer_auth(&c.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn a_session_beacon_touches_only_its_own_session_and_never_blocks_the_client(
    backend: Backend,
) {
    let Some(db) = Db::fresh(backend, "capability").await else {
        return;
    };
    let server = start(&db);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let http = reqwest::Client::new();
    let beacon = |body: serde_json::Value| {
        http.post(format!("{}/api/v1/beacon", server.url))
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
    };
    let (one, two) = ("a".repeat(64), "b".repeat(64));
    let mut s1 = recent("s1", 1);
    s1.ended_at = None;
    let mut s2 = s1.clone();
    s2.id = "s2".into();
    assert!(put_with_hash(&c, &s1, &one).await.status().is_success());
    assert!(put_with_hash(&c, &s2, &two).await.status().is_success());
    // The same id under another user, with its own secret.
    let bob = Client::new(&server.url, &db.add_user("bob").token);
    assert!(put_with_hash(&bob, &s1, &"c".repeat(64))
        .await
        .status()
        .is_success());

    let mut end1 = recent("s1", 2);
    end1.started_at = s1.started_at;
    end1.ended_at = Some(s1.started_at + 600_000);
    let mut end2 = end1.clone();
    end2.id = "s2".into();
    // s1's capability cannot write s2, nor s2's activities, nor speak for s2.
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [end2]}))
        .await
        .unwrap();
    expect_error(r, 403, "beacon_scope", "another session's record").await;
    let mut stray = activity("stray");
    stray.session_id = "s2".into();
    stray.at = now_ms();
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "activities": [stray]}))
        .await
        .unwrap();
    expect_error(r, 403, "beacon_scope", "another session's activity").await;
    let r = beacon(json!({"session_id": "s2", "beacon_secret": one, "sessions": [end2]}))
        .await
        .unwrap();
    expect_error(
        r,
        404,
        "unknown_session",
        "another session's id with s1's secret",
    )
    .await;
    // Never seen by the server: refused, the worker delivers it with its token.
    let mut unseen = end1.clone();
    unseen.id = "s9".into();
    let r =
        beacon(json!({"session_id": "s9", "beacon_secret": "d".repeat(64), "sessions": [unseen]}))
            .await
            .unwrap();
    expect_error(r, 404, "unknown_session", "unknown session").await;
    // Revisions: bounded, and never more than a step above the stored one.
    let mut frozen = end1.clone();
    frozen.revision = u64::MAX;
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [frozen]}))
        .await
        .unwrap();
    expect_error(r, 400, "revision_out_of_range", "u64::MAX").await;
    frozen.revision = 1 << 31;
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [frozen]}))
        .await
        .unwrap();
    expect_error(r, 400, "revision_jump", "2^31").await;
    let mut absurd = end1.clone();
    absurd.active_secs = 10_000;
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [absurd]}))
        .await
        .unwrap();
    expect_error(r, 400, "active_exceeds_wall", "absurd times").await;
    let listed = c.sessions().await;
    assert!(
        listed
            .iter()
            .all(|s| s.ended_at.is_none() && s.revision == 1),
        "nothing changed: {listed:?}"
    );

    // A beacon ends its own session, even as far ahead as one step allows...
    let mut ahead = end1.clone();
    ahead.revision = 1_001;
    ahead.active_secs = 1;
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [ahead], "activities": [{"id": "b-a", "session_id": "s1", "at": now_ms(), "type": "comment_posted"}]})).await.unwrap();
    assert_eq!(r.status(), 200);
    let by_id = |list: Vec<SessionRecord>, id: &str| list.into_iter().find(|s| s.id == id).unwrap();
    assert_eq!(by_id(c.sessions().await, "s1").revision, 1_001);
    // ...and the client's own end, at its next revision, still replaces it.
    let ack: SessionAck = put_with_hash(&c, &end1, &one).await.json().await.unwrap();
    assert!(
        ack.applied,
        "the beacon did not block the client's revision 2"
    );
    assert_eq!((ack.session.revision, ack.session.active_secs), (2, 300));
    let stored = by_id(c.sessions().await, "s1");
    assert_eq!(
        (stored.revision, stored.active_secs, stored.ended_at),
        (2, 300, end1.ended_at)
    );
    // The same beacon delivered again is a repeat: the client's end stays.
    let r = beacon(json!({"session_id": "s1", "beacon_secret": one, "sessions": [ahead]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = by_id(c.sessions().await, "s1");
    assert_eq!(
        (stored.revision, stored.active_secs),
        (2, 300),
        "a repeat changed nothing"
    );
    // A progress record through s2's own capability is fine; s2 stays open.
    let mut progress = s2.clone();
    progress.revision = 2;
    progress.wall_secs = 900;
    let r = beacon(json!({"session_id": "s2", "beacon_secret": two, "sessions": [progress]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = by_id(c.sessions().await, "s2");
    assert_eq!((stored.revision, stored.ended_at), (2, None));
    // Bob's session s1 was never touched.
    let bobs = by_id(bob.sessions().await, "s1");
    assert_eq!((bobs.revision, bobs.ended_at), (1, None));
    // The registered hash stays: another one is a conflict.
    let mut next = s2.clone();
    next.revision = 3;
    expect_error(
        put_with_hash(&c, &next, &one).await,
        409,
        "beacon_hash_conflict",
        "rehash",
    )
    .await;
    // Mixing credentials, or bad secrets, is refused with words.
    let r = beacon(json!({"session_id": "s2", "beacon_secret": "short", "sessions": []}))
        .await
        .unwrap();
    expect_error(r, 400, "bad_beacon_secret", "short secret").await;
    let r = beacon(json!({"sessions": []})).await.unwrap();
    expect_error(r, 401, "unauthorized", "no credential").await;
    assert_eq!(c.activity_count().await, 1);
    drop(server);
    db.remove().await;
}

async fn the_rate_limit_answers_429_with_retry_after_per_token_and_per_address(backend: Backend) {
    let Some(db) = Db::fresh(backend, "rate").await else {
        return;
    };
    let server = start_with(
        &db,
        &[
            "--rate-burst",
            "5",
            "--rate-per-sec",
            "1",
            "--address-rate-burst",
            "0",
        ],
    );
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let bob = Client::new(&server.url, &db.add_user("bob").token);
    for i in 0..5 {
        assert_eq!(
            c.batch(vec![activity(&format!("r{i}"))]).await.status(),
            200,
            "write {i}"
        );
    }
    let r = c.batch(vec![activity("r5")]).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    expect_error(r, 429, "rate_limited", "sixth write").await;
    assert_eq!(
        c.activity_count().await,
        5,
        "the refused write stored nothing; reads are not limited"
    );
    assert_eq!(
        bob.batch(vec![activity("b0")]).await.status(),
        200,
        "another token is not held back"
    );
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(
        c.batch(vec![activity("r5")]).await.status(),
        200,
        "allowed again after Retry-After"
    );
    drop(server);

    // Per address: every write from 127.0.0.1 counts, whatever its token.
    let server = start_with(
        &db,
        &[
            "--rate-burst",
            "0",
            "--address-rate-burst",
            "3",
            "--address-rate-per-sec",
            "1",
        ],
    );
    let c = Client::new(&server.url, &c.token);
    for i in 0..3 {
        let who = if i % 2 == 0 { &c } else { &bob };
        let who = Client::new(&server.url, &who.token);
        assert_eq!(
            who.batch(vec![activity(&format!("p{i}"))]).await.status(),
            200
        );
    }
    let r = c
        .http
        .post(format!("{}/api/v1/activities/batch", server.url))
        .bearer_auth("rt_not_a_token")
        .header("origin", "https://github.com")
        .json(&json!({"activities": []}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase(),
        "retry-after",
        "a page's script may read it too"
    );
    expect_error(r, 429, "rate_limited", "fourth write from the address").await;
    drop(server);

    // Behind a reverse proxy: the address is the header's last entry.
    let server = start_with(
        &db,
        &[
            "--rate-burst",
            "0",
            "--address-rate-burst",
            "2",
            "--address-rate-per-sec",
            "1",
            "--client-address-header",
            "x-forwarded-for",
        ],
    );
    let from = |address: &'static str, id: &str| {
        c.http
            .post(format!("{}/api/v1/activities/batch", server.url))
            .bearer_auth(&c.token)
            .header("x-forwarded-for", address)
            .json(&ActivityBatch {
                activities: vec![activity(id)],
            })
            .send()
    };
    for i in 0..2 {
        let r = from("198.51.100.1, 10.0.0.1", &format!("x{i}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = from("203.0.113.5, 10.0.0.1", "x2").await.unwrap();
    expect_error(
        r,
        429,
        "rate_limited",
        "third write through proxy client 10.0.0.1",
    )
    .await;
    let r = from("10.0.0.2", "x3").await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "another client behind the same proxy is not held back"
    );
    drop(server);
    db.remove().await;
}

async fn a_version_1_database_is_rekeyed_and_its_credentials_and_sessions_keep_working(
    backend: Backend,
) {
    let Some(db) = Db::fresh(backend, "v1").await else {
        return;
    };
    // A database as the first schema left it: the token's id is the first 8
    // hex characters of its secret.
    let secret = "rt_0123456789abcdef0123456789abcdef0123456789abcdef";
    let old_id = &secret[3..11];
    let hash = sha256_hex(secret);
    let started: i64 = now_ms() - 3_600_000;
    let rows = format!(
        "INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 1);
         INSERT INTO tokens (id, hash, user_id, kind, created_at) VALUES ('{old_id}', '{hash}', 1, 'api', 1);
         INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at)
         VALUES (1, 'old', 'github.com', 'octo', 'widgets', 7, {started}, NULL, 60, 30, 7, 1);"
    );
    match backend {
        Backend::Sqlite => {
            std::fs::create_dir_all(&db.data).unwrap();
            let conn = rusqlite::Connection::open(db.data.join("reviewtime.sqlite3")).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; {}; PRAGMA user_version = 1; {rows} COMMIT;",
                reviewtime_server::store::sqlite::MIGRATIONS[0]
            ))
            .unwrap();
        }
        Backend::Postgres => {
            let admin = common::admin(db.url.as_deref().unwrap()).await;
            admin
                .batch_execute(&format!(
                    "{}; CREATE TABLE reviewtime_schema (version INTEGER NOT NULL);
                     INSERT INTO reviewtime_schema VALUES (1); {rows}",
                    reviewtime_server::store::postgres::MIGRATIONS[0]
                ))
                .await
                .unwrap();
        }
    }
    let server = start(&db);
    assert!(server.pairing.is_none(), "users exist: no first-start user");
    let c = Client::new(&server.url, secret);
    assert_eq!(
        c.get("/api/v1/whoami").await["user"],
        "alice",
        "the token still works"
    );
    let listed = String::from_utf8(db.cli(&["token", "list", "--user", "alice"]).stdout).unwrap();
    let new_id = listed.split(' ').next().unwrap();
    assert_eq!(new_id.len(), 16, "{listed}");
    assert!(!secret.contains(new_id) && !secret.contains(&new_id[..6]));
    assert!(
        !db.cli(&["token", "revoke", old_id]).status.success(),
        "the old id is gone"
    );
    // The stored revision became the client's own: 7 is a repeat, 8 applies.
    let mut s = session("old", 7, false);
    s.started_at = started;
    s.wall_secs = 60;
    s.active_secs = 30;
    assert!(!c.put(&s).await.json::<SessionAck>().await.unwrap().applied);
    s.revision = 8;
    assert!(c.put(&s).await.json::<SessionAck>().await.unwrap().applied);
    assert!(db.cli(&["token", "revoke", new_id]).status.success());
    drop(server);
    db.remove().await;
}

/// Runs `serve` on `db` with stdout and stderr in files; returns the child,
/// its URL, and the output file. The caller kills and waits for it.
#[allow(clippy::zombie_processes)]
fn serve_logged(db: &Db, name: &str) -> (std::process::Child, String, std::path::PathBuf) {
    let log = db.data.with_extension(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_reviewtime-server"))
        .args(db.args())
        .args(["serve", "--addr", "127.0.0.1:0", "--exit-after", "600"])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("LISTENING ")) {
            return (child, url.to_string(), log);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no LISTENING line: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

async fn the_server_prints_no_secret_beyond_the_first_start_pairing_line(backend: Backend) {
    let Some(db) = Db::fresh(backend, "logs").await else {
        return;
    };
    let (mut child, url, first_log) = serve_logged(&db, "first");
    let text = std::fs::read_to_string(&first_log).unwrap();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("PAIRING "))
        .unwrap()
        .to_string();
    let pairing = reviewtime_protocol::Pairing::parse_link(&link).unwrap();
    let c = Client::new(&url, &pairing.token);
    let http = reqwest::Client::new();
    let secret = "f".repeat(64);
    let wrong_token = "rt_0000wrongwrongwrong0000";
    // Writes that succeed, and every kind of refusal, each carrying a secret.
    let mut s = recent("logged", 1);
    s.ended_at = None;
    assert!(put_with_hash(&c, &s, &secret).await.status().is_success());
    let mut end = s.clone();
    end.revision = 2;
    end.ended_at = Some(s.started_at + 600_000);
    for body in [
        json!({"session_id": "logged", "beacon_secret": secret, "sessions": [end]}),
        json!({"session_id": "logged", "beacon_secret": "9".repeat(64), "sessions": [end]}),
        json!({"key": pairing.beacon_key, "sessions": [end]}),
        json!({"key": pairing.token, "sessions": []}),
        json!({"key": pairing.beacon_key, "session_id": "logged", "beacon_secret": secret}),
    ] {
        http.post(format!("{url}/api/v1/beacon"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
    }
    http.post(format!("{url}/api/v1/beacon"))
        .body(format!(
            "{{\"key\": \"{}\", \"sessions\": 5",
            pairing.beacon_key
        ))
        .send()
        .await
        .unwrap();
    Client::new(&url, wrong_token)
        .batch(vec![activity("x")])
        .await;
    c.batch(vec![activity("y")]).await;
    let _ = child.kill();
    let _ = child.wait();
    let (mut again, _, second_log) = serve_logged(&db, "second");
    let _ = again.kill();
    let _ = again.wait();
    let first = std::fs::read_to_string(&first_log).unwrap();
    let second = std::fs::read_to_string(&second_log).unwrap();
    for (name, secret) in [
        ("the token", pairing.token.as_str()),
        ("the beacon key", pairing.beacon_key.as_str()),
    ] {
        let lines: Vec<&str> = first.lines().filter(|l| l.contains(secret)).collect();
        assert_eq!(lines.len(), 1, "{name} is printed once: {lines:?}");
        assert!(
            lines[0].starts_with("PAIRING "),
            "{name} only in the pairing line"
        );
        assert!(
            !second.contains(secret),
            "{name} is not printed on later starts"
        );
    }
    for (name, secret) in [
        ("the beacon secret", secret.as_str()),
        ("a wrong token", wrong_token),
    ] {
        assert!(
            !first.contains(secret) && !second.contains(secret),
            "{name} was printed"
        );
    }
    assert!(!second.contains("PAIRING"));
    let _ = std::fs::remove_file(first_log);
    let _ = std::fs::remove_file(second_log);
    db.remove().await;
}
