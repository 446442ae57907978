//! Per-series detector settings and the set of detectors of one node: the single path both
//! [`crate::fleet::Fleet::ingest`] and the replay tool feed values through.

use std::collections::BTreeMap;

use super::robust::{DetectorSettings, Observation, RobustDetector, State};
use crate::fleet::ANOMALY_THRESHOLD;

/// Node series watched for anomalies, with the absolute noise floor of σ in the series unit
/// (a change of about ten floors from a flat series is the smallest that can alarm). The
/// floors are resolutions, not "normal" ranges, so near-idle machines keep their anomalies:
/// loss 0.1 %, RTT p99 50 µs, jitter 20 µs, score 0.5 points, CPU 0.5 %, memory 0.25 %,
/// disk 0.25 %, RDMA errors 0.1/min, RoCE pause time 0.1 %, RoCE discards 0.1/min,
/// congestion and throughput rates none (relative only).
pub const SERIES: [(&str, f64); 15] = [
    ("ping_loss_percent", 0.1),
    ("ping_rtt_p99_seconds", 5e-5),
    ("ping_jitter_seconds", 2e-5),
    ("network_score", 0.5),
    ("cpu_usage_percent", 0.5),
    ("memory_used_percent", 0.25),
    ("disk_used_percent", 0.25),
    ("rdma_errors_per_minute", 0.1),
    ("rdma_pause_percent", 0.1),
    ("rdma_discards_per_minute", 0.1),
    ("rdma_cnp_per_second", 0.0),
    ("rdma_ecn_marked_per_second", 0.0),
    ("rdma_out_of_buffer_per_second", 0.0),
    ("rdma_bytes_per_second", 0.0),
    ("network_bytes_per_second", 0.0),
];

/// Short names accepted by `analytics replay --series`, with the series they stand for.
pub const ALIASES: [(&str, &str); 6] = [
    ("loss", "ping_loss_percent"),
    ("rtt", "ping_rtt_p99_seconds"),
    ("jitter", "ping_jitter_seconds"),
    ("cpu", "cpu_usage_percent"),
    ("memory", "memory_used_percent"),
    ("disk", "disk_used_percent"),
];

/// The generic series of the replay tool: default settings, no absolute floor.
pub const GENERIC: &str = "generic";

/// Resolves a `--series` argument (alias, full name or `generic`) to a series name.
pub fn resolve(name: &str) -> Option<&'static str> {
    if name == GENERIC {
        return Some(GENERIC);
    }
    ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, s)| *s)
        .or_else(|| SERIES.iter().find(|(s, _)| *s == name).map(|(s, _)| *s))
}

/// Detector settings of series `name` (defaults plus its absolute floor; unknown names and
/// [`GENERIC`] get none).
pub fn settings(name: &str) -> DetectorSettings {
    let abs_floor = SERIES
        .iter()
        .find(|(s, _)| *s == name)
        .map_or(0.0, |(_, f)| *f);
    DetectorSettings {
        abs_floor,
        ..DetectorSettings::default()
    }
}

/// The univariate detectors of one node, by series name, created on a series' first value.
#[derive(Clone, Debug, Default)]
pub struct SeriesDetectors {
    detectors: BTreeMap<String, RobustDetector>,
}

impl SeriesDetectors {
    /// Feeds `value` of series `name` at `t` (seconds since the epoch). Scores use
    /// [`ANOMALY_THRESHOLD`] as the alarm level. `None` as [`RobustDetector::observe`].
    pub fn observe(&mut self, name: &str, t: f64, value: f64) -> Option<Observation> {
        if !self.detectors.contains_key(name) {
            self.detectors
                .insert(name.to_string(), RobustDetector::new(settings(name)));
        }
        self.detectors
            .get_mut(name)
            .and_then(|d| d.observe(t, value, ANOMALY_THRESHOLD))
    }

    /// Baseline level of series `name`, once warmed up.
    pub fn level(&self, name: &str) -> Option<f64> {
        self.detectors
            .get(name)
            .filter(|d| d.warmed_up())
            .map(RobustDetector::level)
    }

    /// Saved state of every series.
    pub fn snapshot(&self) -> BTreeMap<String, State> {
        self.detectors
            .iter()
            .map(|(k, d)| (k.clone(), d.state().clone()))
            .collect()
    }

    /// Detectors continuing from `snapshot` (unknown series names are kept with defaults).
    pub fn restore(snapshot: BTreeMap<String, State>) -> Self {
        Self {
            detectors: snapshot
                .into_iter()
                .map(|(k, s)| {
                    let d = RobustDetector::restore(settings(&k), s);
                    (k, d)
                })
                .collect(),
        }
    }
}
