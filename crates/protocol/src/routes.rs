//! The HTTP API's paths and limits, versioned under `/api/v1`.

/// Liveness and version: `GET`, no authentication.
pub const HEALTH: &str = "/api/v1/health";
/// `PUT /api/v1/sessions/{id}` records a session's state; `GET /api/v1/sessions` lists them.
pub const SESSIONS: &str = "/api/v1/sessions";
/// `GET`: the user's activities (filter by `session_id`).
pub const ACTIVITIES: &str = "/api/v1/activities";
/// `POST`: a batch of activities.
pub const ACTIVITIES_BATCH: &str = "/api/v1/activities/batch";
/// `POST`, `text/plain`, no Authorization header: what `navigator.sendBeacon` can send.
pub const BEACON: &str = "/api/v1/beacon";
/// `GET`: review time per repository and per day.
pub const TOTALS: &str = "/api/v1/totals";
/// `GET`: who the token belongs to; the extension's "test connection".
pub const WHOAMI: &str = "/api/v1/whoami";

/// Most activities one batch request may carry.
pub const MAX_BATCH_ITEMS: usize = 100;
/// Largest body of one batch request, in bytes (60 KiB).
pub const MAX_BATCH_BYTES: usize = 60 * 1024;
/// Largest body `navigator.sendBeacon` reliably queues (64 KiB).
pub const MAX_BEACON_BYTES: usize = 64 * 1024;
/// Longest id, host, owner, repository name or free-text field, in bytes.
pub const MAX_FIELD_LEN: usize = 512;
