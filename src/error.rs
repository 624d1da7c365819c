//! The shell's errors. Every one becomes an answer or a status, never a panic.

use wasm_bindgen::JsValue;

/// What can go wrong in the shell.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A `chrome.*` call rejected.
    #[error("browser API {api} failed: {message}")]
    Chrome {
        /// Which API.
        api: &'static str,
        /// What it said.
        message: String,
    },
    /// A message did not have the expected shape.
    #[error("malformed message: {0}")]
    BadMessage(String),
    /// The network request could not be made or did not finish.
    #[error("network: {0}")]
    Network(String),
    /// The request took longer than its timeout.
    #[error("request timed out after {0} ms")]
    Timeout(u32),
    /// A commit failed; this caller's events were not saved.
    #[error("{0}")]
    Failed(String),
    /// Serialising a value for JS failed.
    #[error("could not encode: {0}")]
    Encode(String),
}

/// Turns a thrown JS value into words.
pub fn js_message(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        return s;
    }
    js_sys::Reflect::get(value, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

impl ShellError {
    /// A `chrome.*` failure from the thrown value.
    pub fn chrome(api: &'static str, value: &JsValue) -> Self {
        ShellError::Chrome {
            api,
            message: js_message(value),
        }
    }
}
