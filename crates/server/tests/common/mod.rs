//! The harness the server's tests share: a fresh database per test on either
//! backend, the real server binary on 127.0.0.1, and an HTTP client.
//!
//! PostgreSQL tests use the server `REVIEWTIME_TEST_PG` names (scripts/pg.sh
//! starts one; scripts/test.sh does so for the test command), each in a
//! schema of its own so tests never see each other's rows. Without that
//! variable they are skipped with a note, unless `REVIEWTIME_REQUIRE_PG` is
//! set (as the test command does), which makes them fail instead.
#![allow(dead_code, clippy::unwrap_used, clippy::zombie_processes)] // Server::drop waits for the child.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use reviewtime_protocol::{Activity, ActivityBatch, ActivityKind, Pairing, PullRef, SessionRecord};

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database: a data directory, and for PostgreSQL a URL whose
/// search_path is the test's own schema.
pub struct Db {
    pub backend: Backend,
    pub data: PathBuf,
    pub url: Option<String>,
    pub schema: Option<String>,
}

/// The PostgreSQL server to test against, or `None` (skip) when not
/// configured; panics when the test command requires it.
pub fn pg_base_url() -> Option<String> {
    match std::env::var("REVIEWTIME_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("REVIEWTIME_REQUIRE_PG").is_some() {
                panic!("REVIEWTIME_REQUIRE_PG is set but REVIEWTIME_TEST_PG is not: the PostgreSQL tests cannot run");
            }
            // Written to the terminal directly (not captured), once per test binary.
            static TOLD: std::sync::Once = std::sync::Once::new();
            TOLD.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: REVIEWTIME_TEST_PG is not set: the PostgreSQL tests pass without running (scripts/pg.sh starts a server)"
                );
            });
            None
        }
    }
}

/// A connection for setting up schemas and looking at rows directly.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// `url` with `?options=-c search_path=<schema>` added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Db {
    /// A fresh, empty database for the test `name`; `None` to skip.
    pub async fn fresh(backend: Backend, name: &str) -> Option<Db> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{name}_{}_{n}", std::process::id());
        let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{backend:?}"));
        let _ = std::fs::remove_dir_all(&data);
        match backend {
            Backend::Sqlite => Some(Db {
                backend,
                data,
                url: None,
                schema: None,
            }),
            Backend::Postgres => {
                let base = pg_base_url()?;
                let schema = format!("t_{tag}").to_lowercase();
                admin(&base)
                    .await
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .unwrap();
                Some(Db {
                    backend,
                    data,
                    url: Some(with_schema(&base, &schema)),
                    schema: Some(schema),
                })
            }
        }
    }

    /// The global arguments that select this database.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--data".to_string(), self.data.display().to_string()];
        if let Some(url) = &self.url {
            args.push("--database".into());
            args.push(url.clone());
        }
        args
    }

    /// The same database reached through `host:port` (a proxy).
    pub fn via(&self, host_port: &str) -> Db {
        let url = self.url.as_deref().expect("a PostgreSQL database");
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
        Db {
            backend: self.backend,
            data: self.data.clone(),
            url: Some(format!(
                "{scheme}://{}{host_port}/{path}",
                user.unwrap_or_default()
            )),
            schema: self.schema.clone(),
        }
    }

    /// Removes the test's schema (PostgreSQL) or folder (SQLite).
    pub async fn remove(self) {
        if let Some(schema) = &self.schema {
            if let Some(base) = pg_base_url() {
                let _ = admin(&base)
                    .await
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }

    /// Runs the server binary's CLI on this database.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_reviewtime-server"))
            .args(self.args())
            .args(args)
            .output()
            .unwrap()
    }

    /// `user add NAME`: its pairing.
    pub fn add_user(&self, name: &str) -> Pairing {
        let out = self.cli(&["user", "add", name]);
        let text = String::from_utf8(out.stdout).unwrap();
        Pairing::parse_link(
            text.trim()
                .strip_prefix("PAIRING ")
                .unwrap_or_else(|| panic!("user add: {}", String::from_utf8_lossy(&out.stderr))),
        )
        .unwrap()
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub pairing: Option<Pairing>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` flags that turn the write rate limits off, for the tests that
/// send thousands of writes as fast as they can.
pub const UNLIMITED: &[&str] = &["--rate-burst", "0", "--address-rate-burst", "0"];

/// Starts the server on `db` on a free port, with the default rate limits;
/// returns once it listens.
pub fn start(db: &Db) -> Server {
    start_with(db, &[])
}

/// [`start`] with more `serve` flags.
pub fn start_with(db: &Db, flags: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reviewtime-server"))
        .args(db.args())
        .args(["serve", "--addr", "127.0.0.1:0", "--exit-after", "600"])
        .args(flags)
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

pub fn session(id: &str, revision: u64, ended: bool) -> SessionRecord {
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

pub fn activity(id: &str) -> Activity {
    Activity {
        id: id.into(),
        session_id: "s1".into(),
        at: 1_700_000_001_000,
        kind: ActivityKind::CommentPosted,
    }
}

/// An API client with one token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Self {
        Client {
            http: reqwest::Client::new(),
            url: url.into(),
            token: token.into(),
        }
    }
    pub async fn put(&self, s: &SessionRecord) -> reqwest::Response {
        self.http
            .put(format!("{}/api/v1/sessions/{}", self.url, s.id))
            .bearer_auth(&self.token)
            .json(s)
            .send()
            .await
            .unwrap()
    }
    pub async fn batch(&self, items: Vec<Activity>) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/activities/batch", self.url))
            .bearer_auth(&self.token)
            .json(&ActivityBatch { activities: items })
            .send()
            .await
            .unwrap()
    }
    /// `GET path` as JSON, asserting a 200.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
    pub async fn sessions(&self) -> Vec<SessionRecord> {
        let page = self.get("/api/v1/sessions?limit=500").await;
        serde_json::from_value(page["sessions"].clone()).unwrap()
    }
    /// How many activities the server holds for this user.
    pub async fn activity_count(&self) -> u64 {
        self.get("/api/v1/activities?limit=1").await["total"]
            .as_u64()
            .unwrap()
    }
}

/// A small deterministic shuffle (xorshift), so a failing order can be replayed.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
