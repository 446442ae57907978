//! A node's anomaly state: each report's series through their detectors (and the node's
//! feature vector through the multivariate one), flagging and the episode log, and the
//! detector baselines saved across restarts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fabricwatch_proto::ObjectRef;
use serde::Serialize;

use super::{state::NodeState, Fleet, ANOMALY_THRESHOLD, HISTORY_SERIES, SERIES};
use crate::{
    anomaly::{
        log::{AnomalyLog, AnomalyRecord},
        series::SeriesDetectors,
        snapshot::Baselines,
    },
    derive::NodeSample,
    window::Window,
};

/// Anomaly state of a node after its latest report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyState {
    /// Largest detector score, in σ-equivalents ([`ANOMALY_THRESHOLD`] = alarm).
    pub score: f64,
    /// Score per series (EWMA) and `multivariate` (Mahalanobis), for those that scored.
    pub scores: BTreeMap<String, f64>,
    /// Series at or above the threshold.
    pub flagged: Vec<String>,
    /// Since when some series is flagged.
    pub since: Option<DateTime<Utc>>,
}

/// Seconds since the epoch (the detectors' time axis).
fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// The value of the [`SERIES`] or [`HISTORY_SERIES`] entry `name` in a sample.
fn series_value(s: &NodeSample, name: &str) -> Option<f64> {
    match name {
        "ping_loss_percent" => s.loss_percent,
        "ping_rtt_p50_seconds" => s.rtt_p50_seconds,
        "rdma_receive_bytes_per_second" => s.rdma_receive_bytes_per_second,
        "rdma_transmit_bytes_per_second" => s.rdma_transmit_bytes_per_second,
        "ping_rtt_p99_seconds" => s.rtt_p99_seconds,
        "ping_jitter_seconds" => s.jitter_seconds,
        "network_score" => s.network_score,
        "cpu_usage_percent" => s.cpu_usage_percent,
        "memory_used_percent" => s.memory_used_percent,
        "rdma_errors_per_minute" => s.rdma_errors_per_minute,
        "rdma_pause_percent" => s
            .ports
            .iter()
            .filter_map(|p| p.congestion.pause_percent)
            .reduce(f64::max),
        "rdma_discards_per_minute" => s
            .ports
            .iter()
            .filter_map(|p| p.congestion.discards_per_minute)
            .reduce(|a, b| a + b),
        _ => None,
    }
}

impl NodeState {
    /// Pushes the sample's [`SERIES`] and [`HISTORY_SERIES`] into their windows and each
    /// port's link flaps into its window (`window` samples), and scores the [`SERIES`], the
    /// `extra` ones and the feature vector; returns the scores of the detectors past their
    /// warm-up.
    pub(super) fn observe(
        &mut self,
        sample: &NodeSample,
        extra: Vec<(&'static str, f64)>,
        at: DateTime<Utc>,
        window: usize,
    ) -> BTreeMap<String, f64> {
        let mut features = Vec::with_capacity(SERIES.len());
        let mut scores = BTreeMap::new();
        for (name, _) in SERIES {
            let v = series_value(sample, name);
            if let (Some(v), Some(w)) = (v, self.windows.get_mut(name)) {
                w.push(at, v);
            }
            if let Some(o) = v.and_then(|v| self.detectors.observe(name, epoch_seconds(at), v)) {
                if !o.warming_up {
                    scores.insert(name.to_string(), o.score);
                }
            }
            // Absent sections are a constant 0 for the multivariate detector: no spurious
            // correlation, and the ridge keeps the covariance invertible.
            features.push(v.unwrap_or(0.0));
        }
        for name in HISTORY_SERIES {
            if let (Some(v), Some(w)) = (series_value(sample, name), self.windows.get_mut(name)) {
                w.push(at, v);
            }
        }
        for (name, v) in extra {
            if let Some(o) = self.detectors.observe(name, epoch_seconds(at), v) {
                if !o.warming_up {
                    scores.insert(name.to_string(), o.score);
                }
            }
        }
        if let Some(s) = self.multivariate.observe(&features) {
            scores.insert("multivariate".into(), s * ANOMALY_THRESHOLD);
        }
        for p in &sample.ports {
            self.port_flaps
                .entry((p.device.clone(), p.port))
                .or_insert_with(|| Window::new(window))
                .push(at, p.link_flaps_total as f64);
        }
        scores
    }

    /// Flags the series of `scores` at or above [`ANOMALY_THRESHOLD`], records episodes of
    /// node `name` in `log`, and returns the new state when nothing was flagged before.
    pub(super) fn flag(
        &mut self,
        name: &str,
        scores: BTreeMap<String, f64>,
        at: DateTime<Utc>,
        log: &mut AnomalyLog,
    ) -> Option<AnomalyState> {
        let flagged: Vec<String> = scores
            .iter()
            .filter(|(_, s)| **s >= ANOMALY_THRESHOLD)
            .map(|(k, _)| k.clone())
            .collect();
        let was_flagged = !self.anomaly.flagged.is_empty();
        let with_scores: Vec<(String, f64)> = flagged
            .iter()
            .map(|k| (k.clone(), scores.get(k).copied().unwrap_or_default()))
            .collect();
        log.update(name, &self.anomaly.flagged, &with_scores, at);
        let since = if flagged.is_empty() {
            None
        } else {
            self.anomaly.since.or(Some(at))
        };
        self.anomaly = AnomalyState {
            score: scores.values().copied().fold(0.0, f64::max),
            scores,
            flagged,
            since,
        };
        (!was_flagged && !self.anomaly.flagged.is_empty()).then(|| self.anomaly.clone())
    }
}

impl Fleet {
    /// Up to `limit` anomaly episodes, newest first, of `target` or of every target.
    pub fn anomalies(
        &self,
        target: Option<&ObjectRef>,
        limit: usize,
    ) -> Vec<(ObjectRef, AnomalyRecord)> {
        let mut out: Vec<(ObjectRef, AnomalyRecord)> = self
            .targets
            .iter()
            .filter(|(k, _)| target.is_none_or(|t| t == *k))
            .flat_map(|(k, t)| {
                t.anomalies
                    .latest(limit)
                    .map(move |r| (k.clone(), r.clone()))
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.1.since));
        out.truncate(limit);
        out
    }

    /// Detector baselines of `target`'s nodes (for [`crate::anomaly::snapshot::encode`]),
    /// including restored ones whose node has not reported yet.
    pub fn anomaly_baselines(&self, target: &ObjectRef) -> Baselines {
        let Some(t) = self.targets.get(target) else {
            return Baselines::new();
        };
        t.restored
            .iter()
            .map(|(n, d)| (n.clone(), d.snapshot()))
            .chain(
                t.nodes
                    .iter()
                    .map(|(n, s)| (n.clone(), s.detectors.snapshot())),
            )
            .collect()
    }

    /// Restores baselines saved before a restart; a node that already reports keeps its own.
    pub fn restore_anomaly_baselines(&mut self, target: ObjectRef, baselines: Baselines) {
        let t = self.targets.entry(target).or_default();
        for (node, series) in baselines {
            if !t.nodes.contains_key(&node) {
                t.restored.insert(node, SeriesDetectors::restore(series));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{report, target};
    use super::*;
    use crate::{derive::tests::t, fleet::Settings};
    use fabricwatch_crds::alert_rule::{Metric, Scope};

    #[test]
    fn anomaly_is_flagged_once_on_a_step() {
        let mut f = Fleet::new(Settings {
            warmup: 5,
            ..Settings::default()
        });
        // Past the univariate detectors' warm-up (30 points and 10 minutes).
        for i in 0..70 {
            let out = f.ingest(
                &report("a", i + 1, 10 * i as i64, 0.0),
                None,
                t(10 * i as i64),
            );
            assert!(out.new_anomaly.is_none(), "steady state is not anomalous");
        }
        let out = f.ingest(&report("a", 71, 700, 40.0), None, t(700));
        let a = out.new_anomaly.expect("step is an anomaly");
        assert!(
            a.flagged.contains(&"ping_loss_percent".to_string()),
            "{a:?}"
        );
        assert!(a.score >= ANOMALY_THRESHOLD);
        let again = f.ingest(&report("a", 72, 710, 40.0), None, t(710));
        assert!(
            again.new_anomaly.is_none(),
            "a continuing anomaly is not new"
        );
        let v = f.series_values(&target(), Metric::AnomalyScore, Scope::PerNode, t(710));
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn restored_baselines_survive_a_restart_without_flood_or_blind_period() {
        use crate::anomaly::{robust::DetectorSettings, snapshot};
        let mut f = Fleet::new(Settings::default());
        for i in 0..100 {
            f.ingest(
                &report("a", i + 1, 10 * i as i64, 0.0),
                None,
                t(10 * i as i64),
            );
        }
        let chunks = snapshot::encode(&f.anomaly_baselines(&target()), 1 << 20);
        let d = DetectorSettings::default();
        let mut g = Fleet::new(Settings::default());
        for c in &chunks {
            let b = snapshot::decode(c, (d.warmup_points, d.warmup_seconds)).expect("decode");
            g.restore_anomaly_baselines(target(), b);
        }
        // Back two minutes later: the first report is scored (no warm-up) and not flagged …
        let out = g.ingest(&report("a", 101, 1110, 0.0), None, t(1110));
        assert!(out.new_anomaly.is_none());
        let view = g.nodes(&target(), t(1110)).expect("target");
        let a = &view[0].anomaly;
        assert!(a.scores.contains_key("ping_loss_percent"), "{a:?}");
        // … and the first anomaly after the restart is found at once.
        let out = g.ingest(&report("a", 102, 1120, 40.0), None, t(1120));
        let a = out.new_anomaly.expect("anomaly right after the restart");
        assert!(
            a.flagged.contains(&"ping_loss_percent".to_string()),
            "{a:?}"
        );
    }
}
