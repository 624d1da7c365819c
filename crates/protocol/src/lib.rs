//! Wire types shared by the ReviewTime extension and server.
//!
//! Everything that crosses the network (or a `chrome.runtime` message) is
//! defined here once, with serde, so both sides agree by construction.
//! Times are Unix milliseconds ([`UnixMillis`]); ids are client-generated
//! strings the server deduplicates on (docs/ARCHITECTURE.md invariant 2).
#![deny(missing_docs)]

pub mod routes;
pub mod wire;

pub use wire::*;
