//! The entry point: load the snapshot, let the core decide, perform, save.

use reviewtime_core::state::State;
use reviewtime_core::status::Status;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::chrome;
use crate::error::ShellError;
use crate::message::Message;
use crate::settings::{Settings, SETTINGS_KEY};

/// Key of the snapshot in `chrome.storage.local`.
pub const STATE_KEY: &str = "reviewtime.state";
/// Key a snapshot that failed to parse is moved to, so nothing is lost.
pub const CORRUPT_KEY: &str = "reviewtime.state.corrupt";

/// Every answer: `{ ok: true, ...reply }` or `{ ok: false, error }`.
#[derive(Serialize)]
struct Answer {
    ok: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    reply: Option<Reply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Status {
        status: Status,
    },
    Hello {
        from: &'static str,
        url: String,
        status: Status,
    },
    Settings {
        settings: Settings,
    },
}

/// Handles one message and returns the answer as a plain JS object.
///
/// Never throws: every failure becomes `{ ok: false, error }`.
#[wasm_bindgen]
pub async fn dispatch(message: JsValue) -> JsValue {
    let answer = match handle(message).await {
        Ok(reply) => Answer {
            ok: true,
            reply: Some(reply),
            error: None,
        },
        Err(e) => Answer {
            ok: false,
            reply: None,
            error: Some(e.to_string()),
        },
    };
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    answer
        .serialize(&serializer)
        .unwrap_or_else(|e| JsValue::from_str(&e.to_string()))
}

async fn handle(message: JsValue) -> Result<Reply, ShellError> {
    let message: Message = serde_wasm_bindgen::from_value(message)
        .map_err(|e| ShellError::BadMessage(e.to_string()))?;
    match message {
        Message::GetSettings => {
            return Ok(Reply::Settings {
                settings: load_settings().await?,
            })
        }
        Message::SetSettings { settings } => {
            let settings = settings.validated()?;
            let value = settings
                .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
                .map_err(|e| ShellError::Encode(e.to_string()))?;
            chrome::storage_set(SETTINGS_KEY, &value).await?;
            chrome::register_content_script(&settings.content_script_matches()).await?;
            return Ok(Reply::Settings { settings });
        }
        _ => {}
    }
    let mut state = load().await?;
    state.messages_handled += 1;
    save(&state).await?;
    let status = Status::of(&state);
    Ok(match message {
        Message::Status => Reply::Status { status },
        Message::Hello { url } => Reply::Hello {
            from: "rust",
            url,
            status,
        },
        Message::GetSettings | Message::SetSettings { .. } => Reply::Status { status },
    })
}

async fn load_settings() -> Result<Settings, ShellError> {
    match chrome::storage_get(SETTINGS_KEY).await? {
        None => Ok(Settings::default()),
        // Settings that no longer parse fall back to defaults rather than wedge the options page.
        Some(raw) => Ok(serde_wasm_bindgen::from_value(raw).unwrap_or_default()),
    }
}

async fn load() -> Result<State, ShellError> {
    let Some(raw) = chrome::storage_get(STATE_KEY).await? else {
        return Ok(State::new(new_install_id()));
    };
    let text = raw.as_string().unwrap_or_default();
    match State::from_json(&text) {
        Ok(state) => Ok(state),
        Err(_) => {
            // Keep what we could not read, then start clean rather than crash.
            chrome::storage_set(CORRUPT_KEY, &raw).await?;
            Ok(State::new(new_install_id()))
        }
    }
}

async fn save(state: &State) -> Result<(), ShellError> {
    let json = serde_json::to_string(state).map_err(|e| ShellError::Encode(e.to_string()))?;
    chrome::storage_set(STATE_KEY, &JsValue::from_str(&json)).await
}

fn new_install_id() -> String {
    let a = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let b = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("{:016x}", (a << 32) | b)
}
