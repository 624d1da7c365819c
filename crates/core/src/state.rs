//! The persisted snapshot: one serialisable, versioned value.

use serde::{Deserialize, Serialize};

/// Version of the snapshot layout this build writes.
pub const CURRENT_VERSION: u32 = 1;

/// Everything the extension must remember between service-worker lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Layout version, for migrations.
    pub version: u32,
    /// Random per-install id chosen by the shell; prefixes client-generated ids.
    pub install_id: String,
    /// Messages the background has answered over its whole life (all worker restarts).
    pub messages_handled: u64,
}

impl State {
    /// A fresh state for a new install.
    pub fn new(install_id: impl Into<String>) -> Self {
        State {
            version: CURRENT_VERSION,
            install_id: install_id.into(),
            messages_handled: 0,
        }
    }

    /// Parses a stored snapshot.
    pub fn from_json(raw: &str) -> Result<State, LoadError> {
        let state: State =
            serde_json::from_str(raw).map_err(|e| LoadError::Parse(e.to_string()))?;
        if state.version != CURRENT_VERSION {
            return Err(LoadError::UnknownVersion(state.version));
        }
        Ok(state)
    }
}

/// Why a stored snapshot could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not a snapshot at all.
    #[error("stored state is not valid: {0}")]
    Parse(String),
    /// Written by a newer build.
    #[error("stored state has unknown version {0}")]
    UnknownVersion(u32),
}
