//! Errors: internal ones, and the JSON answers clients get.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reviewtime_protocol::ApiError;

use crate::store::StoreError;

/// Something failed inside the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The OS random source.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Files or sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The `Retry-After` of a 503, in seconds: long enough not to hammer a
/// database that is restarting or failing over, short enough that a
/// client's writes resume soon after it is back. The client's own backoff
/// takes over if the next try fails too.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// An error answer: an HTTP status, a stable code and a message in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// Seconds to send as `Retry-After` (429 and 503), after which the
    /// client may send again; it holds every request until then.
    pub retry_after: Option<u64>,
}

impl Reject {
    /// 400 with a specific stable code: the request is well-formed but what
    /// it says cannot be stored (out of bounds, inconsistent).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 403 with a specific stable code: authenticated, but not allowed this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 429 `rate_limited`, to be tried again after `retry_after` seconds.
    pub fn rate_limited(what: &str, retry_after: u64) -> Self {
        Reject {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!(
                "too many writes from this {what}; nothing was stored, try again in {retry_after} s"
            ),
            retry_after: Some(retry_after),
        }
    }
    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after: None,
        }
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            retry_after: None,
        }
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            retry_after: None,
        }
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            retry_after: None,
        }
    }
    /// 503: the database does not answer; the request may be repeated
    /// after [`UNAVAILABLE_RETRY_SECS`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            retry_after: Some(UNAVAILABLE_RETRY_SECS),
        }
    }
    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        Reject {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<ServerError> for Reject {
    fn from(e: ServerError) -> Self {
        if let ServerError::Store(StoreError::Unavailable(why)) = &e {
            eprintln!("database unavailable: {why}");
            return Reject::unavailable(
                "the server cannot reach its database; nothing was stored, try again later",
            );
        }
        eprintln!("internal error: {e}");
        Reject {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server failed to handle this request; it was not stored".into(),
            retry_after: None,
        }
    }
}

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Self {
        ServerError::Store(e).into()
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let body = ApiError {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
