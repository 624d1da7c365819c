//! The HTTP API under `/api/v1`: routes, authentication, limits, handlers.
//!
//! Bodies are read as bytes and parsed here, so that every bad input gets a
//! JSON [`Reject`] with a stable code rather than a framework's plain text.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use reviewtime_protocol::{
    routes, ActivityBatch, BatchAck, BeaconPayload, Health, SessionAck, SessionRecord, WhoAmI,
};
use rusqlite::Connection;
use serde::de::DeserializeOwned;

use crate::auth::{self, Kind};
use crate::error::{Reject, ServerError};
use crate::now_ms;
use crate::store;

/// Shared by every handler: one connection, used from blocking tasks.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Arc<Mutex<Connection>>,
}

/// Largest body any endpoint reads; batch and beacon bodies have tighter limits checked below.
const BODY_LIMIT: usize = 256 * 1024;

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(routes::HEALTH, get(health))
        .route(routes::WHOAMI, get(whoami))
        .route(routes::SESSIONS, get(list_sessions))
        .route(&format!("{}/{{id}}", routes::SESSIONS), put(put_session))
        .route(routes::ACTIVITIES, get(list_activities))
        .route(routes::ACTIVITIES_BATCH, post(post_batch))
        .route(routes::BEACON, post(post_beacon))
        .route(routes::TOTALS, get(totals))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Runs `f` on the connection in a blocking task.
async fn with_db<T, F>(state: &AppState, f: F) -> Result<T, Reject>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, Reject> + Send + 'static,
{
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    })
    .await
    .map_err(|e| Reject::from(ServerError::Join(e.to_string())))?
}

fn bearer(headers: &HeaderMap) -> Result<String, Reject> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            Reject::unauthorized(
                "missing Authorization header; send `Authorization: Bearer <token>`",
            )
        })?;
    let value = value
        .to_str()
        .map_err(|_| Reject::unauthorized("Authorization header is not text"))?;
    value
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Reject::unauthorized("Authorization header must be `Bearer <token>`"))
}

/// The user behind the request's API token.
async fn user(state: &AppState, headers: &HeaderMap) -> Result<i64, Reject> {
    let token = bearer(headers)?;
    with_db(state, move |conn| {
        auth::lookup(conn, &token, Kind::Api)?
            .map(|(id, _)| id)
            .ok_or_else(|| {
                Reject::unauthorized("unknown or revoked token; pair the extension again")
            })
    })
    .await
}

fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
    what: &str,
) -> Result<Bytes, Reject> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Reject::too_large(format!("{what} body is larger than the server accepts"))
        } else {
            Reject::bad_request(format!("could not read the body: {e}"))
        }
    })?;
    if body.len() > limit {
        return Err(Reject::too_large(format!(
            "{what} body is {} bytes; the limit is {limit}",
            body.len()
        )));
    }
    Ok(body)
}

fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Reject> {
    serde_json::from_slice(body)
        .map_err(|e| Reject::bad_request(format!("{what} is not valid: {e}")))
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<WhoAmI>, Reject> {
    let token = bearer(&headers)?;
    with_db(&state, move |conn| {
        auth::lookup(conn, &token, Kind::Api)?
            .map(|(_, name)| Json(WhoAmI { user: name }))
            .ok_or_else(|| {
                Reject::unauthorized("unknown or revoked token; pair the extension again")
            })
    })
    .await
}

async fn put_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SessionAck>, Reject> {
    let user = user(&state, &headers).await?;
    let body = body_bytes(body, routes::MAX_BATCH_BYTES, "session")?;
    let record: SessionRecord = parse_json(&body, "session")?;
    if record.id != id {
        return Err(Reject::bad_request(format!(
            "session id in the body ({}) differs from the one in the path ({id})",
            record.id
        )));
    }
    store::validate_session(&record)?;
    let now = now_ms();
    let ack = with_db(&state, move |conn| {
        let tx = conn.transaction()?;
        let ack = store::upsert_session(&tx, user, &record, now)?;
        tx.commit()?;
        Ok(ack)
    })
    .await?;
    Ok(Json(ack))
}

async fn post_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAck>, Reject> {
    let user = user(&state, &headers).await?;
    let body = body_bytes(body, routes::MAX_BATCH_BYTES, "batch")?;
    let batch: ActivityBatch = parse_json(&body, "batch")?;
    store::validate_batch(&batch.activities)?;
    let now = now_ms();
    let ack = with_db(&state, move |conn| {
        let tx = conn.transaction()?;
        let ack = store::insert_activities(&tx, user, &batch.activities, now)?;
        tx.commit()?;
        Ok(ack)
    })
    .await?;
    Ok(Json(ack))
}

async fn post_beacon(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAck>, Reject> {
    let body = body_bytes(body, routes::MAX_BEACON_BYTES, "beacon")?;
    let payload: BeaconPayload = parse_json(&body, "beacon")?;
    if payload.sessions.iter().any(|s| s.ended_at.is_none()) {
        return Err(Reject::bad_request(
            "a beacon may only record ended sessions",
        ));
    }
    for s in &payload.sessions {
        store::validate_session(s)?;
    }
    store::validate_batch(&payload.activities)?;
    let now = now_ms();
    with_db(&state, move |conn| {
        let (user, _) = auth::lookup(conn, &payload.key, Kind::Beacon)?
            .ok_or_else(|| Reject::unauthorized("unknown or revoked beacon key"))?;
        let tx = conn.transaction()?;
        for s in &payload.sessions {
            store::upsert_session(&tx, user, s, now)?;
        }
        let ack = store::insert_activities(&tx, user, &payload.activities, now)?;
        tx.commit()?;
        Ok(Json(ack))
    })
    .await
}

async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<store::SessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<store::SessionPage>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    with_db(&state, move |conn| {
        store::list_sessions(conn, user, &query).map(Json)
    })
    .await
}

async fn totals(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<store::TotalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<store::Totals>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    let now = now_ms();
    with_db(&state, move |conn| {
        store::totals(conn, user, &query, now).map(Json)
    })
    .await
}

async fn list_activities(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<store::ActivityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<store::ActivityPage>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    with_db(&state, move |conn| {
        store::list_activities(conn, user, &query).map(Json)
    })
    .await
}
