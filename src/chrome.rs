//! Hand-written async bindings for the `chrome.*` APIs the shell uses.
//!
//! Manifest V3 APIs return promises; `catch` turns a rejection into `Err`
//! instead of a thrown exception that would abort the wasm call.

use wasm_bindgen::prelude::*;

use crate::error::ShellError;

/// Waits for what a `chrome.*` call returned. The bindings are synchronous
/// calls marked `catch`, so a call that throws (an API this Chrome lacks, or
/// no `chrome` at all) is an `Err`, never a trap; whatever they return
/// (a promise, or a plain value from an older API) is awaited through
/// `Promise.resolve`, so a non-promise cannot trap either.
pub async fn wait(call: Result<JsValue, JsValue>) -> Result<JsValue, JsValue> {
    let value = call?;
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&value)).await
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = get, catch)]
    fn storage_local_get(keys: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = set, catch)]
    fn storage_local_set(items: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = remove, catch)]
    fn storage_local_remove(keys: &JsValue) -> Result<JsValue, JsValue>;

}

/// Reads one key of `chrome.storage.local`; `None` when absent.
pub async fn storage_get(key: &str) -> Result<Option<JsValue>, ShellError> {
    let items = crate::chrome::wait(storage_local_get(&JsValue::from_str(key)))
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
    crate::chrome::wait(storage_local_set(&items))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.set", &e))?;
    Ok(())
}

/// Every stored `(key, text)` whose key starts with `prefix`: strings as they
/// are, anything else as its JSON text (so it fails to parse, visibly).
pub async fn storage_get_prefixed(prefix: &str) -> Result<Vec<(String, String)>, ShellError> {
    let items = crate::chrome::wait(storage_local_get(&JsValue::NULL))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.get", &e))?;
    let mut out = Vec::new();
    for entry in js_sys::Object::entries(&js_sys::Object::from(items)).iter() {
        let pair = js_sys::Array::from(&entry);
        let Some(key) = pair.get(0).as_string() else {
            continue;
        };
        if !key.starts_with(prefix) {
            continue;
        }
        let value = pair.get(1);
        let text = match value.as_string() {
            Some(text) => text,
            None => js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default(),
        };
        out.push((key, text));
    }
    Ok(out)
}

/// Writes these keys (as strings) in one `chrome.storage.local.set`, which
/// Chrome applies whole.
pub async fn storage_set_texts(items: &[(String, String)]) -> Result<(), ShellError> {
    let object = js_sys::Object::new();
    for (key, text) in items {
        js_sys::Reflect::set(&object, &JsValue::from_str(key), &JsValue::from_str(text))
            .map_err(|e| ShellError::chrome("chrome.storage.local.set", &e))?;
    }
    crate::chrome::wait(storage_local_set(&object))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.set", &e))?;
    Ok(())
}

/// Removes these keys.
pub async fn storage_remove(keys: &[String]) -> Result<(), ShellError> {
    let array: js_sys::Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    crate::chrome::wait(storage_local_remove(&array))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.local.remove", &e))?;
    Ok(())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = getRegisteredContentScripts, catch)]
    fn scripting_get_registered() -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = unregisterContentScripts, catch)]
    fn scripting_unregister(filter: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "scripting"], js_name = registerContentScripts, catch)]
    fn scripting_register(scripts: &JsValue) -> Result<JsValue, JsValue>;
}

/// Id of the dynamically registered content script for user-added hosts.
pub const TRACKED_SCRIPT_ID: &str = "reviewtime-tracked-hosts";

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "runtime"], js_name = getManifest, catch)]
    fn runtime_get_manifest() -> Result<JsValue, JsValue>;
}

/// The manifest's content script, as far as registering it again needs.
#[derive(serde::Deserialize)]
struct ManifestScript {
    js: Vec<String>,
    #[serde(default)]
    run_at: Option<String>,
}

/// The files of the manifest's (first and only) content script, in order,
/// and when it runs: the one list, which the dynamic registration copies.
fn manifest_content_script() -> Result<ManifestScript, ShellError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        content_scripts: Vec<ManifestScript>,
    }
    let manifest =
        runtime_get_manifest().map_err(|e| ShellError::chrome("chrome.runtime.getManifest", &e))?;
    crate::js::from_js::<Manifest>(&manifest)
        .map_err(|e| ShellError::Chrome {
            api: "chrome.runtime.getManifest",
            message: e.to_string(),
        })?
        .content_scripts
        .into_iter()
        .next()
        .ok_or_else(|| ShellError::Chrome {
            api: "chrome.runtime.getManifest",
            message: "the manifest lists no content script".into(),
        })
}

/// Makes the content script run on exactly `matches` (match patterns), replacing
/// any earlier registration; an empty list unregisters it. Its files and
/// `run_at` are the manifest's own (`chrome.runtime.getManifest()`), so the
/// two registrations cannot drift apart; where both match a page, the files
/// run once (extension/content/delivery.js).
pub async fn register_content_script(matches: &[String]) -> Result<(), ShellError> {
    let existing = crate::chrome::wait(scripting_get_registered())
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
        crate::chrome::wait(scripting_unregister(&filter))
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
        js: &'a [String],
        run_at: &'a str,
        persist_across_sessions: bool,
    }
    let from_manifest = manifest_content_script()?;
    let script = Script {
        id: TRACKED_SCRIPT_ID,
        matches,
        js: &from_manifest.js,
        run_at: from_manifest.run_at.as_deref().unwrap_or("document_idle"),
        persist_across_sessions: true,
    };
    let value = crate::js::to_js(&script)?;
    crate::chrome::wait(scripting_register(&js_sys::Array::of1(&value)))
        .await
        .map_err(|e| ShellError::chrome("chrome.scripting.registerContentScripts", &e))?;
    Ok(())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "alarms"], js_name = get, catch)]
    fn alarms_get(name: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "alarms"], js_name = create, catch)]
    fn alarms_create(name: &str, info: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "action"], js_name = setBadgeText, catch)]
    fn action_set_badge_text(details: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "action"], js_name = setBadgeBackgroundColor, catch)]
    fn action_set_badge_background_color(details: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "runtime"], js_name = sendMessage, catch)]
    fn runtime_send_message(message: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = query, catch)]
    fn tabs_query(query: &JsValue) -> Result<JsValue, JsValue>;
}

/// Name of the 1-minute safety-net alarm.
pub const ALARM_NAME: &str = "reviewtime.sync";

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}

/// Creates the 1-minute alarm unless it exists (it can vanish on browser restart).
pub async fn ensure_alarm() -> Result<(), ShellError> {
    let existing = crate::chrome::wait(alarms_get(ALARM_NAME))
        .await
        .map_err(|e| ShellError::chrome("chrome.alarms.get", &e))?;
    if existing.is_undefined() || existing.is_null() {
        crate::chrome::wait(alarms_create(
            ALARM_NAME,
            &object(&[("periodInMinutes", 1.0.into())]),
        ))
        .await
        .map_err(|e| ShellError::chrome("chrome.alarms.create", &e))?;
    }
    Ok(())
}

/// Sets the toolbar badge.
pub async fn set_badge(text: &str, color: &str) -> Result<(), ShellError> {
    crate::chrome::wait(action_set_badge_text(&object(&[("text", text.into())])))
        .await
        .map_err(|e| ShellError::chrome("chrome.action.setBadgeText", &e))?;
    if !text.is_empty() {
        crate::chrome::wait(action_set_badge_background_color(&object(&[(
            "color",
            color.into(),
        )])))
        .await
        .map_err(|e| ShellError::chrome("chrome.action.setBadgeBackgroundColor", &e))?;
    }
    Ok(())
}

/// Sends a message to the extension's open pages (the popup); no listener is not an error.
pub async fn broadcast(message: &JsValue) {
    let _ = crate::chrome::wait(runtime_send_message(message)).await;
}

/// The active tab of a window.
pub async fn active_tab(window_id: i64) -> Result<Option<i64>, ShellError> {
    let tabs = crate::chrome::wait(tabs_query(&object(&[
        ("active", true.into()),
        ("windowId", (window_id as f64).into()),
    ])))
    .await
    .map_err(|e| ShellError::chrome("chrome.tabs.query", &e))?;
    Ok(js_sys::Array::from(&tabs)
        .iter()
        .next()
        .and_then(|t| js_sys::Reflect::get(&t, &"id".into()).ok())
        .and_then(|id| id.as_f64())
        .map(|id| id as i64))
}

/// Whether the browser believes it is online (`navigator.onLine`).
pub fn online() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"onLine".into()))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

/// The ids of every open tab.
pub async fn all_tab_ids() -> Result<Vec<i64>, ShellError> {
    let tabs = crate::chrome::wait(tabs_query(&js_sys::Object::new().into()))
        .await
        .map_err(|e| ShellError::chrome("chrome.tabs.query", &e))?;
    Ok(js_sys::Array::from(&tabs)
        .iter()
        .filter_map(|t| js_sys::Reflect::get(&t, &"id".into()).ok())
        .filter_map(|id| id.as_f64())
        .map(|id| id as i64)
        .collect())
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = get, catch)]
    fn storage_session_get(keys: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = set, catch)]
    fn storage_session_set(items: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "idle"], js_name = queryState, catch)]
    fn idle_query_state(detection_interval_secs: f64) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "windows"], js_name = getLastFocused, catch)]
    fn windows_get_last_focused(query: &JsValue) -> Result<JsValue, JsValue>;
}

/// Key of this browser run's mark in `chrome.storage.session`.
const RUN_KEY: &str = "reviewtime.run";

/// Whether `chrome.storage.session` (cleared when the browser quits) holds this run's mark.
pub async fn browser_run_marked() -> Result<bool, ShellError> {
    let items = crate::chrome::wait(storage_session_get(&JsValue::from_str(RUN_KEY)))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.session.get", &e))?;
    let value = js_sys::Reflect::get(&items, &JsValue::from_str(RUN_KEY))
        .map_err(|e| ShellError::chrome("chrome.storage.session.get", &e))?;
    Ok(!value.is_undefined())
}

/// Marks this browser run in `chrome.storage.session`.
pub async fn mark_browser_run() -> Result<(), ShellError> {
    crate::chrome::wait(storage_session_set(&object(&[(RUN_KEY, true.into())])))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.session.set", &e))?;
    Ok(())
}

/// The system's idle state now (`chrome.idle.queryState`, 60 s detection).
pub async fn idle_state() -> Result<reviewtime_core::IdleState, ShellError> {
    let state = crate::chrome::wait(idle_query_state(60.0))
        .await
        .map_err(|e| ShellError::chrome("chrome.idle.queryState", &e))?;
    Ok(match state.as_string().as_deref() {
        Some("idle") => reviewtime_core::IdleState::Idle,
        Some("locked") => reviewtime_core::IdleState::Locked,
        _ => reviewtime_core::IdleState::Active,
    })
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "tabs"], js_name = get, catch)]
    fn tabs_get(tab_id: f64) -> Result<JsValue, JsValue>;
}

/// The URL `tab_id` shows now (`None` when the tab is gone or shows nothing
/// Chrome lets the extension read).
pub async fn tab_url(tab_id: i64) -> Option<String> {
    let tab = crate::chrome::wait(tabs_get(tab_id as f64)).await.ok()?;
    js_sys::Reflect::get(&tab, &"url".into()).ok()?.as_string()
}

/// The active tab of the focused window; `None` when no Chrome window has focus.
pub async fn front_tab() -> Result<Option<i64>, ShellError> {
    let window = crate::chrome::wait(windows_get_last_focused(&js_sys::Object::new().into()))
        .await
        .map_err(|e| ShellError::chrome("chrome.windows.getLastFocused", &e))?;
    let focused = js_sys::Reflect::get(&window, &"focused".into())
        .ok()
        .and_then(|f| f.as_bool())
        .unwrap_or(false);
    let id = js_sys::Reflect::get(&window, &"id".into())
        .ok()
        .and_then(|i| i.as_f64());
    match (focused, id) {
        (true, Some(id)) => active_tab(id as i64).await,
        _ => Ok(None),
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "local"], js_name = setAccessLevel, catch)]
    fn storage_local_set_access_level(options: &JsValue) -> Result<JsValue, JsValue>;
}

/// Closes `chrome.storage.local` (the API token, the server URL, the queue) to
/// content scripts: only the extension's own pages and its worker may read it.
/// Chromium keeps the level per area; it is set again at every start.
pub async fn close_local_storage() -> Result<(), ShellError> {
    crate::chrome::wait(storage_local_set_access_level(&object(&[(
        "accessLevel",
        "TRUSTED_CONTEXTS".into(),
    )])))
    .await
    .map_err(|e| ShellError::chrome("chrome.storage.local.setAccessLevel", &e))?;
    Ok(())
}
