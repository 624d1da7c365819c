//! A session's own beacon capability (issue 14; docs/ARCHITECTURE.md,
//! "Leaving a page").
//!
//! What a closing page leaves behind reaches the server through the worker
//! (the pagehide drop box, [`crate::dropbox`]), on every address. A
//! page-context `navigator.sendBeacon` is a second, never counted-on path,
//! and only where Chrome lets it arrive: an https server with a public name
//! (Local Network Access refuses a public page's requests to loopback and
//! private addresses; mixed content refuses plain http).
//!
//! For that path a content script needs a credential, and a content script
//! runs inside github.com's renderer. So it never holds the API token or the
//! user-wide beacon key, only its own session's capability:
//! - the worker keeps one random seed per install in `chrome.storage.local`,
//!   which is closed to content scripts (`TRUSTED_CONTEXTS`);
//! - a session's beacon secret is HMAC-SHA256(seed, session id): distinct per
//!   session, and knowing one says nothing about another or about the seed;
//! - the worker's authenticated writes of an open session register the
//!   secret's SHA-256 (`beacon_hash`), so the server accepts a beacon with it
//!   for that session only, as a bounded progress or end record.
//!
//! Only sessions in progress carry the hash: the first applied hash stays on
//! the server and another is refused with 409, so an end is never put at risk
//! by it.

use std::cell::RefCell;

use hmac::{Hmac, KeyInit, Mac};
use reviewtime_core::engine::BeaconPreview;
use reviewtime_core::protocol::{routes, SessionBeacon, SessionPut, SessionRecord};
use sha2::{Digest, Sha256};
use wasm_bindgen::JsCast;

use crate::error::ShellError;

/// Key of the install's beacon seed in `chrome.storage.local`.
pub const SEED_KEY: &str = "reviewtime.beacon_seed";

thread_local! {
    /// The seed for this worker life, once read or made.
    static SEED: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The beacon secret of `session_id`: hex HMAC-SHA256 keyed by the seed.
pub fn secret(seed: &str, session_id: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(seed.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(session_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// What the server stores for `secret`: hex SHA-256 of its UTF-8 bytes.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether a page-context request from a github.com page can reach
/// `server_url`, judged from the URL alone: https, and a host that is not
/// loopback, a private or link-local address, or a `.local`/`.internal`
/// name. A public name may still resolve to a private address; then Chrome
/// refuses the beacon, which nothing counts on.
pub fn page_can_reach(server_url: &str) -> bool {
    let Some(rest) = server_url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    }
    .to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return match ip {
            std::net::IpAddr::V4(v4) => {
                !(v4.is_loopback()
                    || v4.is_private()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
            }
            std::net::IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        };
    }
    !(host == "localhost"
        || host.ends_with(".localhost")
        || host.ends_with(".local")
        || host.ends_with(".internal")
        || !host.contains('.'))
}

/// The body of a session write with the session's `beacon_hash` added, when
/// `body` is a session in progress; `None` leaves the body as it is.
pub fn register(seed: &str, body: &str) -> Option<String> {
    let session: SessionRecord = serde_json::from_str(body).ok()?;
    if session.ended_at.is_some() || seed.is_empty() {
        return None;
    }
    let beacon_hash = Some(hash(&secret(seed, &session.id)));
    serde_json::to_string(&SessionPut {
        session,
        beacon_hash,
    })
    .ok()
}

/// The beacon a content script may send for its session on pagehide, with
/// that session's capability and nothing else: `(url, body)`.
pub fn beacon(seed: &str, server_url: &str, preview: BeaconPreview) -> Option<(String, String)> {
    if seed.is_empty() || !page_can_reach(server_url) {
        return None;
    }
    let session_id = preview.session.id.clone();
    let body = serde_json::to_string(&SessionBeacon {
        beacon_secret: secret(seed, &session_id),
        session_id,
        sessions: vec![preview.session],
        activities: preview.activities,
    })
    .ok()?;
    Some((format!("{server_url}{}", routes::BEACON), body))
}

/// The install's seed: read once per worker life, made (256 random bits from
/// `crypto.getRandomValues`) and stored the first time.
pub async fn seed() -> Result<String, ShellError> {
    if let Some(s) = SEED.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let stored = crate::chrome::storage_get(SEED_KEY)
        .await?
        .and_then(|v| v.as_string())
        .filter(|s| s.len() == 64);
    // Another task of this worker may have made one while we read.
    if let Some(s) = SEED.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    if let Some(s) = stored {
        SEED.with(|c| *c.borrow_mut() = Some(s.clone()));
        return Ok(s);
    }
    let mut bytes = [0u8; 32];
    js_sys::global()
        .unchecked_into::<web_sys::WorkerGlobalScope>()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes))
        .map_err(|e| ShellError::chrome("crypto.getRandomValues", &e))?;
    let made = hex(&bytes);
    SEED.with(|c| *c.borrow_mut() = Some(made.clone()));
    crate::chrome::storage_set(SEED_KEY, &wasm_bindgen::JsValue::from_str(&made)).await?;
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_per_session_and_the_hash_is_sha256_hex() {
        let seed = "ab".repeat(32);
        let (a, b) = (secret(&seed, "i-s1"), secret(&seed, "i-s2"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(a, secret(&"cd".repeat(32), "i-s1"));
        assert_eq!(a, secret(&seed, "i-s1"));
        // SHA-256("abc")
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_an_https_server_with_a_public_name_can_be_reached_from_the_page() {
        for yes in [
            "https://reviewtime.example.com",
            "https://reviewtime.example.com:8443",
            "https://8.8.8.8",
            "https://[2001:db8::1]:443",
        ] {
            assert!(page_can_reach(yes), "{yes}");
        }
        for no in [
            "http://reviewtime.example.com",
            "https://127.0.0.1:8787",
            "https://localhost",
            "https://app.localhost",
            "https://10.1.2.3",
            "https://192.168.1.2",
            "https://172.20.0.1",
            "https://169.254.1.1",
            "https://100.64.0.1",
            "https://[::1]",
            "https://[fd00::1]",
            "https://[fe80::1]",
            "https://reviewtime.local",
            "https://reviewtime.internal",
            "https://intranet",
            "",
        ] {
            assert!(!page_can_reach(no), "{no}");
        }
    }
}
