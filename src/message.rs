//! The messages the service worker accepts. Input is untrusted
//! (ARCHITECTURE.md invariant 10): anything that does not parse gets an error
//! answer and changes nothing.

use serde::Deserialize;

use crate::settings::Settings;

/// A message from a content script, the popup or the options page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// The popup asks for the sync status.
    Status,
    /// A content script announces itself from a page.
    Hello {
        /// The page's URL.
        url: String,
    },
    /// The options page reads the settings.
    GetSettings,
    /// The options page saves the settings.
    SetSettings {
        /// The new settings, validated before they are stored.
        settings: Settings,
    },
}
