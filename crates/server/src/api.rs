//! The HTTP API under `/api/v1`: routes, authentication, limits, handlers.
//!
//! Bodies are read as bytes and parsed here, so that every bad input gets a
//! JSON [`Reject`] with a stable code rather than a framework's plain text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use reviewtime_protocol::fields::Field;
use reviewtime_protocol::{routes, Activity, BatchAck, SessionAck, SessionRecord, WhoAmI};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Kind};
use crate::error::{Reject, UNAVAILABLE_RETRY_SECS};
use crate::now_ms;
use crate::rate::RateLimits;
use crate::store::{
    self, ActivityPage, Backend, BeaconTarget, BeaconWrite, NewActivity, Refusal, SessionPage,
    SessionWrite, Store, Totals, UserId, Writer, MAX_REVISION_STEP,
};
use crate::validate::{self, ActivityQuery, SessionQuery, TotalsQuery};

/// Shared by every handler: the store (one per process; it holds the pool or
/// the connection) and the write limits.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Rate limits on writes.
    pub limits: Arc<RateLimits>,
}

/// How long the health check waits for the database before calling it down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest body any endpoint reads; batch and beacon bodies have tighter limits checked below.
const BODY_LIMIT: usize = 256 * 1024;

/// The API's routes. Writes count against the client address's rate limit
/// before anything else runs, and against the credential's once it is known.
pub fn router(state: AppState) -> Router {
    let writes = Router::new()
        .route(&format!("{}/{{id}}", routes::SESSIONS), put(put_session))
        .route(routes::ACTIVITIES_BATCH, post(post_batch))
        .route(routes::BEACON, post(post_beacon))
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_address));
    Router::new()
        .route(routes::HEALTH, get(health))
        .route(routes::WHOAMI, get(whoami))
        .route(routes::SESSIONS, get(list_sessions))
        .route(routes::ACTIVITIES, get(list_activities))
        .route(routes::TOTALS, get(totals))
        .merge(writes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Every answer is JSON with a code, even for a path the API does not have
/// (the application's fallback).
pub async fn no_route() -> Reject {
    Reject::not_found("no such endpoint; the API lives under /api/v1")
}

/// The answer to a method a path does not take (the application's fallback).
pub async fn wrong_method() -> Reject {
    Reject {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this endpoint does not take that method".into(),
        retry_after: None,
    }
}

/// Counts a write against its client address (known when the server runs
/// with connection info, as `serve` does).
async fn limit_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(address) = state.limits.client_address(request.headers(), peer) {
        if let Err(refused) = state.limits.check_address(address) {
            return refused.into_response();
        }
    }
    next.run(request).await
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

/// The user behind the request's API token, with the write counted against
/// the token's rate limit (keyed by its hash).
async fn writer(state: &AppState, headers: &HeaderMap) -> Result<UserId, Reject> {
    let token = bearer(headers)?;
    let (user, _) = auth::lookup(state.store.as_ref(), &token, Kind::Api)
        .await?
        .ok_or_else(|| {
            Reject::unauthorized("unknown or revoked token; pair the extension again")
        })?;
    state.limits.check_token(&auth::hash(&token))?;
    Ok(user)
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

/// `GET /api/v1/health`: 200 when the database answers, 503 with
/// `Retry-After` when it does not (so a load balancer takes this instance
/// out of rotation). A superset
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
    if ok {
        (StatusCode::OK, Json(answer)).into_response()
    } else {
        let retry_after = [(header::RETRY_AFTER, UNAVAILABLE_RETRY_SECS)];
        (StatusCode::SERVICE_UNAVAILABLE, retry_after, Json(answer)).into_response()
    }
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

/// The answer to a refused session write; nothing was stored.
fn refused(id: &str, why: Refusal) -> Reject {
    match why {
        Refusal::OtherSession(stored) => Reject::conflict(format!(
            "session {id} is already recorded for {} started at {}",
            stored.pr, stored.started_at
        )),
        Refusal::OtherBeaconHash => Reject {
            status: StatusCode::CONFLICT,
            code: "beacon_hash_conflict",
            message: format!(
                "session {id} already has another beacon_hash registered; the first one stays"
            ),
            retry_after: None,
        },
        Refusal::RevisionJump { stored, sent } => Reject::invalid(
            "revision_jump",
            format!(
                "session {id}: revision {sent} is more than {MAX_REVISION_STEP} above the stored {stored}"
            ),
        ),
    }
}

/// What a session PUT may carry beside the [`SessionRecord`]'s fields.
#[derive(Debug, Deserialize)]
struct SessionExtras {
    /// Hex SHA-256 of the session's beacon secret (registers its capability).
    #[serde(default)]
    beacon_hash: Option<String>,
}

async fn put_session(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SessionAck>, Reject> {
    let Path(id) =
        id.map_err(|e| Reject::bad_request(format!("bad session id in the path: {e}")))?;
    let user = writer(&state, &headers).await?;
    let body = body_bytes(body, routes::MAX_BATCH_BYTES, "session")?;
    let record: SessionRecord = parse_json(&body, "session")?;
    let extras: SessionExtras = parse_json(&body, "session")?;
    if record.id != id {
        return Err(Reject::bad_request(format!(
            "session id in the body ({}) differs from the one in the path ({id})",
            record.id
        )));
    }
    let now = now_ms();
    validate::validate_session(&record, now)?;
    if let Some(hash) = &extras.beacon_hash {
        validate::check_beacon_hash(hash)?;
    }
    let writer = Writer::Client {
        beacon_hash: extras.beacon_hash,
    };
    let ack = match state.store.put_session(user, &record, &writer, now).await? {
        SessionWrite::Applied(session) => SessionAck {
            session,
            applied: true,
        },
        SessionWrite::Unchanged(session) => SessionAck {
            session,
            applied: false,
        },
        SessionWrite::Refused(why) => return Err(refused(&record.id, why)),
    };
    Ok(Json(ack))
}

/// A batch body as read before its items are: `{"activities": [...]}` with
/// each item still raw JSON, so that one unreadable item is answered on its
/// own instead of failing the whole request.
#[derive(Debug, Deserialize)]
struct RawBatch {
    activities: Vec<serde_json::Value>,
}

/// `POST /api/v1/activities/batch`: stores every valid item and answers
/// 200 with each item accounted for once ([`BatchAck`]); an invalid item is
/// listed in `rejected` and does not hold back the others. A body that is
/// not a batch, too large, or holding an item without an id is refused as
/// a whole (400/413) and stores nothing.
async fn post_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAck>, Reject> {
    let user = writer(&state, &headers).await?;
    let body = body_bytes(body, routes::MAX_BATCH_BYTES, "batch")?;
    let batch: RawBatch = parse_json(&body, "batch")?;
    let now = now_ms();
    let sorted = validate::sort_batch(&batch.activities, now)?;
    let mut ack = if sorted.valid.is_empty() {
        BatchAck::default()
    } else {
        let items = encode(&sorted.valid)?;
        state.store.put_activities(user, &items, now).await?
    };
    ack.rejected = sorted.rejected;
    debug_assert_eq!(ack.accounted(), batch.activities.len());
    Ok(Json(ack))
}

/// A beacon body, either form: a session's own capability (`session_id` +
/// `beacon_secret`, the protocol's `SessionBeacon`) or the deprecated
/// user-wide `key` (`BeaconPayload`).
#[derive(Debug, Deserialize)]
struct BeaconBody {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    beacon_secret: Option<String>,
    #[serde(default)]
    sessions: Vec<SessionRecord>,
    #[serde(default)]
    activities: Vec<Activity>,
}

/// Who a beacon speaks for.
enum BeaconCredential<'a> {
    /// One session's own capability.
    Session { id: &'a str, secret: &'a str },
    /// The deprecated user-wide beacon key.
    UserKey(&'a str),
}

impl BeaconBody {
    fn credential(&self) -> Result<BeaconCredential<'_>, Reject> {
        match (&self.key, &self.session_id, &self.beacon_secret) {
            (None, Some(id), Some(secret)) => Ok(BeaconCredential::Session { id, secret }),
            (Some(key), None, None) => Ok(BeaconCredential::UserKey(key)),
            (None, None, None) => Err(Reject::unauthorized(
                "a beacon needs its session_id and beacon_secret",
            )),
            _ => Err(Reject::bad_request(
                "a beacon carries either session_id with beacon_secret, or the deprecated key, not a mix",
            )),
        }
    }
}

/// The owner of session `id` if `secret` is its registered capability, and
/// the beacon records that session only (at most one record of it, and its
/// activities).
async fn session_capability(
    state: &AppState,
    payload: &BeaconBody,
    id: &str,
    secret: &str,
) -> Result<UserId, Reject> {
    validate::check_text(Field::SessionId, id)?;
    validate::check_beacon_secret(secret)?;
    let hash = auth::hash(secret);
    let BeaconTarget::Owner(user) = state.store.beacon_target(id, &hash).await? else {
        return Err(Reject {
            status: StatusCode::NOT_FOUND,
            code: "unknown_session",
            message: format!(
                "no session {id} accepts this beacon secret: the server has not seen the session (or it was registered with another secret)"
            ),
            retry_after: None,
        });
    };
    state.limits.check_token(&hash)?;
    if payload.sessions.len() > 1 {
        return Err(Reject::bad_request(
            "a session beacon carries at most one session record",
        ));
    }
    let records = payload.sessions.iter().map(|s| &s.id);
    let activities = payload.activities.iter().map(|a| &a.session_id);
    if let Some(other) = records.chain(activities).find(|other| *other != id) {
        return Err(Reject::forbidden(
            "beacon_scope",
            format!("this beacon may record session {id} only, not {other}"),
        ));
    }
    Ok(user)
}

/// The owner of the deprecated user-wide beacon `key`, which may record
/// ended sessions only.
async fn user_key(state: &AppState, payload: &BeaconBody, key: &str) -> Result<UserId, Reject> {
    let (user, _) = auth::lookup(state.store.as_ref(), key, Kind::Beacon)
        .await?
        .ok_or_else(|| Reject::unauthorized("unknown or revoked beacon key"))?;
    state.limits.check_token(&auth::hash(key))?;
    if payload.sessions.iter().any(|s| s.ended_at.is_none()) {
        return Err(Reject::bad_request(
            "a beacon key may only record ended sessions",
        ));
    }
    if payload.sessions.len() > routes::MAX_BATCH_ITEMS {
        return Err(Reject::too_large(format!(
            "beacon holds {} sessions; the limit is {}",
            payload.sessions.len(),
            routes::MAX_BATCH_ITEMS
        )));
    }
    Ok(user)
}

/// `POST /api/v1/beacon`: no Authorization header (`sendBeacon` cannot send
/// one); the credential is in the body. Its sessions are written as
/// [`Writer::Beacon`]: provisional, bounded, never blocking the client.
async fn post_beacon(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAck>, Reject> {
    let body = body_bytes(body, routes::MAX_BEACON_BYTES, "beacon")?;
    let payload: BeaconBody = parse_json(&body, "beacon")?;
    let user = match payload.credential()? {
        BeaconCredential::Session { id, secret } => {
            session_capability(&state, &payload, id, secret).await?
        }
        BeaconCredential::UserKey(key) => user_key(&state, &payload, key).await?,
    };
    let now = now_ms();
    for s in &payload.sessions {
        validate::validate_session(s, now)?;
    }
    validate::validate_batch(&payload.activities, now)?;
    let items = encode(&payload.activities)?;
    match state
        .store
        .put_beacon(user, &payload.sessions, &items, now)
        .await?
    {
        BeaconWrite::Stored(ack) => Ok(Json(ack)),
        BeaconWrite::Refused(id, why) => Err(refused(&id, why)),
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
