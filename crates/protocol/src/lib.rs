//! Wire types shared by the ReviewTime extension and server.
//!
//! Everything that crosses the network (or a `chrome.runtime` message) is
//! defined here once, with serde, so both sides agree by construction.
//! Times are Unix milliseconds ([`UnixMillis`]); ids are client-generated
//! strings the server deduplicates on (docs/ARCHITECTURE.md invariant 2).
//!
//! Modules:
//! - [`wire`]: request and response bodies (re-exported at the root).
//! - [`routes`]: the API's paths and size limits.
//! - [`pairing`]: the pairing link, read by one rule everywhere.
//! - [`fields`]: what a record's text fields may hold, checked alike by the
//!   client and the server.
#![deny(missing_docs)]

pub mod fields;
pub mod pairing;
pub mod routes;
pub mod wire;

pub use fields::{check_activity_fields, check_session_fields, FieldError};
pub use pairing::{Pairing, PairingFragment};
pub use wire::*;
