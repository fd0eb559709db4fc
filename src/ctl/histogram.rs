//! Log-linear latency histograms: one writer (a core), any number of readers
//! (the control thread), no lock and no allocation when recording.
//!
//! Values are nanoseconds. Below 2^[`SUB_BITS`] each value has its own
//! bucket; above, every power of two is cut into 2^`SUB_BITS` equal buckets,
//! so a bucket is at most 1/32 of its value wide (the percentiles are the
//! bucket's middle: within ±1.6%). This is the layout of HdrHistogram with
//! two significant binary digits of mantissa more than needed for p99
//! agreement with a load generator.
//!
//! Recording is a few instructions: the bucket index from the leading zeros,
//! then a relaxed load and store of that bucket (one writer, so no
//! read-modify-write instruction is needed). Readers take a [`Snapshot`];
//! resets are done by the reader keeping a baseline snapshot and
//! subtracting it ([`Snapshot::since`]), so the writer is never raced.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Linear buckets per power of two: 2^5 = 32.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or above 2^`MAX_EXP` ns (about 68.7 s) land in the last bucket.
const MAX_EXP: u32 = 36;
/// Number of buckets: the linear ones, then 32 per power of two up to `MAX_EXP`.
pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize) * SUB as usize;

/// The bucket of `v` nanoseconds.
#[inline]
pub fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ SUB_BITS
    if exp >= MAX_EXP {
        return BUCKETS - 1;
    }
    let shift = exp - SUB_BITS;
    // The top SUB_BITS+1 bits of v: 32..=63.
    let mantissa = (v >> shift) as usize;
    (shift as usize + 1) * SUB as usize + (mantissa - SUB as usize)
}

/// The lowest value of bucket `i` and its width.
pub fn bucket_range(i: usize) -> (u64, u64) {
    let sub = SUB as usize;
    if i < sub {
        return (i as u64, 1);
    }
    let shift = (i / sub - 1) as u32;
    let mantissa = (i % sub) as u64 + SUB;
    (mantissa << shift, 1 << shift)
}

/// The value reported for bucket `i`: its middle.
fn bucket_value(i: usize) -> u64 {
    let (low, width) = bucket_range(i);
    low + width / 2
}

/// One core's histogram. Write it from one thread only.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram")
            .field("count", &s.count())
            .field("max", &s.max)
            .finish()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    /// Records `n` samples of `v` ns. Single writer: plain load + store.
    #[inline]
    pub fn record_n(&self, v: u64, n: u64) {
        let b = &self.counts[bucket_of(v)];
        b.store(b.load(Relaxed).wrapping_add(n), Relaxed);
        if v > self.max.load(Relaxed) {
            self.max.store(v, Relaxed);
        }
    }

    #[inline]
    pub fn record(&self, v: u64) {
        self.record_n(v, 1);
    }

    /// Forgets the maximum (the counts are reset by baseline, see the module docs).
    /// A sample recorded at the same instant may be lost from the max only.
    pub fn reset_max(&self) {
        self.max.store(0, Relaxed);
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            max: self.max.load(Relaxed),
        }
    }
}

/// A histogram's counts at one moment; several merge into one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub counts: Vec<u64>,
    /// Largest value recorded since the last max reset (ns).
    pub max: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            counts: vec![0; BUCKETS],
            max: 0,
        }
    }
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other` (another core) in.
    pub fn merge(&mut self, other: &Snapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.wrapping_add(*b);
        }
        self.max = self.max.max(other.max);
    }

    /// The samples recorded since `base` was taken (counts only grow).
    pub fn since(&self, base: &Snapshot) -> Snapshot {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(base.counts.get(i).copied().unwrap_or(0)))
            .collect();
        Snapshot {
            counts,
            max: self.max,
        }
    }

    /// The value at quantile `q` (0.0..=1.0), in ns: the middle of the
    /// bucket holding the ⌈q·count⌉-th smallest sample, never above max.
    /// None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let v = bucket_value(i);
                return Some(match self.max {
                    0 => v,
                    m => v.min(m),
                });
            }
        }
        Some(self.max)
    }

    /// The mean, from bucket middles (ns).
    pub fn mean(&self) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let sum: f64 = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| bucket_value(i) as f64 * *c as f64)
            .sum();
        Some(sum / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let mut last = 0;
        for i in 0..BUCKETS {
            let (low, width) = bucket_range(i);
            assert_eq!(low, last, "bucket {i} starts where {} ended", i.max(1) - 1);
            assert_eq!(bucket_of(low), i);
            assert_eq!(bucket_of(low + width - 1), i);
            if low >= SUB {
                assert!(width * SUB <= low, "bucket {i} at most 1/32 of its value");
            }
            last = low + width;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(0), 0);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000); // 1 µs .. 10 ms
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        for (q, want) in [(0.5, 5_000_000.0), (0.9, 9_000_000.0), (0.99, 9_900_000.0)] {
            let got = s.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.02, "p{q}: {got} vs {want}");
        }
        assert_eq!(s.quantile(1.0), Some(10_000_000));
        assert_eq!(s.max, 10_000_000);
        let mean = s.mean().unwrap();
        assert!((mean - 5_000_500.0).abs() / 5_000_500.0 < 0.02, "{mean}");
    }

    #[test]
    fn merge_adds_cores_and_since_subtracts_a_baseline() {
        let a = Histogram::new();
        let b = Histogram::new();
        a.record_n(1_000, 90);
        b.record_n(100_000, 10);
        let mut m = a.snapshot();
        m.merge(&b.snapshot());
        assert_eq!(m.count(), 100);
        assert_eq!(m.max, 100_000);
        let p50 = m.quantile(0.5).unwrap();
        assert!((984..=1016).contains(&p50), "{p50}");
        let p95 = m.quantile(0.95).unwrap();
        assert!((97_000..=100_000).contains(&p95), "{p95}");

        let base = m.clone();
        a.record_n(2_000, 5);
        let mut now = a.snapshot();
        now.merge(&b.snapshot());
        let d = now.since(&base);
        assert_eq!(d.count(), 5);
        let p = d.quantile(0.5).unwrap();
        assert!((1968..=2032).contains(&p), "{p}");
    }

    #[test]
    fn empty_has_no_percentiles() {
        let s = Snapshot::default();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.mean(), None);
        assert_eq!(s.count(), 0);
        // Odd quantiles do not panic.
        let h = Histogram::new();
        h.record(7);
        let s = h.snapshot();
        assert_eq!(s.quantile(f64::NAN), Some(7));
        assert_eq!(s.quantile(-3.0), Some(7));
        assert_eq!(s.quantile(42.0), Some(7));
    }
}
