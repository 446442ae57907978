//! Bounded rolling windows of timestamped samples.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::stats::{quantile, Welford};

/// One sample: when it was collected and its value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Collection time (the agent's `collectedAt`).
    pub at: DateTime<Utc>,
    /// Value, in the series' unit.
    pub value: f64,
}

/// A rolling window holding at most `capacity` samples, oldest evicted first, with its running
/// mean and standard deviation kept incrementally ([`Welford`] with removal), so memory per
/// series is `O(capacity)` and each push is `O(1)`.
///
/// Samples must arrive in time order; one older than the newest sample is dropped (a replayed
/// or reordered report must not corrupt rates and flap counts).
#[derive(Clone, Debug)]
pub struct Window {
    capacity: usize,
    samples: VecDeque<Sample>,
    stats: Welford,
}

impl Window {
    /// An empty window for up to `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            samples: VecDeque::with_capacity(capacity.min(64)),
            stats: Welford::default(),
        }
    }

    /// Appends a sample; returns `false` (and keeps nothing) when it is not finite or older
    /// than the newest sample.
    pub fn push(&mut self, at: DateTime<Utc>, value: f64) -> bool {
        if !value.is_finite() || self.samples.back().is_some_and(|s| s.at > at) {
            return false;
        }
        if self.samples.len() == self.capacity {
            if let Some(old) = self.samples.pop_front() {
                self.stats.remove(old.value);
            }
        }
        self.samples.push_back(Sample { at, value });
        self.stats.push(value);
        true
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The newest sample.
    pub fn last(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// Mean of the window.
    pub fn mean(&self) -> Option<f64> {
        self.stats.mean()
    }

    /// Sample standard deviation of the window (`None` below two samples).
    pub fn std_dev(&self) -> Option<f64> {
        self.stats.std_dev()
    }

    /// The `q`-quantile of the window ([`quantile`], Hyndman–Fan type 7).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v: Vec<f64> = self.samples.iter().map(|s| s.value).collect();
        quantile(&v, q)
    }

    /// Largest value in the window.
    pub fn max(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.value).reduce(f64::max)
    }

    /// For a window of a cumulative counter: the sum of its increases between consecutive
    /// samples no older than `since`, counting a decrease (a counter reset) as no increase.
    /// This is Prometheus' `increase()` without extrapolation.
    pub fn increase_since(&self, since: DateTime<Utc>) -> f64 {
        let mut total = 0.0;
        let mut prev: Option<f64> = None;
        for s in self.samples.iter().filter(|s| s.at >= since) {
            if let Some(p) = prev {
                if s.value >= p {
                    total += s.value - p;
                }
            }
            prev = Some(s.value);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn evicts_oldest_and_keeps_stats_exact() {
        let mut w = Window::new(3);
        for (i, v) in [10.0, 20.0, 30.0, 40.0].iter().enumerate() {
            assert!(w.push(t(i as i64), *v));
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.samples().next().map(|s| s.value), Some(20.0));
        assert_eq!(w.mean(), Some(30.0));
        assert_eq!(w.std_dev(), Some(10.0));
        assert_eq!(w.max(), Some(40.0));
        assert_eq!(w.quantile(0.5), Some(30.0));
    }

    #[test]
    fn rejects_out_of_order_and_non_finite() {
        let mut w = Window::new(4);
        assert!(w.push(t(10), 1.0));
        assert!(!w.push(t(5), 2.0));
        assert!(!w.push(t(11), f64::NAN));
        assert!(w.push(t(10), 3.0), "same timestamp is kept");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn capacity_zero_is_one() {
        let mut w = Window::new(0);
        w.push(t(0), 1.0);
        w.push(t(1), 2.0);
        assert_eq!(w.len(), 1);
        assert_eq!(w.last().map(|s| s.value), Some(2.0));
    }

    #[test]
    fn increase_ignores_resets_and_old_samples() {
        let mut w = Window::new(10);
        for (s, v) in [(0, 100.0), (10, 103.0), (20, 1.0), (30, 4.0), (40, 4.0)] {
            w.push(t(s), v);
        }
        // 3 (100→103) + 0 (reset) + 3 (1→4) + 0
        assert_eq!(w.increase_since(t(0)), 6.0);
        // only samples at ≥ 20s: 1 → 4 → 4
        assert_eq!(w.increase_since(t(20)), 3.0);
        assert_eq!(w.increase_since(t(100)), 0.0);
    }
}
