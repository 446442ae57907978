//! What the fleet keeps per target and per node between reports, and the readings of it
//! every view shares: a node's findings (report plus Node conditions), its health, and
//! the fleet checks over a target's reporting nodes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{AnomalyState, Fleet, SuspectView, TargetConfig};
use crate::{
    anomaly::{log::AnomalyLog, series::SeriesDetectors, Mahalanobis},
    consistency,
    derive::{CounterSnapshot, NodeSample, PortKey},
    health::{is_stale, node_health, Finding, Health},
    loss::PathHistory,
    window::Window,
};

/// One node of a target: identity, its latest sample and counters, rolling windows,
/// detectors, anomaly state, findings and probe history.
#[derive(Clone, Debug)]
pub(super) struct NodeState {
    pub(super) address: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) pod: Option<String>,
    /// Collection time of the newest report (agent clock).
    pub(super) last_report: DateTime<Utc>,
    /// When the latest report arrived (analytics' clock: staleness goes by this).
    pub(super) received_at: DateTime<Utc>,
    pub(super) interval_seconds: f64,
    pub(super) seq: u64,
    pub(super) restarts: u64,
    pub(super) sample: NodeSample,
    pub(super) counters: CounterSnapshot,
    pub(super) windows: BTreeMap<&'static str, Window>,
    pub(super) port_flaps: BTreeMap<PortKey, Window>,
    pub(super) detectors: SeriesDetectors,
    pub(super) multivariate: Mahalanobis,
    pub(super) anomaly: AnomalyState,
    pub(super) findings: Vec<Finding>,
    pub(super) problem_since: BTreeMap<String, DateTime<Utc>>,
    /// Probe counts of each mesh or external peer over its recent reports.
    pub(super) paths: BTreeMap<String, PathHistory>,
}

impl NodeState {
    /// Whether the node has not reported within three of its intervals at `now`.
    pub(super) fn is_stale(&self, now: DateTime<Utc>) -> bool {
        is_stale(Some(self.received_at), self.interval_seconds, now)
    }
}

/// One MonitorTarget: its settings, nodes, restored baselines, anomaly log and suspects.
#[derive(Clone, Debug, Default)]
pub(super) struct TargetState {
    pub(super) config: TargetConfig,
    pub(super) nodes: BTreeMap<String, NodeState>,
    pub(super) last_report: Option<DateTime<Utc>>,
    /// Detector baselines saved before a restart, by node, taken when the node reports.
    pub(super) restored: BTreeMap<String, SeriesDetectors>,
    /// Anomaly episodes of the target's nodes.
    pub(super) anomalies: AnomalyLog,
    /// Suspects of the latest localization, ranked, with the time each was first seen.
    pub(super) suspects: Vec<SuspectView>,
}

impl TargetState {
    /// The nodes that reported within three intervals at `now`.
    pub(super) fn reporting(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&String, &NodeState)> {
        self.nodes.iter().filter(move |(_, n)| !n.is_stale(now))
    }

    /// The suspect that is node `name`, if any.
    pub(super) fn node_suspect(&self, name: &str) -> Option<&SuspectView> {
        self.suspects
            .iter()
            .find(|s| s.suspect.node.as_deref() == Some(name))
    }

    /// [`consistency::check`] over the target's reporting nodes.
    pub(super) fn inconsistencies(&self, now: DateTime<Utc>) -> Vec<consistency::Inconsistency> {
        consistency::check(
            self.reporting(now)
                .map(|(name, n)| (name.as_str(), &n.sample)),
        )
    }
}

impl Fleet {
    /// The node's findings from its latest report plus its Node conditions.
    pub(super) fn findings_of(&self, name: &str, n: &NodeState) -> Vec<Finding> {
        let mut f = n.findings.clone();
        if let Some(c) = self.conditions.get(name) {
            f.extend(c.findings());
        }
        f
    }

    /// The node's own health at `now`.
    pub(super) fn health_of(&self, name: &str, n: &NodeState, now: DateTime<Utc>) -> Health {
        // Staleness goes by receive time: agent clocks may be skewed.
        node_health(
            &self.findings_of(name, n),
            Some(n.received_at),
            n.interval_seconds,
            now,
        )
    }
}
