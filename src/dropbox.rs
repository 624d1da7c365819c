//! The pagehide drop box: review actions a content script made that the worker
//! had not acknowledged when the page went away.
//!
//! A closing github.com tab can count on nothing but a `chrome.storage` write:
//! a message is lost when the worker is asleep, and a page-context beacon to
//! a server on a more private address (the default `http://127.0.0.1`) is
//! refused by Chrome's Local Network Access. So the content script keeps each
//! unacknowledged action in `chrome.storage.session` under
//! `reviewtime.drop.<tab>.<page>` (written when it is made and at pagehide), and
//! the worker, woken by `tabs.onRemoved`, records them before it closes the
//! tab: the session end and the actions then leave through the outbox like any
//! other (persist before send, docs/ARCHITECTURE.md invariants 1 and 9).
//!
//! The area is opened to content scripts for this; nothing secret is kept in
//! it. What is found there is untrusted: each action is checked as the message
//! it copies would be, and anything malformed is counted and dropped.

use reviewtime_core::Event;
use reviewtime_driver::{Command, Input};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::error::ShellError;
use crate::js;
use crate::message::Message;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = setAccessLevel, catch)]
    fn session_set_access_level(options: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = get, catch)]
    fn session_get(keys: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["chrome", "storage", "session"], js_name = remove, catch)]
    fn session_remove(keys: &JsValue) -> Result<JsValue, JsValue>;
}

/// Every drop-box key starts with this, then `<tab>.<page>`.
pub const PREFIX: &str = "reviewtime.drop.";

/// Lets content scripts write `chrome.storage.session` (closed to them by
/// default). Chrome keeps the level for the browser session, so the worker sets
/// it at start-up and install.
pub async fn open_to_content_scripts() -> Result<(), ShellError> {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(
        &options,
        &JsValue::from_str("accessLevel"),
        &JsValue::from_str("TRUSTED_AND_UNTRUSTED_CONTEXTS"),
    )
    .map_err(|e| ShellError::chrome("chrome.storage.session.setAccessLevel", &e))?;
    crate::chrome::wait(session_set_access_level(&options))
        .await
        .map_err(|e| ShellError::chrome("chrome.storage.session.setAccessLevel", &e))?;
    Ok(())
}

/// One page's drop box, as the content script writes it.
#[derive(Deserialize)]
struct DropBox {
    /// Set at pagehide: the page is gone.
    #[serde(default)]
    closed_at: Option<i64>,
    /// Activity messages, as the content script sent them to the worker.
    #[serde(default)]
    actions: Vec<JsonValue>,
}

type JsonValue = serde_json::Value;

/// What a tab's drop boxes hold: the actions in them, as messages, and the keys
/// to remove once the events made from them were saved.
#[derive(Default)]
pub struct Dropped {
    /// Each well-formed action (an activity message from the page), oldest box first.
    pub actions: Vec<Message>,
    /// Entries that did not parse: counted as rejected input.
    pub rejected: usize,
    /// The keys read.
    pub keys: Vec<String>,
}

/// Reads the drop boxes of `tab` (only those of pages already gone when
/// `only_closed`: the tab navigated, its current page's box is live).
/// Storage errors read as empty: the close itself must still be recorded.
pub async fn take(tab: i64, only_closed: bool) -> Dropped {
    let mut out = Dropped::default();
    let Ok(items) = crate::chrome::wait(session_get(&JsValue::NULL)).await else {
        return out;
    };
    let prefix = format!("{PREFIX}{tab}.");
    for entry in js_sys::Object::entries(&js_sys::Object::from(items)).iter() {
        let pair = js_sys::Array::from(&entry);
        let Some(key) = pair.get(0).as_string() else {
            continue;
        };
        if !key.starts_with(&prefix) {
            continue;
        }
        match js::from_js::<DropBox>(&pair.get(1)) {
            Ok(dropbox) if only_closed && dropbox.closed_at.is_none() => continue,
            Ok(dropbox) => {
                for action in dropbox.actions {
                    match serde_json::from_value::<Message>(action) {
                        Ok(m @ Message::Activity { .. }) => out.actions.push(m),
                        _ => out.rejected += 1,
                    }
                }
            }
            Err(_) => out.rejected += 1,
        }
        out.keys.push(key);
    }
    out
}

/// Removes drop boxes whose actions were recorded (a failure leaves them to be
/// read again: each action carries its id, so a repeat is recorded once).
pub async fn remove(keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let array = keys
        .iter()
        .map(|k| JsValue::from_str(k))
        .collect::<js_sys::Array>();
    let _ = crate::chrome::wait(session_remove(&array)).await;
}

impl Dropped {
    /// The inputs that record these actions for `tab`, each as its message
    /// would (the page first, so a worker that no longer holds it starts the
    /// session before the action), after one refusal per malformed entry.
    pub fn inputs(&self, tab: i64, settings: &crate::settings::Settings) -> Vec<Input> {
        let mut inputs: Vec<Input> = vec![Command::RejectedInput.into(); self.rejected];
        for action in &self.actions {
            if let Message::Activity {
                activity,
                id,
                at,
                url,
            } = action.clone()
            {
                inputs.extend(
                    crate::entry::resume(tab, url, settings)
                        .into_iter()
                        .map(Input::from),
                );
                inputs.push(
                    Event::Activity {
                        tab,
                        kind: activity,
                        client_id: id,
                        at,
                    }
                    .into(),
                );
            }
        }
        inputs
    }
}
