//! Anomaly detection: a streaming EWMA z-score per series and a Mahalanobis-distance detector
//! over a node's feature vector.
//!
//! Both report a *score* that is the detector statistic divided by its alarm threshold, so
//! `score ≥ 1` means "anomalous" for either detector and one AlertRule metric
//! (`anomaly_score`) covers both.

use std::collections::VecDeque;

/// Streaming EWMA z-score detector for one series.
///
/// The baseline is an exponentially weighted moving average (S. W. Roberts, "Control chart
/// tests based on geometric moving averages", Technometrics 1(3), 1959) with the matching
/// exponentially weighted variance, updated incrementally as in T. Finch, "Incremental
/// calculation of weighted mean and variance", 2009:
/// `δ = x − μ; μ ← μ + λδ; σ² ← (1 − λ)(σ² + λδ²)`.
/// The statistic of a new point is `z = |x − μ| / max(σ, σ_min)` against the baseline *before*
/// the point is absorbed, alarming at `z ≥ L`. `λ = 0.1` with `L ≈ 3` is in the range
/// Lucas and Saccucci tabulate ("Exponentially weighted moving average control schemes",
/// Technometrics 32(1), 1990). `σ_min` keeps a flat series (loss always 0) from alarming on
/// a change too small to matter. No score is given during the first `warmup` points.
#[derive(Clone, Debug)]
pub struct Ewma {
    lambda: f64,
    limit: f64,
    sigma_min: f64,
    warmup: u32,
    n: u32,
    mean: f64,
    var: f64,
}

impl Ewma {
    /// A detector with smoothing `lambda` in (0, 1], alarm limit `limit` (in σ), noise floor
    /// `sigma_min` (series unit) and `warmup` points. Out-of-range arguments are clamped.
    pub fn new(lambda: f64, limit: f64, sigma_min: f64, warmup: u32) -> Self {
        Self {
            lambda: if lambda.is_finite() {
                lambda.clamp(1e-6, 1.0)
            } else {
                0.1
            },
            limit: if limit.is_finite() && limit > 0.0 {
                limit
            } else {
                3.0
            },
            sigma_min: if sigma_min.is_finite() {
                sigma_min.max(f64::MIN_POSITIVE)
            } else {
                1e-9
            },
            warmup,
            n: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// Scores `x` against the baseline, then absorbs it. Returns `z / L` once warmed up
    /// (`None` before, and for non-finite `x`, which is not absorbed).
    pub fn observe(&mut self, x: f64) -> Option<f64> {
        if !x.is_finite() {
            return None;
        }
        if self.n == 0 {
            self.mean = x;
            self.n = 1;
            return None;
        }
        let sigma = self.var.sqrt().max(self.sigma_min);
        let score = (self.n >= self.warmup).then(|| (x - self.mean).abs() / sigma / self.limit);
        let delta = x - self.mean;
        self.mean += self.lambda * delta;
        self.var = (1.0 - self.lambda) * (self.var + self.lambda * delta * delta);
        self.n = self.n.saturating_add(1);
        score
    }

    /// Current baseline mean.
    pub fn mean(&self) -> f64 {
        self.mean
    }
}

/// Upper 0.1 % quantiles of the χ² distribution for 1..=8 degrees of freedom (standard tables,
/// e.g. NIST/SEMATECH e-Handbook of Statistical Methods §1.3.6.7.4).
const CHI2_999: [f64; 8] = [
    10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124,
];

/// Multivariate detector over a rolling window of feature vectors (one per report of a node).
///
/// The statistic is the squared Mahalanobis distance (P. C. Mahalanobis, "On the generalised
/// distance in statistics", 1936) of the new vector from the window's mean,
/// `D² = (x − μ)ᵀ Σ⁻¹ (x − μ)`, with `Σ` the window's sample covariance plus a ridge
/// `diag(floor²)` so that constant features keep `Σ` invertible and changes below a feature's
/// floor do not count. For Gaussian data `D²` follows χ² with `d` degrees of freedom, so the
/// alarm threshold is the χ² 0.999 quantile: about one false alarm per thousand points.
/// Cost per point: `O(w·d² + d³)` for window `w` and `d` features (no maintained Rust crate for
/// isolation or random-cut forests was available in the build's registry, and for `d ≤ 8` this
/// is cheaper and deterministic).
#[derive(Clone, Debug)]
pub struct Mahalanobis {
    floors: Vec<f64>,
    capacity: usize,
    warmup: usize,
    window: VecDeque<Vec<f64>>,
}

impl Mahalanobis {
    /// A detector for `floors.len()` features (1..=8), each with its noise floor, over a window
    /// of `capacity` vectors, scoring once `warmup` vectors are held.
    pub fn new(floors: Vec<f64>, capacity: usize, warmup: usize) -> Self {
        let floors: Vec<f64> = floors
            .into_iter()
            .take(CHI2_999.len())
            .map(|f| if f.is_finite() && f > 0.0 { f } else { 1e-9 })
            .collect();
        let capacity = capacity.max(2);
        Self {
            warmup: warmup.clamp(2, capacity),
            capacity,
            window: VecDeque::new(),
            floors,
        }
    }

    /// Scores `x` (`D² / χ²₀.₉₉₉`) against the window, then adds it. `None` while warming up,
    /// or when `x` has the wrong length or a non-finite entry (then it is not added).
    pub fn observe(&mut self, x: &[f64]) -> Option<f64> {
        let d = self.floors.len();
        if d == 0 || x.len() != d || x.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let score = if self.window.len() >= self.warmup {
            self.distance2(x).map(|d2| d2 / CHI2_999[d - 1])
        } else {
            None
        };
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.window.push_back(x.to_vec());
        score
    }

    fn distance2(&self, x: &[f64]) -> Option<f64> {
        let d = self.floors.len();
        let n = self.window.len() as f64;
        let mut mean = vec![0.0; d];
        for v in &self.window {
            for i in 0..d {
                mean[i] += v[i] / n;
            }
        }
        let mut cov = vec![vec![0.0; d]; d];
        for v in &self.window {
            for i in 0..d {
                for j in 0..=i {
                    cov[i][j] += (v[i] - mean[i]) * (v[j] - mean[j]) / (n - 1.0);
                }
            }
        }
        for (i, row) in cov.iter_mut().enumerate() {
            row[i] += self.floors[i] * self.floors[i];
        }
        let diff: Vec<f64> = (0..d).map(|i| x[i] - mean[i]).collect();
        let l = cholesky(&cov)?;
        // Solve L y = diff; then D² = |y|².
        let mut y = vec![0.0; d];
        for i in 0..d {
            let s: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
            y[i] = (diff[i] - s) / l[i][i];
        }
        Some(y.iter().map(|v| v * v).sum())
    }
}

/// Cholesky factor `L` (lower triangular, `A = L Lᵀ`) of the symmetric positive definite
/// matrix whose lower triangle is given; `None` when `A` is not positive definite.
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let d = a.len();
    let mut l = vec![vec![0.0; d]; d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let v = a[i][i] - s;
                if v.is_nan() || v <= 0.0 {
                    return None;
                }
                l[i][i] = v.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_update_matches_the_recurrence() {
        let mut e = Ewma::new(0.5, 3.0, 1e-9, 0);
        assert_eq!(e.observe(10.0), None, "first point only seeds the baseline");
        // baseline μ=10, σ=0 → σ_min; point 14: δ=4, μ=12, σ²=0.5·(0+0.5·16)=4
        assert!(e.observe(14.0).expect("score") > 1.0);
        assert!((e.mean() - 12.0).abs() < 1e-12);
        // next point 12: z = |12−12|/2 = 0
        assert_eq!(e.observe(12.0), Some(0.0));
    }

    #[test]
    fn ewma_warmup_and_floor_suppress_noise() {
        let mut e = Ewma::new(0.1, 3.0, 0.5, 5);
        for _ in 0..5 {
            e.observe(0.0);
        }
        // 1.0 from a flat 0 baseline: z = 1/0.5 = 2 < 3 → score 2/3
        let s = e.observe(1.0).expect("warmed up");
        assert!((s - 2.0 / 3.0).abs() < 1e-12, "{s}");
        let mut w = Ewma::new(0.1, 3.0, 0.5, 5);
        assert_eq!(w.observe(0.0), None);
        assert_eq!(w.observe(100.0), None, "still warming up");
        assert_eq!(w.observe(f64::NAN), None);
    }

    #[test]
    fn ewma_flags_a_step_in_a_noisy_series() {
        let mut e = Ewma::new(0.1, 3.0, 1e-6, 10);
        let mut max_normal: f64 = 0.0;
        for i in 0..200 {
            let x = 1.0 + 0.01 * ((i * 7919 % 13) as f64 - 6.0);
            if let Some(s) = e.observe(x) {
                max_normal = max_normal.max(s);
            }
        }
        assert!(max_normal < 1.0, "no alarm on noise: {max_normal}");
        assert!(e.observe(2.0).expect("score") > 1.0);
    }

    #[test]
    fn mahalanobis_equals_z_squared_in_one_dimension() {
        let mut m = Mahalanobis::new(vec![1e-9], 100, 3);
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            m.observe(&[x]);
        }
        // mean 3, sample variance 2.5 → D² of 8 = 25/2.5 = 10
        let s = m.observe(&[8.0]).expect("score");
        assert!((s * CHI2_999[0] - 10.0).abs() < 1e-6, "{s}");
    }

    #[test]
    fn mahalanobis_sees_a_broken_correlation() {
        // Two features that always move together; a point with each value in range but
        // the relation broken is anomalous, a point on the line is not.
        let mut m = Mahalanobis::new(vec![0.01, 0.01], 60, 20);
        for i in 0..60 {
            let a = (i % 10) as f64;
            m.observe(&[a, 2.0 * a + 0.05 * ((i % 3) as f64)]);
        }
        let on_line = m.clone().observe(&[5.0, 10.05]).expect("score");
        let off_line = m.observe(&[5.0, 1.0]).expect("score");
        assert!(on_line < 1.0, "{on_line}");
        assert!(off_line > 1.0, "{off_line}");
    }

    #[test]
    fn mahalanobis_rejects_bad_vectors_and_constant_features_are_fine() {
        let mut m = Mahalanobis::new(vec![1.0, 1.0], 10, 2);
        assert_eq!(m.observe(&[1.0]), None);
        assert_eq!(m.observe(&[1.0, f64::NAN]), None);
        m.observe(&[0.0, 0.0]);
        m.observe(&[0.0, 0.0]);
        let s = m.observe(&[0.0, 0.5]).expect("score");
        assert!(
            s < 1.0,
            "constant window with a ridge stays invertible: {s}"
        );
    }

    #[test]
    fn cholesky_rejects_indefinite() {
        assert!(cholesky(&[vec![1.0, 0.0], vec![2.0, 1.0]]).is_none());
        let l = cholesky(&[vec![4.0, 0.0], vec![2.0, 2.0]]).expect("spd");
        assert_eq!(l[0][0], 2.0);
        assert_eq!(l[1][0], 1.0);
        assert_eq!(l[1][1], 1.0);
    }
}
