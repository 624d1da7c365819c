//! ReviewTime's server: the HTTP API the extension syncs to, and the dashboard.
//!
//! Modules:
//! - [`store`]: the storage interface and its contract; [`store::sqlite`]
//!   (embedded, the default) and [`store::postgres`] (shared by several
//!   instances) implement it.
//! - [`validate`]: what clients send, checked before it reaches a store.
//! - [`auth`]: API tokens and beacon keys, stored hashed.
//! - [`api`]: routes, limits and handlers under `/api/v1`.
//! - [`dashboard`]: the page at `/`.
//! - [`migrate`]: copying an SQLite database into PostgreSQL.
//! - [`error`]: internal errors and the JSON error answers.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod migrate;
pub mod store;
pub mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{header, Method};
use reviewtime_protocol::Pairing;
use tower_http::cors::{Any, CorsLayer};

use crate::error::ServerError;
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
pub fn app(store: Arc<dyn Store>) -> axum::Router {
    let state = api::AppState { store };
    // Tokens travel in a header, never in cookies, so any origin may call the API.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::PUT, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    api::router(state).merge(dashboard::router()).layer(cors)
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
    } = options;
    let store = database.open(pool_size).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}");
    say!("DATABASE {database}");
    if let Some(pairing) = first_run(store.as_ref(), &url).await? {
        let link = pairing.to_link();
        std::fs::create_dir_all(&data)?;
        let file = data.join("pairing-link.txt");
        std::fs::write(&file, format!("{link}\n"))?;
        restrict(&file);
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
    axum::serve(listener, app(store))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}
#[cfg(not(unix))]
fn restrict(_: &Path) {}
