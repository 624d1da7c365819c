//! The engine's policies as plain data, with defaults from the product spec.

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;

/// Every tunable number, in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// A session with no user activity for this long ends (default 15 min).
    pub idle_limit_ms: i64,
    /// Queued items wait at most this long for company before a batch goes (default 3 s).
    pub flush_delay_ms: i64,
    /// Most activities per request (default 100).
    pub max_batch_items: usize,
    /// Largest batch body in bytes (default 60 KiB).
    pub max_batch_bytes: usize,
    /// Backoff after transient failures (1 s base, 5 min cap).
    pub backoff: Backoff,
    /// Transient failures move an item to the dead-letter queue only after this many attempts…
    pub max_attempts: u32,
    /// …and at least this long after its first failure (default 24 h).
    pub dead_letter_after_ms: i64,
    /// Most dead letters kept; older ones are evicted and counted (default 50).
    pub dead_letter_cap: usize,
    /// The shell aborts a request after this long (default 15 s).
    pub request_timeout_ms: i64,
    /// An in-flight marker older than timeout + this is abandoned (its worker died).
    pub in_flight_grace_ms: i64,
    /// Longest Retry-After honoured (default 1 h); longer asks are capped.
    pub max_retry_after_ms: i64,
    /// Longest wait between probes while the server is unreachable (default 8 s:
    /// a probe is one cheap request, and recovery after an outage should take seconds).
    pub probe_cap_ms: i64,
    /// Most review actions queued; past it new ones are refused and counted
    /// (shown in the popup), so storage stays bounded (default 50,000).
    pub max_outbox_activities: usize,
    /// Most session states queued (default 5,000), likewise.
    pub max_outbox_sessions: usize,
    /// After the server refused the token (401, 403), one request checks it
    /// again this often (default 5 min), and at once on "Sync now": a 401
    /// from a proxy, or from a server restored from a backup, passes.
    pub auth_recheck_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_limit_ms: 15 * 60_000,
            flush_delay_ms: 3_000,
            max_batch_items: reviewtime_protocol::routes::MAX_BATCH_ITEMS,
            max_batch_bytes: reviewtime_protocol::routes::MAX_BATCH_BYTES,
            backoff: Backoff::default(),
            max_attempts: 10,
            dead_letter_after_ms: 24 * 3_600_000,
            dead_letter_cap: 50,
            request_timeout_ms: 15_000,
            in_flight_grace_ms: 15_000,
            max_retry_after_ms: 3_600_000,
            probe_cap_ms: 8_000,
            max_outbox_activities: 50_000,
            max_outbox_sessions: 5_000,
            auth_recheck_ms: 5 * 60_000,
        }
    }
}

/// A config value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub &'static str);

impl Config {
    /// Checks the values; the engine relies on them being sane.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.idle_limit_ms < 60_000 {
            return Err(ConfigError("idle limit must be at least a minute"));
        }
        if self.max_batch_items == 0 || self.max_batch_bytes < 1024 {
            return Err(ConfigError("batch limits too small"));
        }
        if self.backoff.base_ms <= 0 || self.backoff.cap_ms < self.backoff.base_ms {
            return Err(ConfigError(
                "backoff base must be positive and at most the cap",
            ));
        }
        if self.max_attempts == 0 || self.dead_letter_cap == 0 {
            return Err(ConfigError("attempts and dead-letter cap must be positive"));
        }
        if self.request_timeout_ms <= 0 || self.flush_delay_ms < 0 || self.probe_cap_ms <= 0 {
            return Err(ConfigError("timeouts must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_numbers_and_valid() {
        let c = Config::default();
        assert_eq!(c.idle_limit_ms, 900_000);
        assert_eq!((c.max_batch_items, c.max_batch_bytes), (100, 61_440));
        assert_eq!(
            (c.max_attempts, c.dead_letter_after_ms, c.dead_letter_cap),
            (10, 86_400_000, 50)
        );
        assert_eq!(c.validate(), Ok(()));
        let bad = Config {
            dead_letter_cap: 0,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }
}
