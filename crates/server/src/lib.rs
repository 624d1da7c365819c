//! ReviewTime's server: the HTTP API the extension syncs to, and the dashboard.
//!
//! Modules:
//! - [`store`]: the storage interface and its contract; [`store::sqlite`]
//!   (embedded, the default) and [`store::postgres`] (shared by several
//!   instances) implement it.
//! - [`validate`]: what clients send, checked before it reaches a store.
//! - [`auth`]: API tokens and beacon keys, stored hashed.
//! - [`api`]: routes, limits and handlers under `/api/v1`.
//! - [`rate`]: rate limits on writes, per credential and per address.
//! - [`dashboard`]: the page at `/`.
//! - [`migrate`]: copying an SQLite database into PostgreSQL.
//! - [`error`]: internal errors and the JSON error answers.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod migrate;
pub mod rate;
pub mod store;
pub mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{header, Method};
use reviewtime_protocol::Pairing;
use tower_http::cors::{Any, CorsLayer};

use crate::error::ServerError;
use crate::rate::{Rate, RateLimits};
use crate::store::{Location, Store};

/// Prints a line to stdout, ignoring a closed pipe: a server must not die
/// because whoever started it stopped reading its output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The whole application: API, dashboard, CORS for bearer-token clients.
/// Serve it with connection info (`into_make_service_with_connect_info::<SocketAddr>`)
/// for the per-address limit to apply.
pub fn app(store: Arc<dyn Store>, limits: Arc<RateLimits>) -> axum::Router {
    let state = api::AppState { store, limits };
    // Tokens travel in a header, never in cookies, so any origin may call the API.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::PUT, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Not a CORS-safelisted answer header: without this a page's script
        // could not read how long a 429 or 503 asks it to wait.
        .expose_headers([header::RETRY_AFTER]);
    // The fallbacks come last: they cover every route merged before them.
    api::router(state)
        .merge(dashboard::router())
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(cors)
}

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// On an empty database, creates the user `local` with a token and a beacon
/// key and returns the pairing; `None` when users already exist. Of several
/// instances starting together on one empty database, one creates it.
pub async fn first_run(
    store: &dyn Store,
    server_url: &str,
) -> Result<Option<Pairing>, ServerError> {
    let (token, beacon) = (
        auth::generate(auth::Kind::Api)?,
        auth::generate(auth::Kind::Beacon)?,
    );
    let created = store
        .create_first_user("local", now_ms(), &[token.stored(), beacon.stored()])
        .await?;
    Ok(created.map(|_| pairing(server_url, token, beacon)))
}

/// Creates the user `name` with a token and a beacon key (all or nothing)
/// and returns the pairing.
pub async fn add_user(
    store: &dyn Store,
    name: &str,
    server_url: &str,
) -> Result<Pairing, ServerError> {
    let (token, beacon) = (
        auth::generate(auth::Kind::Api)?,
        auth::generate(auth::Kind::Beacon)?,
    );
    store
        .create_user(name, now_ms(), &[token.stored(), beacon.stored()])
        .await?;
    Ok(pairing(server_url, token, beacon))
}

fn pairing(server_url: &str, token: auth::Issued, beacon: auth::Issued) -> Pairing {
    Pairing {
        server: server_url.to_string(),
        token: token.secret,
        beacon_key: beacon.secret,
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0: any free port).
    pub addr: SocketAddr,
    /// The database.
    pub database: Location,
    /// Where the first start saves the pairing link.
    pub data: PathBuf,
    /// PostgreSQL connections per instance.
    pub pool_size: usize,
    /// Stop by itself after this long (tests and benchmarks).
    pub exit_after: Option<std::time::Duration>,
    /// Write limit per credential.
    pub rate_per_token: Rate,
    /// Write limit per client address.
    pub rate_per_address: Rate,
    /// The header a reverse proxy puts the client's address in, if the
    /// server is reachable only through it.
    pub address_header: Option<axum::http::HeaderName>,
}

/// Serves until Ctrl-C, SIGTERM, or `exit_after` elapses.
///
/// Prints `DATABASE <location>` (passwords hidden), a `PAIRING <link>` on
/// the first start, then `LISTENING <url>` once requests are accepted.
pub async fn serve(options: ServeOptions) -> Result<(), ServerError> {
    let ServeOptions {
        addr,
        database,
        data,
        pool_size,
        exit_after,
        rate_per_token,
        rate_per_address,
        address_header,
    } = options;
    let limits = Arc::new(
        RateLimits::new(rate_per_token, rate_per_address).with_address_header(address_header),
    );
    let store = database.open(pool_size).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}");
    say!("DATABASE {database}");
    if let Some(pairing) = first_run(store.as_ref(), &url).await? {
        let link = pairing.to_link();
        std::fs::create_dir_all(&data)?;
        let file = data.join("pairing-link.txt");
        write_private(&file, format!("{link}\n").as_bytes())?;
        say!("First start: created user `local`.");
        say!("PAIRING {link}");
        say!("(also saved in {}; open it to sign in to the dashboard, paste it in the extension's options)", file.display());
    }
    say!("LISTENING {url}");
    say!("Dashboard: {url}/");
    let shutdown = async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        let timer = async {
            match exit_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {}, _ = timer => {} }
    };
    let sweeper = {
        let limits = limits.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                limits.forget_idle();
            }
        })
    };
    let served = axum::serve(
        listener,
        app(store, limits).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sweeper.abort();
    served?;
    Ok(())
}

/// Writes `contents` to `path` so that no other user can ever read it: a
/// temporary file beside it, created new with mode 0600 (never
/// world-readable, not even for a moment), synced, then renamed over `path`
/// (atomic: a reader sees the old file or the whole new one).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}
