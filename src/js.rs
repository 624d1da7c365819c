//! Crossing between Rust values and JS values with serde-wasm-bindgen.
//!
//! Answers are built as plain JS objects with the JSON-compatible serializer
//! (maps as objects, `None` as `null`, 64-bit integers as numbers), which is
//! what `chrome.runtime` messaging and the popup expect; messages are read
//! straight from the JS object Chrome hands over, without a JSON text round trip.

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::error::ShellError;

/// A plain JS object (or array, string, number) equal to `value`.
pub fn to_js<T: Serialize>(value: &T) -> Result<JsValue, ShellError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| ShellError::Encode(e.to_string()))
}

/// Reads `value` as `T`; `undefined` reads as `null`.
pub fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, ShellError> {
    let value = if value.is_undefined() {
        JsValue::NULL
    } else {
        value.clone()
    };
    serde_wasm_bindgen::from_value(value).map_err(|e| ShellError::BadMessage(e.to_string()))
}
