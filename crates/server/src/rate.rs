//! Rate limits on writes: per credential and per client address, with
//! governor's keyed GCRA limiters (no hand-written accounting). A refused
//! request gets 429 `rate_limited` with `Retry-After`, which the extension
//! honours for every request (docs/ARCHITECTURE.md invariant 13).
//!
//! The defaults are far above what one reviewer's extension sends (a few
//! writes a minute, bursts of a few dozen after an outage), so only a
//! runaway or hostile client meets them.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderName};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::Reject;

/// One limit: a burst, refilled at a steady rate. Either at 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests per second sustained.
    pub per_sec: u32,
}

impl Rate {
    /// Default per credential: bursts of 200, 50 per second.
    pub const PER_TOKEN: Rate = Rate {
        burst: 200,
        per_sec: 50,
    };
    /// Default per client address: bursts of 400, 100 per second (several
    /// users may share one address behind a NAT).
    pub const PER_ADDRESS: Rate = Rate {
        burst: 400,
        per_sec: 100,
    };
    /// No limit.
    pub const OFF: Rate = Rate {
        burst: 0,
        per_sec: 0,
    };

    fn quota(self) -> Option<Quota> {
        let burst = NonZeroU32::new(self.burst)?;
        let per_sec = NonZeroU32::new(self.per_sec)?;
        Some(Quota::per_second(per_sec).allow_burst(burst))
    }
}

/// The server's write limits.
#[derive(Debug)]
pub struct RateLimits {
    per_token: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    address_header: Option<HeaderName>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Limits per credential (keyed by the hash of the secret, never the
    /// secret) and per client address.
    pub fn new(per_token: Rate, per_address: Rate) -> Self {
        RateLimits {
            per_token: per_token.quota().map(RateLimiter::keyed),
            per_address: per_address.quota().map(RateLimiter::keyed),
            address_header: None,
            clock: DefaultClock::default(),
        }
    }

    /// Takes the client's address from `header` (as a reverse proxy sets
    /// it: `X-Forwarded-For`, whose last entry is the one the nearest proxy
    /// added, or `X-Real-IP`) instead of the connection's peer. Only for a
    /// server reachable through that proxy alone: anyone else could write
    /// any address there.
    pub fn with_address_header(mut self, header: Option<HeaderName>) -> Self {
        self.address_header = header;
        self
    }

    /// The address a request counts against: the configured header's last
    /// entry when it holds an address, else the connection's peer.
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let from_header = self.address_header.as_ref().and_then(|name| {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        });
        from_header.or(peer)
    }

    /// No limits at all.
    pub fn off() -> Self {
        RateLimits::new(Rate::OFF, Rate::OFF)
    }

    /// Counts one write by the credential whose hash is `key`.
    pub fn check_token(&self, key: &str) -> Result<(), Reject> {
        let Some(limiter) = &self.per_token else {
            return Ok(());
        };
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            self.refuse("credential", not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Counts one write from `address`. IPv6 addresses count per /64, the
    /// block one host usually holds.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Reject> {
        let Some(limiter) = &self.per_address else {
            return Ok(());
        };
        limiter
            .check_key(&block(address))
            .map_err(|not_until| self.refuse("address", not_until.wait_time_from(self.clock.now())))
    }

    fn refuse(&self, what: &str, wait: std::time::Duration) -> Reject {
        // Whole seconds, rounded up, never 0 (which would mean "at once").
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Reject::rate_limited(what, secs.max(1))
    }

    /// Forgets keys whose limiters are full again, so memory follows the
    /// clients of the last moments, not every client ever seen.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_token {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_address {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn block(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_write_waits_at_least_a_second() {
        let limits = RateLimits::new(
            Rate {
                burst: 3,
                per_sec: 1,
            },
            Rate::OFF,
        );
        for _ in 0..3 {
            assert_eq!(limits.check_token("k"), Ok(()));
        }
        let refused = limits.check_token("k").err();
        assert_eq!(refused.as_ref().map(|r| r.status.as_u16()), Some(429));
        assert_eq!(refused.and_then(|r| r.retry_after), Some(1));
        assert_eq!(limits.check_token("other"), Ok(()), "keys are independent");
    }

    #[test]
    fn a_configured_header_names_the_client_only_when_it_holds_an_address() {
        let peer = Some(IpAddr::V4([127, 0, 0, 1].into()));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 10.0.0.7"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        let plain = RateLimits::off();
        assert_eq!(
            plain.client_address(&headers, peer),
            peer,
            "ignored unless configured"
        );
        let proxied =
            RateLimits::off().with_address_header(Some(HeaderName::from_static("x-forwarded-for")));
        assert_eq!(
            proxied.client_address(&headers, peer),
            Some(IpAddr::V4([10, 0, 0, 7].into()))
        );
        headers.insert(
            "x-forwarded-for",
            "garbage".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(proxied.client_address(&headers, peer), peer);
    }

    #[test]
    fn ipv6_hosts_count_per_64_block() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(block(a), block(b));
        let v4: IpAddr = "::ffff:10.0.0.1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(block(v4), IpAddr::V4([10, 0, 0, 1].into()));
    }
}
