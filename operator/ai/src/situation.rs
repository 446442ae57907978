//! The plain input of a diagnosis: what analytics knows about the referenced targets over
//! the analysis window. No Kubernetes or HTTP types; analytics fills it from its rolling
//! windows, alert state and the Events it watched.
//!
//! Units follow the agent wire format (`fabricwatch-proto`): seconds for times, percent
//! (0–100) for shares, per-second or per-minute rates as named.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fabricwatch_proto::Severity;
use serde::{Deserialize, Serialize};

/// Everything the model may see about one analysis window.
///
/// Order of the vectors does not matter: the context builder sorts them itself, so the same
/// situation always yields the same context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Situation {
    /// Length of the analysis window, in seconds.
    #[serde(default)]
    pub window_seconds: u64,
    /// Seconds of that window the data actually covers, when less than the window (analytics
    /// holds a bounded history); `None` when the whole window is covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_seconds: Option<u64>,
    /// Where the faults most likely are (fault localization), most severe first. The model
    /// reads these before the raw evidence.
    #[serde(default)]
    pub suspects: Vec<SuspectInfo>,
    /// Health per node.
    #[serde(default)]
    pub nodes: Vec<NodeHealth>,
    /// Ping statistics per (source node, peer) pair; the builder keeps the worst ones.
    #[serde(default)]
    pub peers: Vec<PeerStats>,
    /// RDMA ports with their counter deltas over the window.
    #[serde(default)]
    pub rdma_ports: Vec<RdmaPortStats>,
    /// Host pressure per node.
    #[serde(default)]
    pub hosts: Vec<HostPressure>,
    /// Anomalies detected in the window.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Alerts firing now.
    #[serde(default)]
    pub alerts: Vec<FiringAlert>,
    /// Recent Kubernetes Events of the affected nodes and pods.
    #[serde(default)]
    pub events: Vec<KubeEvent>,
}

/// Health classification, as in `MonitorTarget.status.health`: the shared
/// [`fabricwatch_proto::Health`] (PascalCase, default `Unknown`).
pub use fabricwatch_proto::Health;

/// One suspect of fault localization.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspectInfo {
    /// `node`, `link` or `domain`.
    pub kind: String,
    /// The node (node suspect), the two ends (link) or the members (domain).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The domain's label value (domain suspect; anonymized like free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `network`, `host`, `down` or `agent`.
    pub cause: String,
    /// Critical or Warning.
    pub severity: Health,
    /// 0–1.
    pub confidence: f64,
    /// What points at it (free text, anonymized before sending).
    #[serde(default)]
    pub evidence: String,
    /// Since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// One node's health.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeHealth {
    /// Kubernetes node name.
    pub node: String,
    /// Health classification.
    pub health: Health,
    /// Network score 0–100 (100 = perfect), when analytics computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Short problem lines, e.g. `rdma mlx5_0/1 DOWN` (free text, anonymized before sending).
    #[serde(default)]
    pub problems: Vec<String>,
    /// The node's InternalIP, when known (anonymized before sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Ping statistics from one node towards one peer over the window.
// Not proto's `PeerReport`: a window aggregate with its source node, without the probe details.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    /// Probing node.
    pub source: String,
    /// Peer node name, or the external target as configured.
    pub peer: String,
    /// `true` for an `externalTargets` entry (its name is then treated as free text).
    #[serde(default)]
    pub external: bool,
    /// Packet loss, 0–100.
    pub loss_percent: f64,
    /// Median RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p50_seconds: Option<f64>,
    /// 99th percentile RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p99_seconds: Option<f64>,
    /// RFC 3550 §6.4.1 interarrival jitter, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_seconds: Option<f64>,
}

/// One RDMA port over the window.
// Not proto's `RdmaPortReport`: deltas and rates over the window instead of raw counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RdmaPortStats {
    /// Node the port is on.
    pub node: String,
    /// Device, e.g. `mlx5_0`.
    pub device: String,
    /// Port number (1-based, as in sysfs).
    pub port: u32,
    /// `state` without its number, e.g. `ACTIVE`, `DOWN`.
    pub state: String,
    /// `link_layer`: `InfiniBand` or `Ethernet` (RoCE).
    #[serde(default)]
    pub link_layer: String,
    /// Counter increases over the window under their kernel names (`symbol_error`,
    /// `link_downed`, `port_rcv_errors`, `np_cnp_sent`, `np_ecn_marked_roce_packets`, ...).
    #[serde(default)]
    pub counter_deltas: BTreeMap<String, u64>,
    /// Sum of the error counters' rates, per minute.
    #[serde(default)]
    pub error_rate_per_minute: f64,
    /// Link flaps in the window.
    #[serde(default)]
    pub link_flaps: u64,
    /// Congestion signals per second under their kernel names (ECN marks, CNPs, pause frames).
    #[serde(default)]
    pub congestion_per_second: BTreeMap<String, f64>,
}

impl RdmaPortStats {
    /// `true` when the port needs attention: not ACTIVE, erroring, flapping or congested.
    pub fn is_interesting(&self) -> bool {
        !self.state.eq_ignore_ascii_case("ACTIVE")
            || self.error_rate_per_minute > 0.0
            || self.link_flaps > 0
            || self.congestion_per_second.values().any(|v| *v > 0.0)
    }
}

/// Host pressure on one node.
// Not proto's `HostReport`/`PressureReport`: the few figures the prompt carries, per node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPressure {
    /// Node.
    pub node: String,
    /// CPU busy share, 0–100.
    pub cpu_usage_percent: f64,
    /// Memory in use, 0–100.
    pub memory_used_percent: f64,
    /// Lowest free share over the watched filesystems, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_percent_min: Option<f64>,
    /// PSI `cpu some avg10`, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi_cpu_some_avg10: Option<f64>,
    /// PSI `memory full avg10`, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi_memory_full_avg10: Option<f64>,
    /// PSI `io full avg10`, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi_io_full_avg10: Option<f64>,
}

impl HostPressure {
    /// A 0–100 pressure figure used only to order hosts (worst first): the largest of CPU,
    /// memory, disk use and the PSI values.
    pub fn pressure(&self) -> f64 {
        [
            self.cpu_usage_percent,
            self.memory_used_percent,
            self.disk_free_percent_min.map_or(0.0, |f| 100.0 - f),
            self.psi_cpu_some_avg10.unwrap_or(0.0),
            self.psi_memory_full_avg10.unwrap_or(0.0),
            self.psi_io_full_avg10.unwrap_or(0.0),
        ]
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
    }
}

/// One anomaly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    /// Node (or peer pair source) the anomaly is on.
    pub node: String,
    /// Metric name as documented for AlertRules, e.g. `ping_loss_percent`.
    pub metric: String,
    /// Anomaly score (analytics' detector; higher is more unusual).
    pub score: f64,
    /// Observed value.
    pub value: f64,
    /// The detector's baseline (rolling mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// First seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// An alert that is firing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringAlert {
    /// AlertRule name.
    pub rule: String,
    /// The rule's severity (`info`, `warning` or `critical` in JSON).
    pub severity: Severity,
    /// Metric name.
    pub metric: String,
    /// Last value.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// Nodes it fires for (empty for target scope).
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Firing since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// Kind of object a Kubernetes Event is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventObjectKind {
    /// A Node.
    #[default]
    Node,
    /// A Pod.
    Pod,
}

/// A Kubernetes Event (core/v1 or events.k8s.io/v1), reduced to what helps a diagnosis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeEvent {
    /// Kind of the involved object.
    pub kind: EventObjectKind,
    /// Namespace of the involved object (empty for Nodes).
    #[serde(default)]
    pub namespace: String,
    /// Name of the involved object.
    pub name: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// CamelCase reason, e.g. `NodeNotReady`.
    #[serde(default)]
    pub reason: String,
    /// Free-text message (untrusted: may contain anything a workload wrote).
    #[serde(default)]
    pub message: String,
    /// Occurrences.
    #[serde(default)]
    pub count: u32,
    /// Last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}
