//! Latency histograms in microseconds.

use hdrhistogram::Histogram;
use std::time::Duration;

pub struct Latency(Histogram<u64>);

impl Latency {
    pub fn new() -> Latency {
        // 1 µs to 60 s, 3 significant digits.
        Latency(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, 60_000_000);
        self.0.saturating_record(us);
    }

    pub fn add(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    pub fn reset(&mut self) {
        self.0.reset();
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    pub fn max(&self) -> u64 {
        self.0.max()
    }

    pub fn mean(&self) -> f64 {
        self.0.mean()
    }

    /// `n=.. p50=.. p90=.. p99=.. p999=.. max=.. mean=..` (µs), prefixed by `name_`.
    pub fn fields(&self, name: &str) -> String {
        format!(
            "{name}_n={} {name}_p50_us={} {name}_p90_us={} {name}_p99_us={} {name}_p999_us={} {name}_max_us={} {name}_mean_us={:.1}",
            self.len(),
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.quantile(0.999),
            self.max(),
            self.mean()
        )
    }
}
