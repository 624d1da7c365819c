//! The HTTP API under `/api/v1`: routes, authentication, limits, handlers.
//!
//! Bodies are read as bytes and parsed here, so that every bad input gets a
//! JSON [`Reject`] with a stable code rather than a framework's plain text.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use reviewtime_protocol::{
    routes, Activity, ActivityBatch, BatchAck, BeaconPayload, SessionAck, SessionRecord, WhoAmI,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Kind};
use crate::error::Reject;
use crate::now_ms;
use crate::store::{
    self, ActivityPage, Backend, BeaconWrite, NewActivity, SessionPage, SessionWrite, Store,
    Totals, UserId,
};
use crate::validate::{self, ActivityQuery, SessionQuery, TotalsQuery};

/// Shared by every handler: the store (one per process; it holds the pool or
/// the connection).
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
}

/// How long the health check waits for the database before calling it down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

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
async fn user(state: &AppState, headers: &HeaderMap) -> Result<UserId, Reject> {
    Ok(owner(state, headers).await?.0)
}

async fn owner(state: &AppState, headers: &HeaderMap) -> Result<(UserId, String), Reject> {
    let token = bearer(headers)?;
    auth::lookup(state.store.as_ref(), &token, Kind::Api)
        .await?
        .ok_or_else(|| Reject::unauthorized("unknown or revoked token; pair the extension again"))
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

/// `GET /api/v1/health`: 200 when the database answers, 503 when it does
/// not (so a load balancer takes this instance out of rotation). A superset
/// of the protocol's `Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAnswer {
    /// `ok`, or `unavailable` when the database does not answer.
    pub status: String,
    /// Server version.
    pub version: String,
    /// `sqlite` or `postgres`.
    pub database: Backend,
}

async fn health(State(state): State<AppState>) -> Response {
    let answered = tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await;
    let ok = match answered {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            eprintln!("health: {e}");
            false
        }
        Err(_) => {
            eprintln!("health: the database did not answer within {HEALTH_TIMEOUT:?}");
            false
        }
    };
    let answer = HealthAnswer {
        status: if ok { "ok" } else { "unavailable" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        database: state.store.backend(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(answer)).into_response()
}

async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<WhoAmI>, Reject> {
    let (_, name) = owner(&state, &headers).await?;
    Ok(Json(WhoAmI { user: name }))
}

fn encode(items: &[Activity]) -> Result<Vec<NewActivity>, Reject> {
    items
        .iter()
        .map(|a| NewActivity::encode(a).map_err(|e| Reject::bad_request(e.to_string())))
        .collect()
}

fn session_conflict(id: &str, stored: &SessionRecord) -> Reject {
    Reject::conflict(format!(
        "session {id} is already recorded for {} started at {}",
        stored.pr, stored.started_at
    ))
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
    validate::validate_session(&record)?;
    let ack = match state.store.put_session(user, &record, now_ms()).await? {
        SessionWrite::Applied(session) => SessionAck {
            session,
            applied: true,
        },
        SessionWrite::Unchanged(session) => SessionAck {
            session,
            applied: false,
        },
        SessionWrite::Conflict(stored) => return Err(session_conflict(&record.id, &stored)),
    };
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
    validate::validate_batch(&batch.activities)?;
    let items = encode(&batch.activities)?;
    Ok(Json(
        state.store.put_activities(user, &items, now_ms()).await?,
    ))
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
        validate::validate_session(s)?;
    }
    validate::validate_batch(&payload.activities)?;
    let items = encode(&payload.activities)?;
    let (user, _) = auth::lookup(state.store.as_ref(), &payload.key, Kind::Beacon)
        .await?
        .ok_or_else(|| Reject::unauthorized("unknown or revoked beacon key"))?;
    match state
        .store
        .put_beacon(user, &payload.sessions, &items, now_ms())
        .await?
    {
        BeaconWrite::Stored(ack) => Ok(Json(ack)),
        BeaconWrite::Conflict(stored) => Err(session_conflict(&stored.id, &stored)),
    }
}

async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionPage>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    let filter = query.filter()?;
    Ok(Json(state.store.sessions(user, &filter).await?))
}

async fn totals(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TotalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Totals>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    let (first_day, days) = query.range(now_ms())?;
    let rows = state.store.totals(user, first_day * store::DAY_MS).await?;
    Ok(Json(Totals::from_rows(rows, first_day, days)))
}

async fn list_activities(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ActivityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActivityPage>, Reject> {
    let user = user(&state, &headers).await?;
    let Query(query) = query.map_err(|e| Reject::bad_request(format!("bad query: {e}")))?;
    let filter = query.filter()?;
    Ok(Json(state.store.activities(user, &filter).await?))
}
