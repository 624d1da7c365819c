//! The entry point: load the snapshot, let the core decide, perform, save.

use reviewtime_core::{Engine, State, Status};
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
    let (state, recovered) = load().await?;
    let mut engine = Engine::new(state);
    if recovered {
        engine.count_recovered_corrupt();
    }
    engine.count_message();
    save(engine.state()).await?;
    let status = engine.status(js_sys::Date::now() as i64);
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

/// The stored snapshot, or a fresh one; `true` when an unreadable one was set aside.
async fn load() -> Result<(State, bool), ShellError> {
    let Some(raw) = chrome::storage_get(STATE_KEY).await? else {
        return Ok((fresh_state(), false));
    };
    let text = raw.as_string().unwrap_or_default();
    match State::from_json(&text) {
        Ok(state) => Ok((state, false)),
        Err(_) => {
            // Keep what we could not read, then start clean rather than crash.
            chrome::storage_set(CORRUPT_KEY, &raw).await?;
            Ok((fresh_state(), true))
        }
    }
}

async fn save(state: &State) -> Result<(), ShellError> {
    let json = state.to_json();
    chrome::storage_set(STATE_KEY, &JsValue::from_str(&json)).await
}

/// A new install: its id and jitter seed are the shell's to choose (the core takes no randomness).
fn fresh_state() -> State {
    let word = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let id = (word() << 32) | word();
    State::new(format!("{id:016x}"), (word() << 32) | word())
}
