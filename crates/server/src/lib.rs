//! ReviewTime's server: the HTTP API the extension syncs to, and the dashboard.
//!
//! Modules:
//! - [`db`]: SQLite file, WAL, migrations.
//! - [`auth`]: API tokens and beacon keys, stored hashed.
//! - [`store`]: validation, idempotent writes, per-user reads.
//! - [`api`]: routes, limits and handlers under `/api/v1`.
//! - [`dashboard`]: the page at `/`.
//! - [`error`]: internal errors and the JSON error answers.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::http::{header, Method};
use reviewtime_protocol::Pairing;
use tower_http::cors::{Any, CorsLayer};

use crate::error::ServerError;

/// Prints a line to stdout, ignoring a closed pipe: a server must not die
/// because whoever started it stopped reading its output.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The whole application: API, dashboard, CORS for bearer-token clients.
pub fn app(conn: rusqlite::Connection) -> axum::Router {
    let state = api::AppState {
        db: Arc::new(Mutex::new(conn)),
    };
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

/// On an empty database, creates the local user with a token and a beacon key
/// and returns the pairing; `None` when users already exist.
pub fn first_run(
    conn: &rusqlite::Connection,
    server_url: &str,
) -> Result<Option<Pairing>, ServerError> {
    if !db::is_empty(conn)? {
        return Ok(None);
    }
    let now = now_ms();
    let user = db::create_user(conn, "local", now)?;
    Ok(Some(pair_user(conn, user, server_url)?))
}

/// Issues a new token and beacon key for `user` and returns the pairing.
pub fn pair_user(
    conn: &rusqlite::Connection,
    user: i64,
    server_url: &str,
) -> Result<Pairing, ServerError> {
    let now = now_ms();
    let token = auth::issue(conn, user, auth::Kind::Api, now)?;
    let beacon = auth::issue(conn, user, auth::Kind::Beacon, now)?;
    Ok(Pairing {
        server: server_url.to_string(),
        token: token.secret,
        beacon_key: beacon.secret,
    })
}

/// Serves until Ctrl-C, SIGTERM, or `exit_after` elapses.
pub async fn serve(
    addr: SocketAddr,
    data: &Path,
    exit_after: Option<std::time::Duration>,
) -> Result<(), ServerError> {
    let conn = db::open(data)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let url = format!("http://{local}");
    if let Some(pairing) = first_run(&conn, &url)? {
        let link = pairing.to_link();
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
    axum::serve(listener, app(conn))
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
