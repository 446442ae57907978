//! Anomaly detection: a robust streaming change detector per series ([`robust`], fed through
//! [`series::SeriesDetectors`]) and a Mahalanobis-distance detector over a node's feature
//! vector; [`replay`] runs recorded series through the same path.
//!
//! Both report a *score* that is the detector statistic divided by its alarm threshold, so
//! `score ≥ 1` means "anomalous" for either detector and one AlertRule metric
//! (`anomaly_score`) covers both.

use std::collections::VecDeque;

pub mod events;
pub mod features;
pub mod log;
pub mod replay;
pub mod robust;
pub mod series;
pub mod snapshot;
pub mod store;

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
/// alarm threshold is the χ² 0.999 quantile for the features that vary: about one false alarm
/// per thousand points.
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
            // Degrees of freedom: only features that vary (in the window or now) count, so
            // absent or constant sections do not raise the bar for a change in one feature.
            let dof = (0..d)
                .filter(|&i| self.window.iter().any(|v| v[i] != x[i]))
                .count()
                .max(1);
            self.distance2(x).map(|d2| d2 / CHI2_999[dof - 1])
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
    fn mahalanobis_counts_only_features_that_vary() {
        // One varying feature among eight, seven constant ones: the threshold is χ²(1), so a
        // 4σ change in the one feature alarms as it would alone.
        let mut m = Mahalanobis::new(vec![1e-9; 8], 100, 10);
        for i in 0..100 {
            let mut v = vec![0.0; 8];
            v[0] = ((i % 5) as f64 - 2.0) / 2.0_f64.sqrt();
            m.observe(&v);
        }
        let mut x = vec![0.0; 8];
        x[0] = 4.0;
        let s = m.observe(&x).expect("score");
        assert!(s > 1.0 && (s * CHI2_999[0] - 16.0).abs() < 1.0, "{s}");
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
