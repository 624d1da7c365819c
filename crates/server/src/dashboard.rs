//! The dashboard: one self-contained page, no front-end build. It signs in
//! with the token from the pairing link (`/pair#token=...`), kept in the
//! browser's localStorage, and polls the API every second.

use axum::response::Html;
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("dashboard.html");

/// `/` and `/pair` both serve the page; `/pair` carries the token in its fragment.
pub fn router() -> Router {
    Router::new()
        .route("/", get(page))
        .route("/pair", get(page))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}
