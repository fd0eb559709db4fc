//! A random source shared by the cores without a lock: splitmix64 over an
//! atomic counter (dispatcher's random algorithm, cfgutils' `$RANDOM` and
//! probabilities, pipelimit's `Retry-After` ranges). Not for secrets.

use std::sync::atomic::{AtomicU64, Ordering};

/// The next number from `state` (seeded once with a random value).
pub fn splitmix_next(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
