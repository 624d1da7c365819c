//! The status the popup shows.

use serde::{Deserialize, Serialize};

/// A summary of the background's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Name and version of the engine that answered.
    pub engine: String,
    /// Messages answered over the install's life.
    pub messages_handled: u64,
}

impl Status {
    /// The status of `state`.
    pub fn of(state: &crate::state::State) -> Status {
        Status {
            engine: concat!("reviewtime-core ", env!("CARGO_PKG_VERSION")).to_string(),
            messages_handled: state.messages_handled,
        }
    }
}
