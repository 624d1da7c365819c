//! Exponential backoff with full jitter, as an absolute time to retry at.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::UnixMillis;

/// Backoff policy: retry number `n` waits a uniform random time in
/// `0..=min(cap, base * 2^(n-1))` ("full jitter", which spreads a crowd of
/// clients best after a shared outage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// First ceiling, in ms.
    pub base_ms: i64,
    /// Largest ceiling, in ms.
    pub cap_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 1_000,
            cap_ms: 5 * 60_000,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay after `attempts` failed attempts (1-based).
    pub fn ceiling(&self, attempts: u32) -> i64 {
        let exp = attempts.saturating_sub(1).min(62);
        let grown = self.base_ms.saturating_mul(1i64 << exp);
        grown.min(self.cap_ms).max(0)
    }

    /// When to retry, given `attempts` failures so far.
    pub fn retry_at(&self, now: UnixMillis, attempts: u32, rng: &mut impl Rng) -> UnixMillis {
        let ceiling = self.ceiling(attempts) as u64;
        now.saturating_add(rng.up_to(ceiling) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn ceiling_doubles_from_one_second_to_five_minutes() {
        let b = Backoff::default();
        let ceilings: Vec<i64> = (1..=11).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            vec![
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000
            ]
        );
        assert_eq!(b.ceiling(u32::MAX), 300_000, "no overflow");
    }

    #[test]
    fn full_jitter_is_exact_under_a_seed_and_within_bounds() {
        let b = Backoff::default();
        let mut rng = SplitMix64::new(1);
        let got: Vec<i64> = (1..=6)
            .map(|n| b.retry_at(10_000, n, &mut rng) - 10_000)
            .collect();
        let mut rng = SplitMix64::new(1);
        let want: Vec<i64> = (1..=6)
            .map(|n| (rng.next_u64() % (b.ceiling(n) as u64 + 1)) as i64)
            .collect();
        assert_eq!(got, want);
        assert_eq!(got, vec![240, 1_819, 972, 1_064, 5_118, 30_671]);
        let mut rng = SplitMix64::new(99);
        for n in 1..40 {
            let d = b.retry_at(0, n, &mut rng);
            assert!((0..=b.ceiling(n)).contains(&d));
        }
    }
}
