//! In-browser tests of the wasm shell (`wasm-pack test --headless --chrome`).
//!
//! `tests/run-wasm.sh` starts the real server on 127.0.0.1 and passes its URL
//! at compile time in `REVIEWTIME_TEST_SERVER`.
#![cfg(target_arch = "wasm32")]

use reviewtime_ext::transport;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> &'static str {
    option_env!("REVIEWTIME_TEST_SERVER").unwrap_or("http://127.0.0.1:9")
}

#[wasm_bindgen_test]
async fn fetches_health_from_the_real_local_server() {
    let url = format!("{}{}", server(), reviewtime_protocol::routes::HEALTH);
    let reply = transport::send("GET", &url, None, None, 5_000)
        .await
        .expect("the local server answers");
    assert_eq!(reply.status, 200);
    let health: reviewtime_protocol::Health =
        serde_json::from_str(&reply.body).expect("health JSON");
    assert_eq!(health.status, "ok");
}

#[wasm_bindgen_test]
async fn unknown_token_gets_401_with_a_json_error() {
    let url = format!("{}{}", server(), reviewtime_protocol::routes::WHOAMI);
    let reply = transport::send("GET", &url, Some("rt_not_a_token"), None, 5_000)
        .await
        .expect("the local server answers");
    assert_eq!(reply.status, 401);
    let err: reviewtime_protocol::ApiError = serde_json::from_str(&reply.body).expect("error JSON");
    assert_eq!(err.code, "unauthorized");
}

#[wasm_bindgen_test]
async fn a_port_nobody_listens_on_is_a_network_error_not_a_panic() {
    let err = transport::send("GET", "http://127.0.0.1:9/", None, None, 5_000)
        .await
        .expect_err("nothing listens on port 9");
    assert!(
        matches!(err, reviewtime_ext::error::ShellError::Network(_)),
        "{err:?}"
    );
}
