//! The dashboard: one self-contained page, no front-end build. It signs in
//! with the token of the pairing link (`/pair#token=...`), kept in the
//! browser's localStorage, and polls the API every second.
//!
//! The page reads no link itself: it posts what it has (its address's
//! fragment, or what was pasted in the sign-in form) to `POST /pair`, which
//! answers by the one pairing-link rule (`reviewtime_protocol::pairing`).

use axum::extract::DefaultBodyLimit;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use reviewtime_protocol::Pairing;
use serde::Serialize;

use crate::error::Reject;

const PAGE: &str = include_str!("dashboard.html");

/// Longest sign-in text read; a pairing link is well under it.
const SIGN_IN_LIMIT: usize = 4 * 1024;

/// `/` and `/pair` both serve the page; `/pair` carries the token in its
/// fragment, and `POST /pair` reads the token from a sign-in text.
pub fn router() -> Router {
    Router::new().route("/", get(page)).route(
        "/pair",
        get(page)
            .post(sign_in)
            .layer(DefaultBodyLimit::max(SIGN_IN_LIMIT)),
    )
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `POST /pair`'s answer.
#[derive(Serialize)]
struct SignIn {
    token: String,
}

/// The token a sign-in text names ([`Pairing::sign_in_token`]): a pairing
/// link, the `#token=…` fragment of the page's address, or a bare token.
/// It is a pure function of the body: nothing is looked up or stored, so
/// this reveals nothing a caller did not send.
async fn sign_in(text: String) -> Result<Json<SignIn>, Reject> {
    Pairing::sign_in_token(&text)
        .map(|token| Json(SignIn { token }))
        .ok_or_else(|| {
            Reject::bad_request(
                "that is not a pairing link or a token: it looks like http://HOST:PORT/pair#token=…&beacon=…",
            )
        })
}
