//! The user's settings: server, credentials, tracked hosts, idle limit.
//! Validated here so the options page can say in words what is wrong.

use serde::{Deserialize, Serialize};

use crate::error::ShellError;

/// Key of the settings in `chrome.storage.local`.
pub const SETTINGS_KEY: &str = "reviewtime.settings";

/// What the options page edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Base URL of the server, e.g. `http://127.0.0.1:8787`.
    #[serde(default)]
    pub server_url: String,
    /// API token.
    #[serde(default)]
    pub token: String,
    /// Beacon key.
    #[serde(default)]
    pub beacon_key: String,
    /// Origins besides github.com whose pull-request pages are tracked,
    /// e.g. `https://github.example.com`.
    #[serde(default)]
    pub tracked_hosts: Vec<String>,
    /// Minutes without activity after which a session ends.
    #[serde(default = "default_idle")]
    pub idle_limit_minutes: u32,
}

fn default_idle() -> u32 {
    15
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_url: "http://127.0.0.1:8787".into(),
            token: String::new(),
            beacon_key: String::new(),
            tracked_hosts: Vec::new(),
            idle_limit_minutes: default_idle(),
        }
    }
}

/// Checks that `url` is an http(s) origin and returns it without a trailing slash.
pub fn normalise_origin(what: &str, url: &str) -> Result<String, ShellError> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            ShellError::BadMessage(format!(
                "{what} must start with http:// or https:// ({url})"
            ))
        })?;
    if rest.is_empty()
        || rest.contains('/')
        || rest.contains(' ')
        || rest.contains('#')
        || rest.contains('?')
    {
        return Err(ShellError::BadMessage(format!(
            "{what} must be just scheme, host and optional port, like https://github.example.com ({url})"
        )));
    }
    crate::pages::normalise_origin_text(url)
        .ok_or_else(|| ShellError::BadMessage(format!("{what} is not a valid origin ({url})")))
}

/// The match pattern for an origin (match patterns ignore the port).
pub fn match_pattern(origin: &str) -> String {
    let (scheme, rest) = origin.split_once("://").unwrap_or(("https", origin));
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => rest, // no port, or the end of an IPv6 address such as [::1]
    };
    format!("{scheme}://{host}/*")
}

impl Settings {
    /// Validates and normalises; the error says what to fix.
    pub fn validated(mut self) -> Result<Settings, ShellError> {
        if !self.server_url.trim().is_empty() {
            self.server_url = normalise_origin("Server URL", &self.server_url)?;
        }
        self.token = self.token.trim().to_string();
        self.beacon_key = self.beacon_key.trim().to_string();
        let mut hosts = Vec::new();
        for h in &self.tracked_hosts {
            if h.trim().is_empty() {
                continue;
            }
            let origin = normalise_origin("Tracked host", h)?;
            if !hosts.contains(&origin) {
                hosts.push(origin);
            }
        }
        self.tracked_hosts = hosts;
        if !(1..=240).contains(&self.idle_limit_minutes) {
            return Err(ShellError::BadMessage(
                "Idle limit must be between 1 and 240 minutes".into(),
            ));
        }
        Ok(self)
    }

    /// Whether a server and token are set.
    pub fn paired(&self) -> bool {
        !self.server_url.is_empty() && !self.token.is_empty()
    }

    /// Match patterns of every host these settings need access to, each
    /// once: the tracked hosts (the content script runs there) and the
    /// server (the worker's requests). The options page requests them before
    /// it saves.
    pub fn host_patterns(&self) -> Vec<String> {
        let server = Some(&self.server_url).filter(|s| !s.is_empty());
        let mut out: Vec<String> = Vec::new();
        for origin in self.tracked_hosts.iter().chain(server) {
            let pattern = match_pattern(origin);
            if !out.contains(&pattern) {
                out.push(pattern);
            }
        }
        out
    }

    /// Match patterns for the dynamically registered content script.
    pub fn content_script_matches(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tracked_hosts
            .iter()
            .map(|h| match_pattern(h))
            .collect();
        out.dedup();
        out
    }
}

thread_local! {
    /// Write-through copy of the stored settings for this worker's life:
    /// storage stays the truth, read again on every wake.
    static CACHE: std::cell::RefCell<Option<Settings>> = const { std::cell::RefCell::new(None) };
}

/// The stored settings (defaults when none, or when they no longer parse:
/// unreadable settings must not wedge the worker).
pub async fn load_settings() -> Result<Settings, ShellError> {
    if let Some(s) = CACHE.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let settings = match crate::chrome::storage_get(SETTINGS_KEY).await? {
        None => Settings::default(),
        Some(raw) => crate::js::from_js(&raw).unwrap_or_default(),
    };
    CACHE.with(|c| *c.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}

/// Saves validated settings.
pub async fn save_settings(settings: &Settings) -> Result<(), ShellError> {
    let value = crate::js::to_js(settings)?;
    crate::chrome::storage_set(SETTINGS_KEY, &value).await?;
    CACHE.with(|c| *c.borrow_mut() = Some(settings.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_cover_the_tracked_hosts_and_the_server_without_ports() {
        let settings = Settings {
            server_url: "https://reviewtime.example.com:8443/".into(),
            tracked_hosts: vec![
                "https://GHE.example.com".into(),
                "https://ghe.example.com:8443".into(),
                "http://[::1]".into(),
                "http://[::1]:4321".into(),
            ],
            ..Settings::default()
        };
        let Ok(settings) = settings.validated() else {
            panic!("valid settings")
        };
        assert_eq!(
            settings.host_patterns(),
            [
                "https://ghe.example.com/*",
                "http://[::1]/*",
                "https://reviewtime.example.com/*"
            ]
        );
        let unpaired = Settings {
            server_url: String::new(),
            ..Settings::default()
        };
        assert!(unpaired.host_patterns().is_empty());
    }
}
