//! The pairing link, `{server}/pair#token={token}&beacon={beacon_key}`: what
//! the server prints at its first start and for `user add`, what the
//! extension's options page reads when it is pasted or opened, and what signs
//! the dashboard in.
//!
//! One rule, here. The options page asks the worker (`parse_pairing`,
//! answered by the extension's wasm build of this crate) and the dashboard
//! asks its server (`POST /pair`); neither page parses a link itself. One
//! table of vectors, `tests/pairing-links.json`, is checked against this code
//! (`tests/pairing.rs`) and against both pages' answers end to end
//! (`tests/e2e/options.test.mjs`).
//!
//! The rule:
//! - whitespace around the link is ignored;
//! - the server is what comes before the first `/pair#`: `http://` or
//!   `https://` and at least one more character, no `#`;
//! - the fragment is `&`-separated `name=value` pairs: `token` and `beacon`
//!   are read, other names ignored, the last of a repeated name wins;
//! - values are percent-decoded once, after splitting (`%26` is a literal
//!   `&`, `+` stays `+`); a value that is empty or does not decode to UTF-8
//!   counts as absent;
//! - a link needs both values.

use serde::{Deserialize, Serialize};

/// What the extension needs to talk to a server, as one copyable link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// Base URL of the server, e.g. `http://127.0.0.1:8787`.
    pub server: String,
    /// API token (Bearer).
    pub token: String,
    /// Beacon key.
    pub beacon_key: String,
}

/// What a pairing link's fragment (the text after `#`) holds, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairingFragment {
    /// `token`: the API token.
    pub token: Option<String>,
    /// `beacon`: the beacon key.
    pub beacon_key: Option<String>,
}

impl PairingFragment {
    /// Reads `token` and `beacon` from a fragment by the module's rule.
    pub fn parse(fragment: &str) -> PairingFragment {
        let mut out = PairingFragment::default();
        for part in fragment.split('&') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let slot = match name {
                "token" => &mut out.token,
                "beacon" => &mut out.beacon_key,
                _ => continue,
            };
            *slot = percent_decode(value).filter(|v| !v.is_empty());
        }
        out
    }
}

impl Pairing {
    /// The link form, values percent-encoded where they need it (tokens the
    /// server issues never do), so that [`Pairing::parse_link`] reads it back.
    pub fn to_link(&self) -> String {
        format!(
            "{}/pair#token={}&beacon={}",
            self.server.trim_end_matches('/'),
            percent_encode(&self.token),
            percent_encode(&self.beacon_key)
        )
    }

    /// Reads a pairing link by the module's rule; `None` when it is not one.
    pub fn parse_link(link: &str) -> Option<Pairing> {
        let (server, fragment) = link.trim().split_once("/pair#")?;
        let host = server
            .strip_prefix("https://")
            .or_else(|| server.strip_prefix("http://"))?;
        if host.is_empty() || server.contains('#') {
            return None;
        }
        let values = PairingFragment::parse(fragment);
        Some(Pairing {
            server: server.to_string(),
            token: values.token?,
            beacon_key: values.beacon_key?,
        })
    }

    /// The API token a text names, for a client that needs only the token
    /// (the dashboard's sign-in): a pairing link's; the fragment of the
    /// dashboard's own address (`#token=…`, opened from the link, where the
    /// beacon key is not needed); or a bare token (no whitespace, `#`, `&`,
    /// `=`, `/` or `%`). `None` for anything else.
    pub fn sign_in_token(text: &str) -> Option<String> {
        let text = text.trim();
        if let Some(pairing) = Pairing::parse_link(text) {
            return Some(pairing.token);
        }
        if let Some(fragment) = text.strip_prefix('#') {
            return PairingFragment::parse(fragment).token;
        }
        let bare =
            !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || "#&=/%".contains(c));
        bare.then(|| text.to_string())
    }
}

/// `%XX` escapes to bytes, then UTF-8; `None` for a broken escape or bytes
/// that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(text: &str) -> String {
    use std::fmt::Write;
    text.bytes()
        .fold(String::with_capacity(text.len()), |mut s, b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                s.push(b as char);
            } else {
                let _ = write!(s, "%{b:02X}");
            }
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_even_with_characters_that_need_escaping() {
        let p = Pairing {
            server: "http://127.0.0.1:8787".into(),
            token: "rt_abc".into(),
            beacon_key: "rb_def".into(),
        };
        assert_eq!(
            p.to_link(),
            "http://127.0.0.1:8787/pair#token=rt_abc&beacon=rb_def"
        );
        assert_eq!(Pairing::parse_link(&p.to_link()), Some(p));
        let odd = Pairing {
            server: "https://rt.example.com".into(),
            token: "a&b=c%d é".into(),
            beacon_key: "+".into(),
        };
        assert_eq!(Pairing::parse_link(&odd.to_link()), Some(odd));
    }

    #[test]
    fn a_broken_escape_is_absent() {
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert_eq!(percent_decode("%C3%A9"), Some("é".into()));
    }
}
