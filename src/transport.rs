//! HTTP through gloo-net's `fetch`, which is bound as a global and so works in
//! a service worker (there is no `window` there).

use gloo_net::http::Request;

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
    /// The answer was a redirect (requests are made with `redirect:
    /// "manual"`; ReviewTime's API never redirects, so a redirect means a
    /// sign-in page or a network's login portal stands in front of it).
    pub redirected: bool,
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
    // Dropped when this function returns, which cancels it and frees its closure.
    let _timer = gloo_timers::callback::Timeout::new(timeout_ms, move || controller.abort());
    let mut builder = match method {
        "PUT" => Request::put(url),
        "POST" => Request::post(url),
        _ => Request::get(url),
    }
    .abort_signal(Some(&signal))
    .redirect(web_sys::RequestRedirect::Manual);
    if let Some(token) = bearer {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let request = match body {
        Some(b) => builder.header("Content-Type", "application/json").body(b),
        None => builder.build(),
    }
    .map_err(|e| ShellError::Network(e.to_string()))?;
    let response = request.send().await.map_err(|e| {
        if signal.aborted() {
            ShellError::Timeout(timeout_ms)
        } else {
            ShellError::Network(e.to_string())
        }
    })?;
    if response.type_() == web_sys::ResponseType::Opaqueredirect {
        return Ok(HttpReply {
            status: response.status(),
            retry_after: None,
            body: String::new(),
            redirected: true,
        });
    }
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
        redirected: false,
    })
}
