//! HTTP through gloo-net's `fetch`, which is bound as a global and so works in
//! a service worker (there is no `window` there).

use gloo_net::http::Request;
use wasm_bindgen::JsCast;

use crate::error::ShellError;

/// What came back from the server, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// The Retry-After header, if any.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
}

/// Sends a request and reads the whole answer, aborting after `timeout_ms`.
pub async fn send(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<String>,
    timeout_ms: u32,
) -> Result<HttpReply, ShellError> {
    let controller = web_sys::AbortController::new()
        .map_err(|e| ShellError::Network(crate::error::js_message(&e)))?;
    let signal = controller.signal();
    let timer = gloo_timer(timeout_ms, controller);
    let mut builder = match method {
        "PUT" => Request::put(url),
        "POST" => Request::post(url),
        _ => Request::get(url),
    }
    .abort_signal(Some(&signal));
    if let Some(token) = bearer {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let request = match body {
        Some(b) => builder.header("Content-Type", "application/json").body(b),
        None => builder.build(),
    }
    .map_err(|e| ShellError::Network(e.to_string()))?;
    let result = request.send().await;
    clear_timer(timer);
    let response = result.map_err(|e| {
        if signal.aborted() {
            ShellError::Timeout(timeout_ms)
        } else {
            ShellError::Network(e.to_string())
        }
    })?;
    let status = response.status();
    let retry_after = response.headers().get("Retry-After");
    let body = response.text().await.map_err(|e| {
        if signal.aborted() {
            ShellError::Timeout(timeout_ms)
        } else {
            ShellError::Network(e.to_string())
        }
    })?;
    Ok(HttpReply {
        status,
        retry_after,
        body,
    })
}

/// Arms `setTimeout` on the global scope (window or worker) to abort the request.
fn gloo_timer(timeout_ms: u32, controller: web_sys::AbortController) -> Option<i32> {
    let abort = wasm_bindgen::closure::Closure::once_into_js(move || controller.abort());
    let global = js_sys::global();
    let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into()).ok()?;
    let set_timeout: js_sys::Function = set_timeout.dyn_into().ok()?;
    set_timeout
        .call2(&global, &abort, &timeout_ms.into())
        .ok()
        .and_then(|id| id.as_f64())
        .map(|id| id as i32)
}

fn clear_timer(id: Option<i32>) {
    let Some(id) = id else { return };
    let global = js_sys::global();
    if let Ok(f) = js_sys::Reflect::get(&global, &"clearTimeout".into()) {
        if let Ok(f) = f.dyn_into::<js_sys::Function>() {
            let _ = f.call1(&global, &id.into());
        }
    }
}
