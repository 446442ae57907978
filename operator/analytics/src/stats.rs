//! Streaming and window statistics: Welford mean/variance, percentiles, counter rates.

/// Running mean and variance by Welford's online algorithm, with removal.
///
/// Source: B. P. Welford, "Note on a method for calculating corrected sums of squares and
/// products", Technometrics 4(3), 1962; the removal step is the same recurrence run backwards
/// (D. H. D. West, "Updating mean and variance estimates", CACM 22(9), 1979). Numerically
/// stable where the textbook `Σx² − n·x̄²` cancels catastrophically.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Welford {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds one observation. Non-finite values are ignored.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Removes an observation previously pushed (a value leaving a sliding window).
    /// Removing from an empty accumulator or a non-finite value does nothing.
    pub fn remove(&mut self, x: f64) {
        if !x.is_finite() || self.n == 0 {
            return;
        }
        if self.n == 1 {
            *self = Self::default();
            return;
        }
        let n = self.n as f64;
        let mean_without = (n * self.mean - x) / (n - 1.0);
        self.m2 -= (x - self.mean) * (x - mean_without);
        self.m2 = self.m2.max(0.0);
        self.mean = mean_without;
        self.n -= 1;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Arithmetic mean; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Sample variance `M2 / (n − 1)` (Bessel-corrected); `None` below two observations.
    pub fn variance(&self) -> Option<f64> {
        (self.n > 1).then(|| self.m2 / (self.n - 1) as f64)
    }

    /// Sample standard deviation; `None` below two observations.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `values` by linear interpolation between order statistics,
/// definition 7 of R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages",
/// The American Statistician 50(4), 1996 (the default of R and NumPy):
/// `h = (n − 1)·q`, `Q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`.
///
/// Non-finite values are skipped; `None` when nothing is left or `q` is outside `[0, 1]`.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    Some(v[lo] + (h - lo as f64) * (v[hi] - v[lo]))
}

/// Per-second rate of a monotonically increasing counter between two readings `dt_seconds`
/// apart: `(cur − prev) / dt`. Returns `None` when `dt` is not positive or the counter went
/// backwards (a reset: driver reload, reboot or wrap). Unlike Prometheus' `rate()`, which
/// assumes a reset restarted from 0 and counts the new value as increase, no rate is given
/// for that interval: one skipped sample is better than a spike after a driver reload.
pub fn counter_rate(prev: u64, cur: u64, dt_seconds: f64) -> Option<f64> {
    if dt_seconds.is_nan() || dt_seconds <= 0.0 || cur < prev {
        return None;
    }
    Some((cur - prev) as f64 / dt_seconds)
}

/// Packet loss in percent, `100 · (sent − received) / sent` (RFC 2680 §2.4 one-way loss,
/// applied to round trips as RFC 6673 does). `None` when nothing was sent; replies beyond
/// `sent` (duplicates) count as zero loss.
pub fn loss_percent(sent: u64, received: u64) -> Option<f64> {
    (sent > 0).then(|| 100.0 * sent.saturating_sub(received) as f64 / sent as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn welford_matches_two_pass_formula() {
        let xs = [1.0e9 + 4.0, 1.0e9 + 7.0, 1.0e9 + 13.0, 1.0e9 + 16.0];
        let mut w = Welford::default();
        xs.iter().for_each(|x| w.push(*x));
        let (m, v) = naive(&xs);
        assert!((w.mean().expect("mean") - m).abs() < 1e-6);
        // Variance of {4, 7, 13, 16} is 30 regardless of the 1e9 offset.
        assert!((w.variance().expect("var") - v).abs() < 1e-6);
        assert!((v - 30.0).abs() < 1e-6);
    }

    #[test]
    fn welford_removal_equals_recomputation() {
        let xs = [3.0, 9.0, 1.0, 4.0, 4.0, 10.0];
        let mut w = Welford::default();
        xs.iter().for_each(|x| w.push(*x));
        w.remove(3.0);
        w.remove(9.0);
        let (m, v) = naive(&xs[2..]);
        assert!((w.mean().expect("mean") - m).abs() < 1e-12);
        assert!((w.variance().expect("var") - v).abs() < 1e-12);
        w.remove(1.0);
        w.remove(4.0);
        w.remove(4.0);
        assert_eq!(w.count(), 1);
        assert_eq!(w.variance(), None);
        w.remove(10.0);
        assert_eq!(w.mean(), None);
        w.remove(1.0); // empty: no underflow
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn welford_ignores_non_finite() {
        let mut w = Welford::default();
        w.push(f64::NAN);
        w.push(f64::INFINITY);
        w.push(2.0);
        assert_eq!(w.count(), 1);
    }

    #[test]
    fn quantile_type7_matches_numpy() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 99, 100]) = 1, 1.75, 2.5, 3.97, 4
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.99).expect("p99") - 3.97).abs() < 1e-12);
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[f64::NAN], 0.5), None);
        assert_eq!(quantile(&v, 1.5), None);
    }

    #[test]
    fn counter_rate_refuses_resets_and_zero_intervals() {
        assert_eq!(counter_rate(100, 160, 60.0), Some(1.0));
        assert_eq!(counter_rate(100, 100, 10.0), Some(0.0));
        assert_eq!(counter_rate(100, 5, 10.0), None);
        assert_eq!(counter_rate(1, 2, 0.0), None);
        assert_eq!(counter_rate(1, 2, f64::NAN), None);
    }

    #[test]
    fn loss_percent_edges() {
        assert_eq!(loss_percent(5, 5), Some(0.0));
        assert_eq!(loss_percent(5, 4), Some(20.0));
        assert_eq!(loss_percent(5, 0), Some(100.0));
        assert_eq!(loss_percent(5, 6), Some(0.0));
        assert_eq!(loss_percent(0, 0), None);
    }
}
