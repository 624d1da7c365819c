//! Crossing between Rust values and JS values through JSON text.
//!
//! Every value that crosses is plain JSON data anyway (messages, settings,
//! answers). Going through `JSON.parse` / `JSON.stringify` and serde_json keeps
//! one serde backend in the module instead of two, which roughly halves the
//! code serde generates — the largest part of the .wasm.

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::error::{js_message, ShellError};

/// A plain JS object (or array, string, number) equal to `value`.
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, ShellError> {
    let text = serde_json::to_string(value).map_err(|e| ShellError::Encode(e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| ShellError::Encode(js_message(&e)))
}

/// Reads `value` as `T`; `undefined` reads as JSON `null`.
pub fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, ShellError> {
    let text = if value.is_undefined() {
        "null".to_string()
    } else {
        js_sys::JSON::stringify(value)
            .map_err(|e| ShellError::BadMessage(js_message(&e)))?
            .as_string()
            .unwrap_or_else(|| "null".to_string())
    };
    serde_json::from_str(&text).map_err(|e| ShellError::BadMessage(e.to_string()))
}
