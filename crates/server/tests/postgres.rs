//! What only PostgreSQL offers: several server instances on one database,
//! `migrate` from SQLite, and a health check a load balancer can trust.

#![allow(clippy::unwrap_used)]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{activity, session, shuffle, start, start_with, Backend, Client, Db, UNLIMITED};
use reviewtime_protocol::{Activity, ActivityKind, BatchAck, SessionAck, SessionRecord};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request of the two-instance test.
#[derive(Clone)]
enum Delivery {
    Batch { batch: usize, to: usize },
    Session { id: usize, revision: u64, to: usize },
}

fn batch_items(batch: usize) -> Vec<Activity> {
    (0..100)
        .map(|i| Activity {
            id: format!("act-{batch}-{i}"),
            session_id: format!("sess-{}", (batch * 100 + i) % 100),
            at: 1_700_000_000_000 + (batch * 100 + i) as i64,
            kind: ActivityKind::FileViewed {
                path: Some(format!("src/f{i}.rs")),
            },
        })
        .collect()
}

/// Session `id` at `revision` (1..=5); the fifth ends it.
fn session_at(id: usize, revision: u64) -> SessionRecord {
    let mut s = session(&format!("sess-{id}"), revision, revision == 5);
    s.pr.number = 1 + id as u64;
    s.wall_secs = 60 * revision;
    s.active_secs = 30 * revision;
    s.ended_at = s.ended_at.map(|_| s.started_at + 60_000 * revision as i64);
    s
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    duplicates: u64,
    conflicts: usize,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_store_every_duplicate_delivery_once_at_the_highest_revision() {
    let Some(db) = Db::fresh(Backend::Postgres, "two_instances").await else {
        return;
    };
    let first = start_with(&db, UNLIMITED);
    let second = start_with(&db, UNLIMITED);
    let pairing = first.pairing.clone().expect("the first instance pairs");
    assert!(
        second.pairing.is_none(),
        "the second instance finds the user the first created"
    );
    let instances = [
        Client::new(&first.url, &pairing.token),
        Client::new(&second.url, &pairing.token),
    ];
    // 1,000 activities in 10 batches, each batch delivered 4 times (twice to
    // each instance); 100 sessions × 5 revisions, each revision delivered
    // twice (once to each instance). All in a shuffled order, 32 at a time.
    let mut deliveries = Vec::new();
    for batch in 0..10 {
        for copy in 0..4 {
            deliveries.push(Delivery::Batch {
                batch,
                to: copy % 2,
            });
        }
    }
    for id in 0..100 {
        for revision in 1..=5 {
            for to in 0..2 {
                deliveries.push(Delivery::Session { id, revision, to });
            }
        }
    }
    shuffle(&mut deliveries, 0x5eed_2026);
    let total = deliveries.len();
    let queue = Arc::new(Mutex::new(deliveries));
    let tally = Arc::new(Mutex::new(Tally::default()));
    // A reader polls both instances while the writes land: no session's
    // revision may ever be seen going down.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (instances, done) = (instances.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut polls = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for s in instances[polls % 2].sessions().await {
                    let before = seen.insert(s.id.clone(), s.revision).unwrap_or(0);
                    assert!(
                        s.revision >= before,
                        "session {} went from revision {before} to {}",
                        s.id,
                        s.revision
                    );
                }
                polls += 1;
            }
            polls
        })
    };
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (queue, tally, instances) = (queue.clone(), tally.clone(), instances.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(next) = queue.lock().unwrap().pop() else {
                    break;
                };
                match next {
                    Delivery::Batch { batch, to } => {
                        let r = instances[to].batch(batch_items(batch)).await;
                        if r.status() != 200 {
                            let failure = format!("batch {batch}: {}", r.status());
                            tally.lock().unwrap().failures.push(failure);
                            continue;
                        }
                        let ack: BatchAck = r.json().await.unwrap();
                        let mut t = tally.lock().unwrap();
                        t.accepted += u64::from(ack.accepted);
                        t.duplicates += u64::from(ack.duplicates);
                        t.conflicts += ack.conflicts.len();
                    }
                    Delivery::Session { id, revision, to } => {
                        let r = instances[to].put(&session_at(id, revision)).await;
                        if r.status() != 200 {
                            let failure = format!("session {id}@{revision}: {}", r.status());
                            tally.lock().unwrap().failures.push(failure);
                            continue;
                        }
                        let ack: SessionAck = r.json().await.unwrap();
                        assert!(
                            ack.session.revision >= revision,
                            "an ack never reports an older revision than the one sent"
                        );
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let polls = watcher.await.unwrap();
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    assert_eq!(
        tally.failures,
        Vec::<String>::new(),
        "every delivery answered 200"
    );
    assert_eq!(
        (tally.accepted, tally.duplicates, tally.conflicts),
        (1_000, 3_000, 0),
        "each of the 1,000 activities accepted once, every other copy a duplicate ({total} deliveries)"
    );
    for c in &instances {
        let all = c.get("/api/v1/activities?limit=1000").await;
        assert_eq!(all["total"], 1_000);
        let ids: HashSet<&str> = all["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 1_000, "1,000 distinct activities");
        let sessions = c.sessions().await;
        assert_eq!(sessions.len(), 100, "each session stored once");
        for s in sessions {
            assert_eq!(
                (s.revision, s.ended_at.is_some(), s.active_secs),
                (5, true, 150),
                "session {} ends at its highest revision",
                s.id
            );
        }
    }
    assert!(polls > 0);
    drop((first, second));
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_reuse_of_an_id_across_instances_is_stored_once_and_reported() {
    let Some(db) = Db::fresh(Backend::Postgres, "cross_conflict").await else {
        return;
    };
    let first = start(&db);
    let second = start(&db);
    let token = first.pairing.clone().unwrap().token;
    let (a, b) = (
        Client::new(&first.url, &token),
        Client::new(&second.url, &token),
    );
    // The same 50 ids with different content to each instance at once.
    let mut tasks: Vec<JoinHandle<BatchAck>> = Vec::new();
    for (c, at) in [(a.clone(), 1), (b.clone(), 2)] {
        tasks.push(tokio::spawn(async move {
            let items = (0..50)
                .map(|i| {
                    let mut x = activity(&format!("x{i}"));
                    x.at += at;
                    x
                })
                .collect();
            c.batch(items).await.json().await.unwrap()
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.push(t.await.unwrap());
    }
    let accepted: u32 = acks.iter().map(|a| a.accepted).sum();
    let conflicts: usize = acks.iter().map(|a| a.conflicts.len()).sum();
    assert_eq!(
        (accepted, conflicts),
        (50, 50),
        "one wins per id, the other is told"
    );
    assert_eq!(a.activity_count().await, 50);
    // A session id reused for another pull request, on both instances at once.
    let mut other = session("shared", 2, false);
    other.pr.number = 99;
    let original = session("shared", 1, false);
    let (r1, r2) = tokio::join!(a.put(&original), b.put(&other));
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    drop((first, second));
    db.remove().await;
}

/// Fills an SQLite database through the API: two users, sessions over
/// several days and repositories, activities, a revoked token.
async fn fill(c: &Client, tag: &str) {
    let day = 86_400_000i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..30u64 {
        let mut s = session(&format!("{tag}-s{i}"), 1 + i % 3, i % 4 != 0);
        s.pr.repo = ["widgets", "gadgets", "Gizmos"][i as usize % 3].into();
        s.pr.number = 1 + i % 7;
        s.started_at = now - (i as i64 % 10) * day - 1_000 * i as i64;
        s.ended_at = s.ended_at.map(|_| s.started_at + 300_000);
        s.wall_secs = 300;
        s.active_secs = 10 * i;
        assert_eq!(c.put(&s).await.status(), 200);
    }
    for b in 0..3 {
        let items = (0..100)
            .map(|i| {
                let mut a = activity(&format!("{tag}-a{b}-{i}"));
                a.session_id = format!("{tag}-s{}", i % 30);
                a.at += i;
                a
            })
            .collect();
        assert_eq!(c.batch(items).await.status(), 200);
    }
}

/// The answers the migration must keep.
async fn answers(c: &Client) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/whoami",
        "/api/v1/sessions?limit=500",
        "/api/v1/sessions?repo=octo/Gizmos&status=completed",
        "/api/v1/sessions?limit=7&offset=7",
        "/api/v1/activities?limit=1000",
        "/api/v1/activities?session_id=local-s3",
        "/api/v1/totals?days=30",
    ] {
        out.push(c.get(path).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_sqlite_into_postgres_with_the_same_answers() {
    let Some(pg) = Db::fresh(Backend::Postgres, "migrate").await else {
        return;
    };
    let sqlite = Db::fresh(Backend::Sqlite, "migrate_source").await.unwrap();
    let server = start(&sqlite);
    let local = server.pairing.clone().unwrap();
    let bob = sqlite.add_user("bob");
    let (lc, bc) = (
        Client::new(&server.url, &local.token),
        Client::new(&server.url, &bob.token),
    );
    fill(&lc, "local").await;
    fill(&bc, "bob").await;
    // A session with a beacon capability registered: it must survive the copy.
    let secret = "7".repeat(64);
    let mut held = session("local-held", 1, false);
    held.started_at = now_ms() - 60_000;
    held.wall_secs = 30;
    held.active_secs = 10;
    let mut body = serde_json::to_value(&held).unwrap();
    body["beacon_hash"] = sha256_hex(&secret).into();
    let r = lc
        .http
        .put(format!("{}/api/v1/sessions/local-held", server.url))
        .bearer_auth(&lc.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let issued =
        String::from_utf8(sqlite.cli(&["token", "issue", "--user", "bob"]).stdout).unwrap();
    let revoked_id = issued.lines().find_map(|l| l.strip_prefix("id ")).unwrap();
    let revoked = issued
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .unwrap()
        .to_string();
    assert!(sqlite
        .cli(&["token", "revoke", revoked_id])
        .status
        .success());
    let before = (answers(&lc).await, answers(&bc).await);
    drop(server);

    let url = pg.url.clone().unwrap();
    let out = sqlite.cli(&["migrate", "--to", &url]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "migrate: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("copied 2 users, 5 tokens, 61 sessions, 600 activities"),
        "reports counts: {said}"
    );

    let server = start(&pg);
    assert!(server.pairing.is_none(), "the copied users are there");
    let (lc, bc) = (
        Client::new(&server.url, &local.token),
        Client::new(&server.url, &bob.token),
    );
    assert_eq!(answers(&lc).await, before.0, "local's answers are the same");
    assert_eq!(answers(&bc).await, before.1, "bob's answers are the same");
    let r = lc
        .http
        .get(format!("{}/api/v1/whoami", server.url))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked token stays revoked");
    // Repeats of migrated data are duplicates; new users get fresh ids.
    let mut again = activity("local-a0-5");
    again.session_id = "local-s5".into();
    again.at += 5;
    let ack: BatchAck = lc.batch(vec![again]).await.json().await.unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (0, 1));
    // The copied capability works on PostgreSQL: the beacon ends its session.
    let mut end = held.clone();
    end.revision = 2;
    end.ended_at = Some(held.started_at + 30_000);
    let beacon =
        serde_json::json!({"session_id": "local-held", "beacon_secret": secret, "sessions": [end]});
    let r = lc
        .http
        .post(format!("{}/api/v1/beacon", server.url))
        .body(beacon.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended = lc
        .sessions()
        .await
        .into_iter()
        .find(|s| s.id == "local-held")
        .unwrap();
    assert_eq!((ended.revision, ended.ended_at), (2, end.ended_at));
    let carol = Client::new(&server.url, &pg.add_user("carol").token);
    assert_eq!(carol.get("/api/v1/whoami").await["user"], "carol");
    drop(server);

    // A target with data is refused unless told.
    let out = sqlite.cli(&["migrate", "--to", &url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not empty") && err.contains("3 users"),
        "says why: {err}"
    );
    let out = sqlite.cli(&["migrate", "--to", &url, "--force"]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("replaced 3 users") && said.contains("copied 2 users"),
        "{said}"
    );
    pg.remove().await;
    sqlite.remove().await;
}

/// A TCP relay between the server and PostgreSQL that can be cut and restored.
struct Relay {
    addr: std::net::SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            target: target.to_string(),
            tasks: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// The database stops answering: no listener, every connection closed.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

async fn health(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{url}/api/v1/health")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn until_health(url: &str, status: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = health(url).await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {got}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The answer's `Retry-After`, in seconds.
fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers().get("retry-after")?.to_str().ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_the_database_does_not_answer_and_200_once_it_does() {
    let Some(db) = Db::fresh(Backend::Postgres, "health").await else {
        return;
    };
    let pg: tokio_postgres::Config = common::pg_base_url().unwrap().parse().unwrap();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let relay = Relay::start(&format!("{host}:{port}")).await;
    let via = db.via(&relay.addr.to_string());
    let server = start(&via);
    let c = Client::new(&server.url, &server.pairing.clone().unwrap().token);
    let (status, body) = health(&server.url).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    relay.cut();
    let body = until_health(&server.url, 503).await;
    assert_eq!(body["status"], "unavailable");
    let r = reqwest::get(format!("{}/api/v1/health", server.url))
        .await
        .unwrap();
    assert_eq!(retry_after(&r), Some(5), "health says when to look again");
    let r = c.batch(vec![activity("during")]).await;
    assert_eq!(r.status(), 503, "writes are refused as retryable, not lost");
    assert_eq!(retry_after(&r), Some(5), "and say when to try again");

    relay.restore().await;
    until_health(&server.url, 200).await;
    let ack: BatchAck = c
        .batch(vec![activity("during")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ack.accepted, 1,
        "the retried write lands once the database is back"
    );
    drop(server);
    relay.cut();
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_an_empty_database_create_the_schema_and_one_user() {
    let Some(db) = Db::fresh(Backend::Postgres, "start_together").await else {
        return;
    };
    let db = Arc::new(db);
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || start(&db))
        })
        .collect();
    let servers: Vec<_> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    let pairings: Vec<_> = servers.iter().filter_map(|s| s.pairing.clone()).collect();
    assert_eq!(pairings.len(), 1, "exactly one instance created `local`");
    for s in &servers {
        let c = Client::new(&s.url, &pairings[0].token);
        assert_eq!(c.get("/api/v1/whoami").await["user"], "local");
    }
    drop(servers);
    if let Ok(db) = Arc::try_unwrap(db) {
        db.remove().await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn sha256_hex(secret: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
