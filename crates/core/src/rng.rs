//! Randomness as a seeded input (tower's one-method `Rng`), so jitter is
//! reproducible and the engine deterministic.

use serde::{Deserialize, Serialize};

/// A source of random numbers.
pub trait Rng {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `0..=max`.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            // Modulo bias is below 2^-40 for the ranges used (at most minutes in ms).
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

/// SplitMix64: tiny, fast, good enough for jitter, and serialisable so the
/// sequence continues across service-worker restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }
}

impl Rng for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn up_to_stays_in_range() {
        let mut r = SplitMix64::new(7);
        for max in [0u64, 1, 2, 999, 300_000] {
            for _ in 0..1000 {
                assert!(r.up_to(max) <= max);
            }
        }
    }
}
