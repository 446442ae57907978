//! Robust streaming change detector for one series: a recursive M-estimate of level and
//! scale, a two-sided CUSUM over the robust z-score, episodes with a refractory period.
//!
//! Why this shape (measured on NAB, see `operator/analytics/README.md`): fleet telemetry is heavy
//! tailed, often periodic, sometimes idle at zero; a single-point z-score against a short
//! EWMA flags every burst. Here
//! - the baseline is robust: a Huber-clipped recursive location estimate and the clipped mean
//!   absolute deviation as scale (R. D. Martin and C. J. Masreliez, "Robust estimation via
//!   stochastic approximation", IEEE Trans. Inf. Theory 21(3), 1975; P. J. Huber, "Robust
//!   estimation of a location parameter", Ann. Math. Stat. 35(1), 1964), so outliers barely
//!   move it;
//! - memory, warm-up, gap and refractory lengths are times (with a minimum in points), so a
//!   10 s agent and a 5 min recording behave alike;
//! - the noise floor is relative to the level plus an optional absolute floor per series;
//! - evidence accumulates: the two-sided CUSUM of E. S. Page ("Continuous inspection schemes",
//!   Biometrika 41(1/2), 1954) over the clipped z-score `S⁺ ← max(0, S⁺ + z − k)`,
//!   `S⁻ ← max(0, S⁻ − z − k)`, alarming at `max(S⁺, S⁻) ≥ h`: one large spike or a few
//!   moderate points in a row, not single noisy points;
//! - one change gives one onset: an episode lasts while points stay beyond `hold_z`; a change
//!   that persists for `hold_points` is a new level (the baseline is re-based on the episode's
//!   median), and no new onset is raised during the refractory period after an episode.
//!
//! Cost: O(1) time and a few dozen bytes per series per point (the warm-up buffer is freed
//! after warm-up).

use serde::{Deserialize, Serialize};

/// Gaussian consistency factor of the mean absolute deviation: `σ = √(π/2)·E|X − μ|`.
const MEAN_ABS_DEV_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Points kept for the warm-up estimate (median / MAD); bounded memory.
const RATIO: f64 = 1.1;

const WARMUP_BUFFER: usize = 64;

/// Settings of [`RobustDetector`]. One set of defaults ([`DetectorSettings::default`]) for all
/// series; a series may add an absolute floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorSettings {
    /// Absolute noise floor of σ, series unit (0 = none).
    pub abs_floor: f64,
    /// Relative noise floor of σ, fraction of `|level|`.
    pub rel_floor: f64,
    /// Warm-up: at least this many points …
    pub warmup_points: u32,
    /// … and at least this long, seconds.
    pub warmup_seconds: f64,
    /// Baseline memory, seconds (the recursive estimates' time constant) …
    pub memory_seconds: f64,
    /// … but never fewer than this many points.
    pub memory_points: f64,
    /// Scale memory, seconds: σ is estimated over a longer horizon than the level, so a
    /// series' regular swings (a daily cycle, bursts) set its noise scale …
    pub scale_memory_seconds: f64,
    /// … and never over fewer than this many points.
    pub scale_memory_points: f64,
    /// CUSUM reference value `k`, in σ.
    pub drift: f64,
    /// CUSUM decision interval `h`, in σ.
    pub limit: f64,
    /// z-scores are clipped to ±this before entering the CUSUM (one point can add at most
    /// `z_clip − k`).
    pub z_clip: f64,
    /// Huber clipping constant of the baseline update, in σ.
    pub huber: f64,
    /// An episode goes on while points are at least this many σ away, on the same side.
    pub hold_z: f64,
    /// An episode that lasts this many points is a level change: the baseline is re-based.
    pub hold_points: u32,
    /// No new onset for this long after an episode ends, seconds …
    pub refractory_seconds: f64,
    /// … and at least this many points.
    pub refractory_points: f64,
    /// Half-life of the record |z| an onset must beat, seconds: a series' own recent
    /// extremes (daily bursts, a recurring job) are not anomalies; one beyond them is.
    pub record_half_life_seconds: f64,
    /// An onset's largest |z| must exceed the record by this factor.
    pub record_ratio: f64,
    /// A gap longer than this many typical intervals resets the evidence (not the baseline).
    pub gap_intervals: f64,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        Self {
            abs_floor: 0.0,
            rel_floor: 0.01,
            warmup_points: 30,
            warmup_seconds: 600.0,
            memory_seconds: 3600.0,
            memory_points: 60.0,
            scale_memory_seconds: 86_400.0,
            scale_memory_points: 300.0,
            drift: 2.0,
            limit: 8.0,
            z_clip: 30.0,
            huber: 3.0,
            hold_z: 3.0,
            hold_points: 1,
            refractory_seconds: 1800.0,
            refractory_points: 10.0,
            record_half_life_seconds: 604_800.0,
            record_ratio: RATIO,
            gap_intervals: 5.0,
        }
    }
}

/// What one point did to a [`RobustDetector`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Evidence in σ-equivalents scaled so that the alarm threshold is `threshold` (see
    /// [`RobustDetector::observe`]); 0 during warm-up.
    pub score: f64,
    /// The point is part of an anomaly episode (what status counts as an anomaly).
    pub flagged: bool,
    /// The point starts an episode.
    pub onset: bool,
    /// Still warming up (score 0, never flagged).
    pub warming_up: bool,
}

/// An anomaly episode in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Episode {
    since: f64,
    up: bool,
    values: Vec<f64>,
}

/// Streaming robust change detector for one series (see the module doc).
#[derive(Clone, Debug)]
pub struct RobustDetector {
    cfg: DetectorSettings,
    state: State,
}

/// Serializable state of a [`RobustDetector`] (what survives a restart).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Points absorbed.
    pub n: u64,
    /// Time of the first point, seconds since the epoch.
    pub first_t: f64,
    /// Time of the last point.
    pub last_t: Option<f64>,
    /// Typical interval, seconds (exponentially weighted).
    pub interval: f64,
    /// Robust level.
    pub level: f64,
    /// Clipped mean absolute deviation.
    pub dev: f64,
    /// CUSUM statistics.
    pub up: f64,
    /// Lower CUSUM.
    pub down: f64,
    /// No onset before this time.
    pub quiet_until: f64,
    /// Largest |x − level| of the recent past (series unit), decaying with
    /// [`DetectorSettings::record_half_life_seconds`].
    #[serde(default)]
    pub record: f64,
    /// Largest |x − level| since the evidence was last zero.
    #[serde(default)]
    pub run: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warm: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    episode: Option<Episode>,
}

impl State {
    /// Whether the baseline was established (warm-up over): only such a state is worth saving.
    pub fn established(&self) -> bool {
        self.n > 0 && self.warm.is_empty()
    }

    /// A warmed-up state with the given baseline (what [`super::snapshot`] restores): level
    /// and mean absolute deviation in the series unit, typical interval in seconds, the record
    /// deviation, the last point's time; `warmup` (points, seconds) as the detector's, so no
    /// warm-up is run again.
    pub fn warmed(
        level: f64,
        dev: f64,
        interval: f64,
        record: f64,
        last_t: f64,
        warmup: (u32, f64),
    ) -> Self {
        Self {
            n: u64::from(warmup.0) + 1,
            first_t: last_t - warmup.1 - 1.0,
            last_t: Some(last_t),
            interval,
            level,
            dev,
            record,
            ..Self::default()
        }
    }
}

impl RobustDetector {
    /// A detector with `settings` (non-finite or negative values fall back to the defaults).
    pub fn new(settings: DetectorSettings) -> Self {
        Self {
            cfg: sanitize(settings),
            state: State::default(),
        }
    }

    /// A detector continuing from a saved `state`.
    pub fn restore(settings: DetectorSettings, state: State) -> Self {
        let mut d = Self::new(settings);
        let ok = [state.first_t, state.interval, state.level, state.dev]
            .iter()
            .all(|v| v.is_finite())
            && state.last_t.is_none_or(f64::is_finite);
        if ok {
            d.state = state;
        }
        d
    }

    /// The state to save; small (no warm-up buffer once warmed up).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether the baseline is established.
    pub fn warmed_up(&self) -> bool {
        self.state.warm.is_empty() && self.state.n > 0 && !self.warming(self.state.last_t)
    }

    /// Robust level (baseline).
    pub fn level(&self) -> f64 {
        self.state.level
    }

    fn warming(&self, t: Option<f64>) -> bool {
        let s = &self.state;
        s.n < u64::from(self.cfg.warmup_points)
            || t.is_some_and(|t| t - s.first_t < self.cfg.warmup_seconds)
    }

    /// Scores the point `(t, x)` (`t` seconds since the epoch) and absorbs it. `threshold`
    /// is the score that means "alarm" (the CUSUM's `h` maps to it). `None` for a non-finite
    /// value or time, or a time not after the previous point's (nothing is absorbed then).
    pub fn observe(&mut self, t: f64, x: f64, threshold: f64) -> Option<Observation> {
        if !x.is_finite() || !t.is_finite() {
            return None;
        }
        let cfg = self.cfg;
        let s = &mut self.state;
        let mut gap = false;
        if let Some(last) = s.last_t {
            if t <= last {
                return None;
            }
            let dt = t - last;
            if s.interval > 0.0 && dt > cfg.gap_intervals * s.interval {
                gap = true;
            } else if s.interval > 0.0 {
                s.interval += 0.05 * (dt - s.interval);
            } else {
                s.interval = dt;
            }
        } else {
            s.first_t = t;
        }
        let prev_t = s.last_t;
        s.last_t = Some(t);
        let warming = s.n < u64::from(cfg.warmup_points) || t - s.first_t < cfg.warmup_seconds;
        if warming || s.n == 0 {
            s.n += 1;
            if s.warm.len() < WARMUP_BUFFER {
                s.warm.push(x);
            } else {
                let i = (s.n as usize) % WARMUP_BUFFER;
                s.warm[i] = x;
            }
            return Some(Observation {
                score: 0.0,
                flagged: false,
                onset: false,
                warming_up: true,
            });
        }
        if !s.warm.is_empty() {
            let (m, mad) = median_mad(&mut s.warm);
            s.level = m;
            // MAD·1.4826 estimates σ; dev is kept as a mean absolute deviation.
            s.dev = 1.4826 * mad / MEAN_ABS_DEV_TO_SIGMA;
            s.warm = Vec::new();
        }
        s.n += 1;
        if gap {
            s.up = 0.0;
            s.down = 0.0;
            s.episode = None;
        }
        let sigma = (MEAN_ABS_DEV_TO_SIGMA * s.dev)
            .max(cfg.abs_floor)
            .max(cfg.rel_floor * s.level.abs())
            .max(1e-9 * (1.0 + s.level.abs()));
        let r = x - s.level;
        let z = r / sigma;
        let zc = z.clamp(-cfg.z_clip, cfg.z_clip);
        let cap = 2.0 * cfg.limit;
        s.up = (s.up + zc - cfg.drift).clamp(0.0, cap);
        s.down = (s.down - zc - cfg.drift).clamp(0.0, cap);
        let evidence = s.up.max(s.down);
        let record = s.record;
        if let Some(last) = prev_t {
            s.record *= (-(t - last) * std::f64::consts::LN_2
                / cfg.record_half_life_seconds.max(1e-9))
            .exp();
        }
        // A run's deviations join the record when the run ends (with or without an onset), so
        // the run is compared with the past, not with itself.
        if evidence > 0.0 {
            s.run = s.run.max(r.abs());
        } else {
            s.record = s.record.max(s.run).max(r.abs());
            s.run = 0.0;
        }
        let mut score = threshold * evidence / cfg.limit;
        let refractory = cfg
            .refractory_seconds
            .max(cfg.refractory_points * s.interval);
        let mut flagged = false;
        let mut onset = false;
        let mut absorb = true;
        if let Some(ep) = s.episode.as_mut() {
            let same_side = if ep.up {
                z >= cfg.hold_z
            } else {
                -z >= cfg.hold_z
            };
            if same_side && (ep.values.len() as u32) < cfg.hold_points {
                ep.values.push(x);
                flagged = true;
                absorb = false;
                score = score.max(threshold);
            } else {
                if same_side {
                    // A persistent change: the new level is the baseline from now on.
                    ep.values.push(x);
                    let (m, _) = median_mad(&mut ep.values);
                    s.level = m;
                    absorb = false;
                }
                s.episode = None;
                s.up = 0.0;
                s.down = 0.0;
                score = 0.0;
                s.quiet_until = t + refractory;
            }
        } else if evidence >= cfg.limit && t >= s.quiet_until && s.run > cfg.record_ratio * record {
            s.episode = Some(Episode {
                since: t,
                up: s.up >= s.down,
                values: vec![x],
            });
            flagged = true;
            onset = true;
            absorb = false;
        } else if evidence >= cfg.limit {
            // Evidence during the refractory period raises no onset; it is not held either,
            // so a change that persists past the period is flagged then.
            score = score.min(threshold * 0.999);
        }
        if absorb {
            let dt = s.interval.max(1e-9);
            let alpha = 1.0 / cfg.memory_points.max(cfg.memory_seconds / dt);
            let beta = 1.0 / cfg.scale_memory_points.max(cfg.scale_memory_seconds / dt);
            let c = cfg.huber * sigma;
            s.level += alpha * r.clamp(-c, c);
            s.dev += beta * (r.abs().min(c) - s.dev);
        }
        Some(Observation {
            score,
            flagged,
            onset,
            warming_up: false,
        })
    }
}

/// Median and median absolute deviation of `v` (reorders `v`); `(0, 0)` when empty.
fn median_mad(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = median(v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    (m, median(&mut dev))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn sanitize(s: DetectorSettings) -> DetectorSettings {
    let d = DetectorSettings::default();
    let pos = |v: f64, def: f64| if v.is_finite() && v >= 0.0 { v } else { def };
    DetectorSettings {
        abs_floor: pos(s.abs_floor, d.abs_floor),
        rel_floor: pos(s.rel_floor, d.rel_floor),
        warmup_points: s.warmup_points.max(2),
        warmup_seconds: pos(s.warmup_seconds, d.warmup_seconds),
        memory_seconds: pos(s.memory_seconds, d.memory_seconds),
        memory_points: pos(s.memory_points, d.memory_points).max(1.0),
        scale_memory_seconds: pos(s.scale_memory_seconds, d.scale_memory_seconds),
        scale_memory_points: pos(s.scale_memory_points, d.scale_memory_points).max(1.0),
        drift: pos(s.drift, d.drift),
        limit: if s.limit.is_finite() && s.limit > 0.0 {
            s.limit
        } else {
            d.limit
        },
        z_clip: pos(s.z_clip, d.z_clip),
        huber: if s.huber.is_finite() && s.huber > 0.0 {
            s.huber
        } else {
            d.huber
        },
        hold_z: pos(s.hold_z, d.hold_z),
        hold_points: s.hold_points.max(1),
        refractory_seconds: pos(s.refractory_seconds, d.refractory_seconds),
        refractory_points: pos(s.refractory_points, d.refractory_points),
        record_ratio: pos(s.record_ratio, d.record_ratio),
        record_half_life_seconds: pos(s.record_half_life_seconds, d.record_half_life_seconds),
        gap_intervals: if s.gap_intervals.is_finite() && s.gap_intervals > 1.0 {
            s.gap_intervals
        } else {
            d.gap_intervals
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: f64 = 3.0;

    /// Deterministic noise in [-1, 1] (a fixed LCG; tests must not depend on a seed source).
    fn noise(i: u64) -> f64 {
        let x = i
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    }

    /// Feeds `f(i)` at `t0 + i·dt` for `i in range`; returns the indices flagged as onsets.
    fn feed(
        d: &mut RobustDetector,
        range: std::ops::Range<u64>,
        dt: f64,
        f: impl Fn(u64) -> f64,
    ) -> Vec<u64> {
        range
            .filter(|&i| {
                d.observe(1.0e9 + i as f64 * dt, f(i), T)
                    .is_some_and(|o| o.onset)
            })
            .collect()
    }

    #[test]
    fn warm_up_is_counted_in_points_and_time() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        // 30 points at 1 s are not 10 minutes: still warming up at point 100.
        for i in 0..100 {
            let o = d.observe(i as f64, 1.0, T).expect("finite");
            assert!(o.warming_up && !o.flagged && o.score == 0.0);
        }
        let mut d = RobustDetector::new(DetectorSettings::default());
        // 10 minutes at 60 s are not 30 points.
        for i in 0..30 {
            assert!(
                d.observe(i as f64 * 60.0, 1.0, T)
                    .expect("finite")
                    .warming_up
            );
        }
        assert!(!d.observe(30.0 * 60.0, 1.0, T).expect("finite").warming_up);
        assert!(d.warmed_up());
    }

    #[test]
    fn constant_series_never_alarms_and_a_change_does() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        let quiet = feed(&mut d, 0..2000, 10.0, |_| 42.0);
        assert!(quiet.is_empty(), "{quiet:?}");
        // The relative floor (1 % of 42) sets σ: +1 is 2.4σ, never an alarm …
        assert!(feed(&mut d, 2000..2010, 10.0, |_| 43.0).is_empty());
        // … +10 is 24σ: one onset.
        let mut d = RobustDetector::new(DetectorSettings::default());
        feed(&mut d, 0..2000, 10.0, |_| 42.0);
        assert_eq!(feed(&mut d, 2000..2100, 10.0, |_| 52.0), vec![2000]);
    }

    #[test]
    fn zero_series_with_no_floor_alarms_on_any_change_and_scores_stay_finite() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        assert!(feed(&mut d, 0..500, 10.0, |_| 0.0).is_empty());
        let o = d.observe(1.0e9 + 5000.0, 1.0, T).expect("finite");
        assert!(o.score.is_finite() && o.onset, "{o:?}");
        // An absolute floor makes the same change too small to matter.
        let mut d = RobustDetector::new(DetectorSettings {
            abs_floor: 0.5,
            ..DetectorSettings::default()
        });
        assert!(feed(&mut d, 0..500, 10.0, |_| 0.0).is_empty());
        assert!(feed(&mut d, 500..501, 10.0, |_| 1.0).is_empty());
    }

    #[test]
    fn nan_inf_and_time_going_backwards_are_ignored() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        feed(&mut d, 0..200, 10.0, |i| 10.0 + noise(i));
        let before = d.state().clone();
        assert_eq!(d.observe(1.0e9 + 2000.0, f64::NAN, T), None);
        assert_eq!(d.observe(1.0e9 + 2000.0, f64::INFINITY, T), None);
        assert_eq!(d.observe(f64::NAN, 1.0, T), None);
        assert_eq!(d.observe(1.0e9, 10.0, T), None, "not after the last point");
        assert_eq!(d.state(), &before, "nothing absorbed");
        assert!(feed(&mut d, 200..400, 10.0, |i| 10.0 + noise(i)).is_empty());
    }

    #[test]
    fn a_spike_gives_one_onset_and_does_not_move_the_baseline() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        let f = |i: u64| 100.0 + 2.0 * noise(i) + if i == 500 { 60.0 } else { 0.0 };
        assert_eq!(feed(&mut d, 0..1000, 10.0, f), vec![500]);
        assert!((d.level() - 100.0).abs() < 1.5, "{}", d.level());
    }

    #[test]
    fn a_step_gives_one_onset_and_becomes_the_new_level() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        let f = |i: u64| 100.0 + 2.0 * noise(i) + if i >= 500 { 30.0 } else { 0.0 };
        let onsets = feed(&mut d, 0..1500, 10.0, f);
        assert_eq!(onsets.len(), 1, "{onsets:?}");
        assert!((500..503).contains(&onsets[0]), "{onsets:?}");
        assert!((d.level() - 130.0).abs() < 2.0, "re-based: {}", d.level());
    }

    #[test]
    fn a_moderate_shift_is_found_by_accumulated_evidence() {
        // +4σ is no single-point outlier (the noise reaches 3σ) but a few in a row are.
        let mut d = RobustDetector::new(DetectorSettings::default());
        let sigma = 1.0;
        let f = |i: u64| 100.0 + sigma * 1.7 * noise(i) + if i >= 800 { 4.0 * sigma } else { 0.0 };
        let onsets = feed(&mut d, 0..1000, 10.0, f);
        assert_eq!(onsets.len(), 1, "{onsets:?}");
        assert!((801..810).contains(&onsets[0]), "{onsets:?}");
    }

    #[test]
    fn a_fast_ramp_is_flagged_early_and_a_slow_drift_is_absorbed() {
        // 50 units over 10 minutes: faster than the baseline's hour-long memory.
        let mut d = RobustDetector::new(DetectorSettings::default());
        // The onset comes within the ramp; the baseline is re-based there and, as the ramp
        // goes on past the re-based level, one more onset can follow the refractory period.
        let ramp = |i: u64| {
            100.0
                + noise(i)
                + if i >= 600 {
                    (i - 600).min(60) as f64
                } else {
                    0.0
                }
        };
        let onsets = feed(&mut d, 0..1000, 10.0, ramp);
        assert!((600..620).contains(&onsets[0]), "{onsets:?}");
        assert!(onsets.len() <= 2, "{onsets:?}");
        // 10 units over a day (+1 % of the level per ~2.4 h): followed, not flagged.
        let mut d = RobustDetector::new(DetectorSettings::default());
        let drift = |i: u64| 100.0 + noise(i) + i as f64 * 10.0 / 8640.0;
        assert!(feed(&mut d, 0..8640, 10.0, drift).is_empty());
        assert!((d.level() - 110.0).abs() < 1.0, "{}", d.level());
    }

    #[test]
    fn a_gap_resets_evidence_not_the_baseline() {
        let mut d = RobustDetector::new(DetectorSettings {
            drift: 0.5,
            ..DetectorSettings::default()
        });
        feed(&mut d, 0..500, 10.0, |i| 100.0 + noise(i));
        let level = d.level();
        // Evidence builds without an alarm (2σ above, below the limit for two points) …
        for i in 500..502 {
            d.observe(1.0e9 + i as f64 * 10.0, 102.5, T);
        }
        assert!(d.state().up > 0.0);
        // … then an hour passes without data: the evidence does not carry over.
        let o = d
            .observe(1.0e9 + 502.0 * 10.0 + 3600.0, 100.0, T)
            .expect("finite");
        assert!(!o.flagged);
        assert_eq!(d.state().up, 0.0);
        assert!((d.level() - level).abs() < 0.5);
    }

    #[test]
    fn a_daily_pattern_is_learnt_and_a_bigger_jump_still_found() {
        // 5-minute points; a 20 → 80 square wave by day (like a batch window), with noise.
        let day = 288;
        let pattern = |i: u64| {
            let h = (i % day) as f64 / 12.0;
            (if (8.0..18.0).contains(&h) { 80.0 } else { 20.0 }) + noise(i)
        };
        let mut d = RobustDetector::new(DetectorSettings::default());
        feed(&mut d, 0..2 * day, 300.0, pattern);
        let later = feed(&mut d, 2 * day..6 * day, 300.0, pattern);
        assert!(
            later.is_empty(),
            "a recurring change is not an anomaly: {later:?}"
        );
        let jump = |i: u64| {
            pattern(i)
                + if i % day >= 96 && i % day < 100 {
                    100.0
                } else {
                    0.0
                }
        };
        let found = feed(&mut d, 6 * day..7 * day, 300.0, jump);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn refractory_period_holds_back_a_second_onset() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        let spikes = |i: u64| 100.0 + noise(i) + if i == 500 || i == 510 { 80.0 } else { 0.0 };
        // 10 points at 10 s = 100 s, inside the 30-minute refractory period.
        assert_eq!(feed(&mut d, 0..600, 10.0, spikes), vec![500]);
    }

    #[test]
    fn restored_state_continues_without_re_warming() {
        let mut d = RobustDetector::new(DetectorSettings::default());
        feed(&mut d, 0..1000, 10.0, |i| 50.0 + noise(i));
        let saved = serde_json::to_string(d.state()).expect("serialize");
        assert!(saved.len() < 400, "compact: {} bytes: {saved}", saved.len());
        let state: State = serde_json::from_str(&saved).expect("deserialize");
        let mut r = RobustDetector::restore(DetectorSettings::default(), state);
        assert!(r.warmed_up());
        // No warm-up and no flood: the first point after the restart is scored …
        let o = r
            .observe(1.0e9 + 1000.0 * 10.0 + 60.0, 50.0, T)
            .expect("finite");
        assert!(!o.warming_up && !o.flagged);
        // … and the first anomaly after it is found at once.
        let o = r
            .observe(1.0e9 + 1000.0 * 10.0 + 70.0, 90.0, T)
            .expect("finite");
        assert!(o.onset, "{o:?}");
        // A state with a non-finite number is not trusted: start over.
        let bad = State {
            level: f64::NAN,
            ..d.state().clone()
        };
        assert!(!RobustDetector::restore(DetectorSettings::default(), bad).warmed_up());
    }
}
