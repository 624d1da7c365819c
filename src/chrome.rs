//! Hand-written async bindings for the `chrome.*` APIs the shell uses.
//!
//! Manifest V3 APIs return promises; `catch` turns a rejection into `Err`
//! instead of a thrown exception that would abort the wasm call.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::ShellError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = get, catch)]
    async fn storage_local_get(keys: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = set, catch)]
    async fn storage_local_set(items: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = remove, catch)]
    async fn storage_local_remove(keys: &JsValue) -> Result<JsValue, JsValue>;
}

/// Reads one key of `chrome.storage.local`; `None` when absent.
pub async fn storage_get(key: &str) -> Result<Option<JsValue>, ShellError> {
    let items = storage_local_get(&JsValue::from_str(key))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.get", &e))?;
    let value = js_sys::Reflect::get(&items, &JsValue::from_str(key))
        .map_err(|e| ShellError::chrome("chrome.storage.local.get", &e))?;
    Ok(if value.is_undefined() {
        None
    } else {
        Some(value)
    })
}

/// Writes one key of `chrome.storage.local`.
pub async fn storage_set(key: &str, value: &JsValue) -> Result<(), ShellError> {
    let items = js_sys::Object::new();
    js_sys::Reflect::set(&items, &JsValue::from_str(key), value)
        .map_err(|e| ShellError::chrome("chrome.storage.local.set", &e))?;
    storage_local_set(&items)
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.set", &e))?;
    Ok(())
}

/// Removes one key of `chrome.storage.local`.
pub async fn storage_remove(key: &str) -> Result<(), ShellError> {
    storage_local_remove(&JsValue::from_str(key))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.remove", &e))?;
    Ok(())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = getRegisteredContentScripts, catch)]
    async fn scripting_get_registered() -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = unregisterContentScripts, catch)]
    async fn scripting_unregister(filter: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = registerContentScripts, catch)]
    async fn scripting_register(scripts: &JsValue) -> Result<JsValue, JsValue>;
}

/// Id of the dynamically registered content script for user-added hosts.
pub const TRACKED_SCRIPT_ID: &str = "reviewtime-tracked-hosts";

/// Makes the content script run on exactly `matches` (match patterns), replacing
/// any earlier registration; an empty list unregisters it.
pub async fn register_content_script(matches: &[String]) -> Result<(), ShellError> {
    let existing = scripting_get_registered()
        .await
        .map_err(|e| ShellError::chrome("chrome.scripting.getRegisteredContentScripts", &e))?;
    let registered = js_sys::Array::from(&existing).iter().any(|s| {
        js_sys::Reflect::get(&s, &"id".into())
            .ok()
            .and_then(|v| v.as_string())
            .as_deref()
            == Some(TRACKED_SCRIPT_ID)
    });
    if registered {
        let filter = js_sys::Object::new();
        let ids = js_sys::Array::of1(&JsValue::from_str(TRACKED_SCRIPT_ID));
        let _ = js_sys::Reflect::set(&filter, &"ids".into(), &ids);
        scripting_unregister(&filter)
            .await
            .map_err(|e| ShellError::chrome("chrome.scripting.unregisterContentScripts", &e))?;
    }
    if matches.is_empty() {
        return Ok(());
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Script<'a> {
        id: &'a str,
        matches: &'a [String],
        js: [&'a str; 1],
        run_at: &'a str,
        persist_across_sessions: bool,
    }
    let script = Script {
        id: TRACKED_SCRIPT_ID,
        matches,
        js: ["content.js"],
        run_at: "document_idle",
        persist_across_sessions: true,
    };
    let value = script
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| ShellError::Encode(e.to_string()))?;
    scripting_register(&js_sys::Array::of1(&value))
        .await
        .map_err(|e| ShellError::chrome("chrome.scripting.registerContentScripts", &e))?;
    Ok(())
}
