//! Statistically sound loss verdicts: probe counts per path over a short history of reports,
//! exact binomial bounds on the loss rate, and an error rate corrected for the number of
//! paths judged at once.
//!
//! One lost probe out of 10 is 10 % loss as a point estimate, but says almost nothing about the
//! path: with 0.1 % background loss and thousands of paths, some path loses a probe in every
//! interval. A path (or a node's pool of paths) is therefore graded on the **lower confidence
//! bound** of its loss rate — "the loss is at least this much, with confidence `1 − α/m`" —
//! where `m` is the number of verdicts taken together (Bonferroni), so that a healthy fleet of
//! any size stays Healthy with probability ≥ `1 − α` per evaluation.
//!
//! The bound is the exact (Clopper–Pearson) one: the smallest `p` with
//! `P(X ≥ k | n, p) > α/m`, i.e. the one-sided exact binomial test. Wilson's score interval,
//! the usual choice for small counts, under-covers badly in the far tail such corrections
//! need: at `α/m ≈ 10⁻⁷` it puts the lower bound for 2 lost of 10 above 1 %, while 2 of 10
//! happens with probability 4.5·10⁻⁵ at 0.1 % loss — hundreds of false verdicts per hour in a
//! large fleet.
//!
//! Sources: C. J. Clopper, E. S. Pearson, "The use of confidence or fiducial limits
//! illustrated in the case of the binomial", Biometrika 26 (1934); L. D. Brown, T. T. Cai,
//! A. DasGupta, "Interval estimation for a binomial proportion", Statistical Science 16
//! (2001), §4 (the Wilson interval's poor coverage for small `np`); C. E. Bonferroni (1936)
//! for the multiplicity correction; E. B. Wilson, JASA 22 (1927), for what is not used.

use std::collections::VecDeque;

/// Family-wise error rate of one evaluation of one target: the chance that a healthy fleet
/// shows a single lossy verdict at all.
pub const FAMILY_ALPHA: f64 = 0.01;

/// Reports of probe counts kept per path (at a 10 s interval, 80 s).
pub const PATH_HISTORY: usize = 8;

/// Suffix windows scanned, in reports: a fault that has just started shows in the short
/// windows, a small loss rate in the long one.
pub const SCAN_WINDOWS: [usize; 4] = [1, 2, 4, 8];

/// Probes sent and lost on a path (or summed over several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    /// Probes sent.
    pub sent: u64,
    /// Probes without an answer in time.
    pub lost: u64,
}

impl ProbeCounts {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: ProbeCounts) {
        self.sent += o.sent;
        self.lost += o.lost;
    }

    /// Loss rate 0–1 (point estimate); `None` without probes.
    pub fn rate(self) -> Option<f64> {
        (self.sent > 0).then(|| self.lost as f64 / self.sent as f64)
    }

    /// Whether the loss rate is at least `t` (0–1) at error rate `alpha`: the exact one-sided
    /// binomial test `P(X ≥ lost | sent, t) ≤ alpha`.
    pub fn at_least(self, t: f64, alpha: f64) -> bool {
        let (k, n) = (self.lost.min(self.sent), self.sent);
        k > 0 && (k as f64) > n as f64 * t && upper_tail(k, n, t) <= alpha
    }

    /// Lower Clopper–Pearson bound of the loss rate at error rate `alpha`, 0–1 (0 without a
    /// lost probe): the largest `p` whose test [`ProbeCounts::at_least`] still passes.
    pub fn lower(self, alpha: f64) -> f64 {
        let (k, n) = (self.lost.min(self.sent), self.sent);
        if k == 0 {
            return 0.0;
        }
        let (mut lo, mut hi) = (0.0, k as f64 / n as f64);
        // The tail grows with p; 40 halvings give ~1e-12 resolution.
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if upper_tail(k, n, mid) <= alpha {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed from the term at `k` upwards with the ratio
/// `pmf(j+1)/pmf(j) = (n−j)/(j+1) · p/(1−p)` until the terms no longer matter.
pub fn upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // ln C(n, k) + k ln p + (n − k) ln(1 − p)
    let ln_c: f64 = (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum();
    let mut term = (ln_c + k as f64 * p.ln() + (n - k) as f64 * (-p).ln_1p()).exp();
    let ratio = p / (1.0 - p);
    let mut sum = 0.0;
    let mut j = k;
    loop {
        sum += term;
        if j == n || (term < sum * 1e-15 && (n - j) as f64 * ratio < (j + 1) as f64) {
            break;
        }
        term *= (n - j) as f64 / (j + 1) as f64 * ratio;
        j += 1;
    }
    sum.min(1.0)
}

/// The error rate of each of `m` simultaneous verdicts at family-wise error rate `alpha`
/// (Bonferroni), counting every scanned window as a verdict.
pub fn bonferroni(alpha: f64, m: usize) -> f64 {
    alpha / (m.max(1) * SCAN_WINDOWS.len()) as f64
}

/// The probe counts of one path over its last [`PATH_HISTORY`] reports, newest last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathHistory {
    counts: VecDeque<ProbeCounts>,
}

impl PathHistory {
    /// Appends one report's counts (received is clamped to sent: agents may send anything).
    pub fn push(&mut self, sent: u32, received: u32) {
        if self.counts.len() == PATH_HISTORY {
            self.counts.pop_front();
        }
        self.counts.push_back(ProbeCounts {
            sent: u64::from(sent),
            lost: u64::from(sent.saturating_sub(received)),
        });
    }

    /// Counts summed over each of [`SCAN_WINDOWS`] (the newest `w` reports; fewer when the
    /// history is shorter).
    pub fn windows(&self) -> [ProbeCounts; SCAN_WINDOWS.len()] {
        let mut out = [ProbeCounts::default(); SCAN_WINDOWS.len()];
        let mut acc = ProbeCounts::default();
        let mut wi = 0;
        for (i, c) in self.counts.iter().rev().enumerate() {
            acc.add(*c);
            while wi < SCAN_WINDOWS.len() && SCAN_WINDOWS[wi] == i + 1 {
                out[wi] = acc;
                wi += 1;
            }
        }
        for o in out.iter_mut().skip(wi) {
            *o = acc;
        }
        out
    }
}

/// The highest lower bound over `windows` at error rate `alpha`, 0–1: the loss the path has
/// at least, judged on whichever recent window shows it best.
pub fn lower_bound(windows: &[ProbeCounts], alpha: f64) -> f64 {
    windows.iter().map(|w| w.lower(alpha)).fold(0.0, f64::max)
}

/// Whether any of `windows` has a loss rate of at least `t` at error rate `alpha`.
pub fn any_at_least(windows: &[ProbeCounts], t: f64, alpha: f64) -> bool {
    windows.iter().any(|w| w.at_least(t, alpha))
}

/// The highest point estimate over `windows`, 0–1 (0 without probes).
pub fn worst_rate(windows: &[ProbeCounts]) -> f64 {
    windows.iter().filter_map(|w| w.rate()).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_tail_matches_exact_sums() {
        // P(X ≥ 2 | 10, 0.01) = 1 − 0.99¹⁰ − 10·0.01·0.99⁹
        let exact = 1.0 - 0.99f64.powi(10) - 10.0 * 0.01 * 0.99f64.powi(9);
        assert!((upper_tail(2, 10, 0.01) - exact).abs() < 1e-12);
        assert_eq!(upper_tail(0, 10, 0.5), 1.0);
        assert_eq!(upper_tail(11, 10, 0.5), 0.0);
        assert!((upper_tail(10, 10, 0.5) - 0.5f64.powi(10)).abs() < 1e-15);
        // Large n stays finite and sane.
        let t = upper_tail(700, 20_000, 0.03);
        assert!(t > 0.0 && t < 0.01, "{t}");
    }

    #[test]
    fn clopper_pearson_matches_tables() {
        // 1 of 10 at one-sided 2.5 %: 0.00253 (Clopper–Pearson 95 % two-sided lower limit).
        let lo = ProbeCounts { sent: 10, lost: 1 }.lower(0.025);
        assert!((lo - 0.002_53).abs() < 2e-5, "{lo}");
        // 5 of 20: 0.0866.
        let lo = ProbeCounts { sent: 20, lost: 5 }.lower(0.025);
        assert!((lo - 0.0866).abs() < 2e-4, "{lo}");
        assert_eq!(ProbeCounts { sent: 0, lost: 0 }.lower(0.01), 0.0);
        // lost > sent from a bad report is clamped, not a bound above 1.
        assert!(ProbeCounts { sent: 10, lost: 20 }.lower(0.01) <= 1.0);
    }

    #[test]
    fn one_or_two_lost_probes_are_not_a_lossy_path_but_a_real_loss_is() {
        let a = bonferroni(FAMILY_ALPHA, 64_000);
        for lost in [1, 2] {
            let mut h = PathHistory::default();
            h.push(10, 10 - lost);
            assert!(lower_bound(&h.windows(), a) < 0.01, "{lost} of 10");
            assert!(!any_at_least(&h.windows(), 0.01, a));
        }
        let mut bad = PathHistory::default();
        for _ in 0..3 {
            bad.push(10, 6);
        }
        assert!(lower_bound(&bad.windows(), a) >= 0.01);
        assert!(any_at_least(&bad.windows(), 0.01, a));
    }

    #[test]
    fn windows_are_suffix_sums() {
        let mut h = PathHistory::default();
        for i in 0..10u32 {
            h.push(10, 10 - (i % 3));
        }
        let w = h.windows();
        assert_eq!(w[0], ProbeCounts { sent: 10, lost: 0 }); // i = 9
        assert_eq!(w[1], ProbeCounts { sent: 20, lost: 2 }); // i = 8, 9
        assert_eq!(w[3].sent, 80);
        let mut short = PathHistory::default();
        short.push(5, 4);
        assert!(short
            .windows()
            .iter()
            .all(|c| *c == ProbeCounts { sent: 5, lost: 1 }));
        short.push(5, 9);
        assert_eq!(
            short.windows()[0].lost,
            0,
            "received > sent is no negative loss"
        );
    }
}
