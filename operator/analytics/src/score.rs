//! Network quality score, 0–100, from loss, round-trip time and jitter.

/// Best R-factor of the simplified E-model (Cole & Rosenbluth 2001 use 94.2 for G.711).
pub const R_MAX: f64 = 94.2;

/// Network quality score in `[0, 100]` for one path, higher is better.
///
/// It is the ITU-T G.107 E-model transmission rating `R`, in the simplified form of
/// R. G. Cole and J. H. Rosenbluth, "Voice over IP performance monitoring", ACM SIGCOMM CCR
/// 31(2), 2001, for the G.711 codec, rescaled so a perfect path scores 100:
///
/// * `d = rtt/2 + 2·jitter` — one-way mouth-to-ear delay in milliseconds, taking half the
///   round trip and a de-jitter buffer of twice the RFC 3550 jitter (a common convention);
/// * `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)` — delay impairment (`H` = step function);
/// * `Ie = 30·ln(1 + 15·e)` — equipment/loss impairment for G.711, `e` the loss fraction;
/// * `R = 94.2 − Id − Ie`, and the score is `100 · clamp(R, 0, 94.2) / 94.2`.
///
/// A path with 100 % loss scores 0 (the formula alone would leave ≈ 12). The E-model punishes
/// loss much more than the sub-millisecond delays of a healthy fabric; fabric-level latency
/// problems are caught by the `rttP99Seconds` thresholds, not by this score.
///
/// Inputs: `loss_percent` in 0–100, `rtt_seconds` and `jitter_seconds` ≥ 0 (negative or
/// non-finite values are treated as 0; loss is clamped into range).
pub fn network_score(loss_percent: f64, rtt_seconds: f64, jitter_seconds: f64) -> f64 {
    let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    let e = (clean(loss_percent) / 100.0).min(1.0);
    if e >= 1.0 {
        return 0.0;
    }
    let d_ms = 1000.0 * (clean(rtt_seconds) / 2.0 + 2.0 * clean(jitter_seconds));
    let id = 0.024 * d_ms
        + if d_ms > 177.3 {
            0.11 * (d_ms - 177.3)
        } else {
            0.0
        };
    let ie = 30.0 * (1.0 + 15.0 * e).ln();
    let r = (R_MAX - id - ie).clamp(0.0, R_MAX);
    100.0 * r / R_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_path_scores_100() {
        assert_eq!(network_score(0.0, 0.0, 0.0), 100.0);
    }

    #[test]
    fn loss_impairment_follows_cole_rosenbluth() {
        // 5 % loss: Ie = 30·ln(1.75) = 16.788; R = 94.2 − 16.788 = 77.41 → 82.18
        let s = network_score(5.0, 0.0, 0.0);
        assert!((s - 100.0 * (94.2 - 30.0 * 1.75f64.ln()) / 94.2).abs() < 1e-9);
        assert!((s - 82.18).abs() < 0.01, "{s}");
        assert_eq!(network_score(100.0, 0.001, 0.0), 0.0);
        assert_eq!(network_score(250.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn delay_impairment_has_a_knee_at_177_ms() {
        // rtt 300 ms → d = 150 ms: Id = 3.6, no knee term
        let below = network_score(0.0, 0.300, 0.0);
        assert!((below - 100.0 * (94.2 - 3.6) / 94.2).abs() < 1e-9);
        // rtt 400 ms, jitter 10 ms → d = 220 ms: Id = 5.28 + 0.11·42.7 = 9.977
        let above = network_score(0.0, 0.400, 0.010);
        assert!((above - 100.0 * (94.2 - 9.977) / 94.2).abs() < 1e-9);
    }

    #[test]
    fn score_is_monotone_and_bounded() {
        let mut last = 101.0;
        for loss in [0.0, 0.1, 1.0, 5.0, 20.0, 60.0, 99.0] {
            let s = network_score(loss, 0.0001, 0.00001);
            assert!((0.0..=100.0).contains(&s));
            assert!(s < last);
            last = s;
        }
        assert_eq!(network_score(f64::NAN, -1.0, f64::INFINITY), 100.0);
        assert_eq!(
            network_score(0.0, 100.0, 0.0),
            0.0,
            "absurd delay floors at 0"
        );
    }
}
