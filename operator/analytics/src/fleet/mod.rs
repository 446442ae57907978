//! In-memory state of every MonitorTarget's nodes: windows, detectors, health, problems,
//! peers and the values AlertRules evaluate. Pure: time is passed in, no IO.
//!
//! Here: [`Fleet`] and its settings. Its parts: `ingest` (one report in, and the peers to
//! probe), `state` (what is kept per target and node), `anomaly` (scoring, flagging,
//! episodes, saved baselines), `suspects` (fault localization), `expiry` (forgetting
//! silent nodes), `view` (what the API, fleet view, metrics and status see) and `series`
//! (the values AlertRules evaluate).

use std::collections::BTreeMap;

use chrono::Duration;
use fabricwatch_proto::{agent_config::ThresholdsConfig, ObjectRef};

use crate::node_conditions::NodeConditions;

mod anomaly;
mod expiry;
mod ingest;
mod series;
mod state;
mod suspects;
#[cfg(test)]
mod test_support;
mod view;

pub use anomaly::AnomalyState;
pub use ingest::IngestOutcome;
pub use suspects::{SuspectChange, SuspectView};
pub use view::{NodeCounts, NodeGauges, NodeView, Problem, SeriesStats, Summary, TargetView};

use state::TargetState;

/// Anomaly scores are scaled so that a detector's alarm threshold is this value, matching the
/// `anomaly_score` metric's documented meaning ("above 3 is unusual", in σ-equivalents).
pub const ANOMALY_THRESHOLD: f64 = 3.0;

/// Window of the `rdma_link_flaps` metric (the AlertRule API documents "last 10 minutes").
pub const LINK_FLAP_WINDOW_MINUTES: i64 = 10;

/// Series kept in rolling windows per node, with the noise floor of the multivariate
/// detector (changes smaller than this are not anomalies whatever the history): loss 0.5 %,
/// RTT p99 200 µs, jitter 100 µs, score 2 points, CPU 5 %, memory 2 %, RDMA errors 1/min,
/// RoCE pause time 1 % (busiest port), RoCE discards 1/min (all ports).
pub const SERIES: [(&str, f64); 9] = [
    ("ping_loss_percent", 0.5),
    ("ping_rtt_p99_seconds", 0.0002),
    ("ping_jitter_seconds", 0.0001),
    ("network_score", 2.0),
    ("cpu_usage_percent", 5.0),
    ("memory_used_percent", 2.0),
    ("rdma_errors_per_minute", 1.0),
    ("rdma_pause_percent", 1.0),
    ("rdma_discards_per_minute", 1.0),
];

/// Series kept in rolling windows for their history only (the fleet view's node charts and
/// `/api/v1/.../history/{series}`), outside the anomaly detectors and the multivariate
/// feature vector: RTT p50 of the worst peer (its p99 is in [`SERIES`]), and RDMA bytes
/// received and transmitted per second over all ports (their sum is already the
/// `rdma_bytes_per_second` anomaly series, see [`crate::anomaly::features`]).
pub const HISTORY_SERIES: [&str; 3] = [
    "ping_rtt_p50_seconds",
    "rdma_receive_bytes_per_second",
    "rdma_transmit_bytes_per_second",
];

/// Per-target settings, from the MonitorTarget spec.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetConfig {
    /// Agent interval, seconds (staleness is three of these).
    pub interval_seconds: f64,
    /// Health thresholds.
    pub thresholds: ThresholdsConfig,
    /// `spec.ping.peers.maxPeers`.
    pub max_peers: Option<usize>,
    /// `spec.ping.peers.topologyKey`: the node label whose value is a node's domain.
    pub topology_key: Option<String>,
    /// `metadata.generation`, echoed so status writers can tell spec changes apart.
    pub generation: Option<i64>,
    /// Nodes that should run an agent (`status.nodes.desired`, from the controller); those
    /// that never reported keep the target out of Healthy.
    pub desired_nodes: Option<u32>,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            interval_seconds: 10.0,
            thresholds: ThresholdsConfig::default(),
            max_peers: None,
            topology_key: None,
            generation: None,
            desired_nodes: None,
        }
    }
}

/// Process-wide settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Samples per rolling window (at the default 10 s interval, 60 = 10 minutes).
    pub window: usize,
    /// Problems kept in a target view (the CRD's `problems` holds at most 20).
    pub max_problems: usize,
    /// A node silent this long is forgotten (bounded memory when nodes leave for good).
    pub forget_after: Duration,
    /// Vectors before the multivariate detector scores (the univariate ones warm up by time,
    /// see [`crate::anomaly::robust::DetectorSettings`]).
    pub warmup: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: 60,
            max_problems: 20,
            forget_after: Duration::hours(1),
            warmup: 12,
        }
    }
}

/// All targets' state.
#[derive(Debug, Default)]
pub struct Fleet {
    settings: Settings,
    targets: BTreeMap<ObjectRef, TargetState>,
    conditions: BTreeMap<String, NodeConditions>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            targets: BTreeMap::new(),
            conditions: BTreeMap::new(),
        }
    }

    /// Sets (or updates) a target's configuration; its nodes' state is kept.
    pub fn configure(&mut self, target: ObjectRef, config: TargetConfig) {
        self.targets.entry(target).or_default().config = config;
    }

    /// Forgets a target (deleted MonitorTarget).
    pub fn remove(&mut self, target: &ObjectRef) {
        self.targets.remove(target);
    }

    /// The configured or reporting targets.
    pub fn targets(&self) -> impl Iterator<Item = &ObjectRef> {
        self.targets.keys()
    }

    /// A target's configuration.
    pub fn config(&self, target: &ObjectRef) -> Option<&TargetConfig> {
        self.targets.get(target).map(|t| &t.config)
    }

    /// Total nodes held, all targets (for memory accounting).
    pub fn node_count(&self) -> usize {
        self.targets.values().map(|t| t.nodes.len()).sum()
    }

    /// Sets the Kubernetes Node conditions of every node (from the Node watch); a node not
    /// listed has none.
    pub fn set_node_conditions(&mut self, conditions: BTreeMap<String, NodeConditions>) {
        self.conditions = conditions;
    }
}
