//! In-memory state of every MonitorTarget's nodes: windows, detectors, health, problems,
//! peers and the values AlertRules evaluate. Pure: time is passed in, no IO.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::{Metric, Scope};
use fabricwatch_proto::{
    agent_config::ThresholdsConfig,
    report::{AgentReport, Peer},
    ObjectRef,
};
use serde::Serialize;

use crate::{
    alert::SeriesKey,
    anomaly::{
        features::extra_series,
        log::{AnomalyLog, AnomalyRecord},
        series::SeriesDetectors,
        snapshot::Baselines,
        Mahalanobis,
    },
    congestion, consistency,
    derive::{derive, CounterSnapshot, NodeSample, PortKey},
    health::{findings, is_stale, node_health, target_health, Finding, Health},
    localize::{localize, Limits, Liveness, NodeInput, PathInput, Suspect},
    loss::{bonferroni, lower_bound, PathHistory, FAMILY_ALPHA, SCAN_WINDOWS},
    node_conditions::NodeConditions,
    peers::{assign, Candidate},
    stats::quantile,
    window::{Sample, Window},
};

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

#[derive(Clone, Debug)]
struct NodeState {
    address: Option<String>,
    domain: Option<String>,
    pod: Option<String>,
    last_report: DateTime<Utc>,
    received_at: DateTime<Utc>,
    interval_seconds: f64,
    seq: u64,
    restarts: u64,
    sample: NodeSample,
    counters: CounterSnapshot,
    windows: BTreeMap<&'static str, Window>,
    port_flaps: BTreeMap<PortKey, Window>,
    detectors: SeriesDetectors,
    multivariate: Mahalanobis,
    anomaly: AnomalyState,
    findings: Vec<Finding>,
    problem_since: BTreeMap<String, DateTime<Utc>>,
    /// Probe counts of each mesh or external peer over its recent reports.
    paths: BTreeMap<String, PathHistory>,
}

#[derive(Clone, Debug, Default)]
struct TargetState {
    config: TargetConfig,
    nodes: BTreeMap<String, NodeState>,
    last_report: Option<DateTime<Utc>>,
    /// Detector baselines saved before a restart, by node, taken when the node reports.
    restored: BTreeMap<String, SeriesDetectors>,
    /// Anomaly episodes of the target's nodes.
    anomalies: AnomalyLog,
    /// Suspects of the latest localization, ranked, with the time each was first seen.
    suspects: Vec<SuspectView>,
}

/// A suspect as the API and status show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspectView {
    /// `node/<name>`, `link/<a>–<b>` or `domain/<value>`.
    pub name: String,
    /// The inference's result.
    #[serde(flatten)]
    pub suspect: Suspect,
    /// Since when it is continuously a suspect.
    pub since: DateTime<Utc>,
    /// Pair problems it replaces in `problems`.
    pub problems: u32,
}

/// A suspect that appeared or cleared in a localization.
#[derive(Clone, Debug, PartialEq)]
pub enum SuspectChange {
    /// New suspect.
    Appeared(ObjectRef, SuspectView),
    /// A suspect of the previous localization is gone; its name.
    Cleared(ObjectRef, String),
}

/// What an accepted report produced.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestOutcome {
    /// Peers for the push response.
    pub peers: Vec<Peer>,
    /// The node's anomaly state went from nothing flagged to something flagged.
    pub new_anomaly: Option<AnomalyState>,
    /// The agent's `seq` went down: it restarted.
    pub agent_restarted: bool,
}

/// One top-N problem of a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Node.
    pub node: String,
    /// Component path, e.g. `rdma/mlx5_0/1`; its first segment is `rdma`, `ping`, `host` or
    /// `agent`.
    pub component: String,
    /// Warning or Critical.
    pub severity: Health,
    /// Human text.
    pub message: String,
    /// Since when it is continuously present.
    pub since: DateTime<Utc>,
}

/// Fabric-wide figures of a target, over its reporting nodes' latest samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Highest loss of any reporting node to any peer over the path's recent probes
    /// ([`crate::loss::PATH_HISTORY`] reports), percent.
    pub worst_loss_percent: Option<f64>,
    /// 99th percentile (type 7) over every node-to-peer RTT p99, seconds.
    pub rtt_p99_seconds: Option<f64>,
    /// RDMA ports ACTIVE.
    pub rdma_ports_active: u32,
    /// RDMA ports down and not disabled.
    pub rdma_ports_down: u32,
    /// RDMA error increments per minute, all ports.
    pub rdma_errors_per_minute: Option<f64>,
    /// Flagged anomalous series, all nodes.
    pub anomalies: u32,
}

/// Node counts of a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// Nodes known (reported at least once, not forgotten).
    pub known: u32,
    /// Reported within three intervals.
    pub reporting: u32,
    /// In Warning.
    pub warning: u32,
    /// In Critical.
    pub critical: u32,
    /// Nodes that should run an agent, when the controller has said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    /// Desired nodes never heard of (or forgotten): agents that never started or never
    /// reached analytics.
    pub missing: u32,
}

/// A target as dashboards and the status writer see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// The MonitorTarget.
    pub target: ObjectRef,
    /// Overall health.
    pub health: Health,
    /// Node counts.
    pub nodes: NodeCounts,
    /// Fabric-wide figures.
    pub summary: Summary,
    /// Suspects of the latest localization, most severe and confident first.
    pub suspects: Vec<SuspectView>,
    /// Worst problems first, at most `Settings::max_problems`; problems a suspect explains
    /// (its pair problems, a down node's silence) are counted under it instead.
    pub problems: Vec<Problem>,
    /// Latest report received from any node.
    pub last_report_time: Option<DateTime<Utc>>,
}

/// Rolling statistics of one series of one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesStats {
    /// Latest value.
    pub last: Option<f64>,
    /// Window mean.
    pub mean: Option<f64>,
    /// Window standard deviation.
    pub std_dev: Option<f64>,
    /// Window median.
    pub p50: Option<f64>,
    /// Window 99th percentile.
    pub p99: Option<f64>,
    /// Samples in the window.
    pub samples: usize,
}

/// One node as dashboards see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Node name.
    pub node: String,
    /// Health.
    pub health: Health,
    /// Address peers probe.
    pub address: Option<String>,
    /// Topology domain.
    pub domain: Option<String>,
    /// Agent pod.
    pub pod: Option<String>,
    /// Collection time of the latest report.
    pub last_report_time: DateTime<Utc>,
    /// Agent restarts seen (sequence number drops).
    pub agent_restarts: u64,
    /// Findings of the latest report.
    pub findings: Vec<Finding>,
    /// Anomaly state.
    pub anomaly: AnomalyState,
    /// Rolling statistics per series.
    pub series: BTreeMap<String, SeriesStats>,
    /// Link flaps per port over the last 10 minutes.
    pub link_flaps: BTreeMap<String, f64>,
    /// Seconds of history held for this node: from its oldest windowed sample to now.
    pub history_seconds: f64,
    /// The latest derived sample.
    pub latest: NodeSample,
}

/// The per-node values exported as metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeGauges {
    /// Node name.
    pub node: String,
    /// Health.
    pub health: Health,
    /// Worst-path network score.
    pub network_score: Option<f64>,
    /// Anomaly score.
    pub anomaly_score: f64,
}

/// All targets' state.
#[derive(Debug, Default)]
pub struct Fleet {
    settings: Settings,
    targets: BTreeMap<ObjectRef, TargetState>,
    conditions: BTreeMap<String, NodeConditions>,
}

/// Appends each peer's probe counts to its history (peers no longer probed are dropped: their
/// paths were reassigned) and fills the samples' windowed probe counts and the loss each path
/// has at least, at the target's corrected confidence: `m` = nodes × this node's peers
/// verdicts, about what one evaluation of the whole target takes ([`crate::loss`]).
fn grade_paths(
    paths: &mut BTreeMap<String, PathHistory>,
    report: &AgentReport,
    sample: &mut NodeSample,
    nodes: usize,
) {
    let probed: BTreeSet<&str> = report
        .ping
        .iter()
        .filter(|p| p.sent > 0)
        .map(|p| p.peer.as_str())
        .collect();
    paths.retain(|k, _| probed.contains(k.as_str()));
    for p in report.ping.iter().filter(|p| p.sent > 0) {
        paths
            .entry(p.peer.clone())
            .or_default()
            .push(p.sent, p.received);
    }
    let alpha = bonferroni(FAMILY_ALPHA, nodes.max(1) * probed.len().max(1));
    for s in &mut sample.peers {
        if let Some(h) = paths.get(&s.peer) {
            let w = h.windows();
            let all = w[SCAN_WINDOWS.len() - 1];
            s.probes_sent = all.sent;
            s.probes_lost = all.lost;
            s.loss_lower_percent = Some(100.0 * lower_bound(&w, alpha));
        }
    }
}

/// The localization inputs of one target at `now` (see [`crate::localize`]): every node with
/// its liveness, host and network evidence, and every mesh path with its probe windows.
fn localize_target(
    t: &TargetState,
    conditions: &BTreeMap<String, NodeConditions>,
    now: DateTime<Utc>,
) -> Vec<Suspect> {
    let th = &t.config.thresholds;
    let index: BTreeMap<&str, usize> = t
        .nodes
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut nodes = Vec::with_capacity(t.nodes.len());
    let mut paths = Vec::new();
    for (si, (name, n)) in t.nodes.iter().enumerate() {
        let age = (now - n.received_at).num_milliseconds() as f64 / 1000.0;
        let liveness = if is_stale(Some(n.received_at), n.interval_seconds, now) {
            Liveness::Silent
        } else if age > 2.0 * n.interval_seconds {
            Liveness::Late
        } else {
            Liveness::Fresh
        };
        let s = &n.sample;
        let (mut host, host_fault) = conditions
            .get(name)
            .map(NodeConditions::evidence)
            .unwrap_or_default();
        if let Some(cpu) = s
            .cpu_usage_percent
            .filter(|c| *c >= th.cpu_usage_percent.critical)
        {
            host.push(format!("CPU {cpu:.0}% busy"));
        }
        if let Some(m) = s
            .memory_used_percent
            .filter(|m| *m >= th.memory_used_percent.critical)
        {
            host.push(format!("memory {m:.0}% used"));
        }
        let mut network = Vec::new();
        for p in &s.ports {
            if p.is_down() {
                network.push(format!(
                    "RDMA port {}/{} {} ({})",
                    p.device, p.port, p.state, p.phys_state
                ));
            }
            if let Some(e) = p
                .errors_per_minute
                .filter(|e| *e >= th.rdma_errors_per_minute.critical)
            {
                network.push(format!(
                    "{e:.0} RDMA port errors per minute on {}/{}",
                    p.device, p.port
                ));
            }
        }
        nodes.push(NodeInput {
            name: name.clone(),
            domain: n.domain.clone().filter(|_| t.config.topology_key.is_some()),
            liveness,
            host,
            host_fault,
            network_fault: s.rdma_ports_down > 0,
            network,
        });
        let rtt: BTreeMap<&str, Option<f64>> = s
            .peers
            .iter()
            .map(|p| (p.peer.as_str(), p.rtt_p99_seconds))
            .collect();
        for (peer, h) in &n.paths {
            let Some(&di) = index.get(peer.as_str()) else {
                continue;
            };
            paths.push(PathInput {
                src: si,
                dst: di,
                windows: h.windows(),
                slow: rtt
                    .get(peer.as_str())
                    .copied()
                    .flatten()
                    .is_some_and(|r| r >= th.rtt_p99_seconds.warning),
            });
        }
    }
    localize(
        &nodes,
        &paths,
        Limits {
            loss_warning: th.loss_percent.warning / 100.0,
            loss_critical: th.loss_percent.critical / 100.0,
            alpha: FAMILY_ALPHA,
        },
    )
}

/// Says how far each endpoint outage reaches: every node's "endpoint X unreachable"
/// problem gains "from k of n nodes" over the reporting nodes that probe X, and which
/// they are (at most 5 named) — few nodes point at their paths to the service, all of
/// them at the service itself.
fn localize_endpoints(t: &TargetState, now: DateTime<Utc>, problems: &mut [Problem]) {
    use fabricwatch_proto::endpoint::EndpointState;
    let mut probing: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    for (name, n) in &t.nodes {
        if is_stale(Some(n.received_at), n.interval_seconds, now) {
            continue;
        }
        for e in &n.sample.endpoints {
            let entry = probing.entry(e.name.as_str()).or_default();
            entry.1 += 1;
            if e.state == EndpointState::Down {
                entry.0.push(name.as_str());
            }
        }
    }
    for p in problems.iter_mut() {
        let Some(ep) = p.component.strip_prefix("endpoint/") else {
            continue;
        };
        let Some((down, of)) = probing.get(ep) else {
            continue;
        };
        if !down.contains(&p.node.as_str()) {
            continue;
        }
        let k = down.len();
        let scope = if k == *of && *of > 1 {
            format!("unreachable from all {of} nodes: the service itself is down or refusing")
        } else {
            let mut named = down.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            if k > 5 {
                named.push_str(", …");
            }
            format!("unreachable from {k} of {of} nodes ({named})")
        };
        p.message = format!("{}; {scope}", p.message);
    }
}

/// Seconds since the epoch (the detectors' time axis).
fn epoch_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn series_value(s: &NodeSample, name: &str) -> Option<f64> {
    match name {
        "ping_loss_percent" => s.loss_percent,
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

    /// Takes one report in. `domain` is the node's topology domain (value of the target's
    /// `topologyKey` label), `now` the receive time. A target not configured yet is created
    /// with defaults (its spec may still be on its way through the watch).
    pub fn ingest(
        &mut self,
        report: &AgentReport,
        domain: Option<String>,
        now: DateTime<Utc>,
    ) -> IngestOutcome {
        let settings = self.settings.clone();
        let t = self.targets.entry(report.target.clone()).or_default();
        let thresholds = t.config.thresholds.clone();
        t.last_report = Some(t.last_report.map_or(now, |l| l.max(now)));
        let interval = if report.interval_seconds.is_finite() && report.interval_seconds > 0.0 {
            report.interval_seconds
        } else {
            t.config.interval_seconds
        };
        let known = t.nodes.contains_key(&report.node);
        let restored = if known {
            None
        } else {
            t.restored.remove(&report.node)
        };
        let node_count = t.nodes.len() + usize::from(!known);
        let node = t
            .nodes
            .entry(report.node.clone())
            .or_insert_with(|| NodeState {
                address: None,
                domain: None,
                pod: None,
                last_report: report.collected_at,
                received_at: now,
                interval_seconds: interval,
                seq: report.seq,
                restarts: 0,
                sample: derive(report, None),
                counters: CounterSnapshot::default(),
                windows: SERIES
                    .iter()
                    .map(|(n, _)| (*n, Window::new(settings.window)))
                    .collect(),
                port_flaps: BTreeMap::new(),
                detectors: restored.unwrap_or_default(),
                multivariate: Mahalanobis::new(
                    SERIES.iter().map(|(_, f)| *f).collect(),
                    settings.window,
                    settings.warmup as usize,
                ),
                anomaly: AnomalyState::default(),
                findings: Vec::new(),
                problem_since: BTreeMap::new(),
                paths: BTreeMap::new(),
            });
        node.received_at = now;
        // A retried push whose answer was lost: the same report again. It proves the agent
        // is alive, but must not be counted twice by windows, detectors and rates.
        if known && report.seq == node.seq && report.collected_at <= node.last_report {
            let peers = Self::peers_of(t, &report.node, now);
            return IngestOutcome {
                peers,
                new_anomaly: None,
                agent_restarted: false,
            };
        }
        let agent_restarted = report.seq < node.seq;
        if agent_restarted {
            node.restarts += 1;
            // A restarted agent's counters may have been reset with the driver; no rates from them.
            node.counters = CounterSnapshot::default();
        }
        node.seq = report.seq;
        node.address = report.node_ip.clone().or(node.address.take());
        node.pod = report.pod.clone().or(node.pod.take());
        node.domain = domain.or(node.domain.take());
        node.interval_seconds = interval;
        let mut sample = derive(report, Some(&node.counters));
        let extra = extra_series(report, &sample, Some(&node.counters));
        node.counters = CounterSnapshot::of(report);
        grade_paths(&mut node.paths, report, &mut sample, node_count);
        node.last_report = node.last_report.max(report.collected_at);
        let at = report.collected_at;
        let mut features = Vec::with_capacity(SERIES.len());
        let mut scores = BTreeMap::new();
        for (name, _) in SERIES {
            let v = series_value(&sample, name);
            if let (Some(v), Some(w)) = (v, node.windows.get_mut(name)) {
                w.push(at, v);
            }
            if let Some(o) = v.and_then(|v| node.detectors.observe(name, epoch_seconds(at), v)) {
                if !o.warming_up {
                    scores.insert(name.to_string(), o.score);
                }
            }
            // Absent sections are a constant 0 for the multivariate detector: no spurious
            // correlation, and the ridge keeps the covariance invertible.
            features.push(v.unwrap_or(0.0));
        }
        for (name, v) in extra {
            if let Some(o) = node.detectors.observe(name, epoch_seconds(at), v) {
                if !o.warming_up {
                    scores.insert(name.to_string(), o.score);
                }
            }
        }
        if let Some(s) = node.multivariate.observe(&features) {
            scores.insert("multivariate".into(), s * ANOMALY_THRESHOLD);
        }
        for p in &sample.ports {
            node.port_flaps
                .entry((p.device.clone(), p.port))
                .or_insert_with(|| Window::new(settings.window))
                .push(at, p.link_flaps_total as f64);
        }
        let flagged: Vec<String> = scores
            .iter()
            .filter(|(_, s)| **s >= ANOMALY_THRESHOLD)
            .map(|(k, _)| k.clone())
            .collect();
        let was_flagged = !node.anomaly.flagged.is_empty();
        let with_scores: Vec<(String, f64)> = flagged
            .iter()
            .map(|k| (k.clone(), scores.get(k).copied().unwrap_or_default()))
            .collect();
        t.anomalies
            .update(&report.node, &node.anomaly.flagged, &with_scores, at);
        let since = if flagged.is_empty() {
            None
        } else {
            node.anomaly.since.or(Some(at))
        };
        node.anomaly = AnomalyState {
            score: scores.values().copied().fold(0.0, f64::max),
            scores,
            flagged,
            since,
        };
        let new_anomaly =
            (!was_flagged && !node.anomaly.flagged.is_empty()).then(|| node.anomaly.clone());
        node.findings = findings(&sample, &thresholds);
        let current: BTreeSet<&str> = node.findings.iter().map(|f| f.component.as_str()).collect();
        node.problem_since
            .retain(|k, _| current.contains(k.as_str()));
        for f in &node.findings {
            node.problem_since.entry(f.component.clone()).or_insert(at);
        }
        node.sample = sample;
        let peers = Self::peers_of(t, &report.node, now);
        IngestOutcome {
            peers,
            new_anomaly,
            agent_restarted,
        }
    }

    fn peers_of(t: &TargetState, me: &str, now: DateTime<Utc>) -> Vec<Peer> {
        let candidates: Vec<Candidate> = t
            .nodes
            .iter()
            .filter(|(_, n)| !is_stale(Some(n.received_at), n.interval_seconds, now))
            .filter_map(|(name, n)| {
                Some(Candidate {
                    node: name.clone(),
                    address: n.address.clone()?,
                    domain: n.domain.clone(),
                })
            })
            .collect();
        let my_domain = t
            .nodes
            .get(me)
            .and_then(|n| n.domain.as_deref())
            .filter(|_| t.config.topology_key.is_some());
        assign(me, my_domain, &candidates, t.config.max_peers)
    }

    /// The peers `node` of `target` should probe: the other reporting agents with an address,
    /// all of them or `maxPeers` by rendezvous hashing.
    pub fn peers(&self, target: &ObjectRef, node: &str, now: DateTime<Utc>) -> Vec<Peer> {
        self.targets
            .get(target)
            .map(|t| Self::peers_of(t, node, now))
            .unwrap_or_default()
    }

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

    /// Sets the Kubernetes Node conditions of every node (from the Node watch); a node not
    /// listed has none.
    pub fn set_node_conditions(&mut self, conditions: BTreeMap<String, NodeConditions>) {
        self.conditions = conditions;
    }

    /// Localizes faults in every target at `now` ([`crate::localize`]), keeps each suspect's
    /// first-seen time, and returns the suspects that appeared and cleared.
    pub fn localize_all(&mut self, now: DateTime<Utc>) -> Vec<SuspectChange> {
        let mut changes = Vec::new();
        for (key, t) in self.targets.iter_mut() {
            let found = localize_target(t, &self.conditions, now);
            let prev: BTreeMap<String, DateTime<Utc>> =
                t.suspects.drain(..).map(|s| (s.name, s.since)).collect();
            t.suspects = found
                .into_iter()
                .map(|s| {
                    let name = s.key();
                    SuspectView {
                        since: prev.get(&name).copied().unwrap_or(now),
                        name,
                        suspect: s,
                        problems: 0,
                    }
                })
                .collect();
            for s in &t.suspects {
                if !prev.contains_key(&s.name) {
                    changes.push(SuspectChange::Appeared(key.clone(), s.clone()));
                }
            }
            for name in prev.keys() {
                if !t.suspects.iter().any(|s| &s.name == name) {
                    changes.push(SuspectChange::Cleared(key.clone(), name.clone()));
                }
            }
        }
        changes
    }

    /// The suspects of `target` from the latest [`Fleet::localize_all`].
    pub fn suspects(&self, target: &ObjectRef) -> &[SuspectView] {
        self.targets
            .get(target)
            .map(|t| t.suspects.as_slice())
            .unwrap_or_default()
    }

    /// Drops nodes silent for longer than `Settings::forget_after`; returns how many.
    pub fn forget_silent(&mut self, now: DateTime<Utc>) -> usize {
        let horizon = self.settings.forget_after;
        let mut dropped = 0;
        for t in self.targets.values_mut() {
            let before = t.nodes.len();
            let gone: Vec<String> = t
                .nodes
                .iter()
                .filter(|(_, n)| now - n.received_at > horizon)
                .map(|(k, _)| k.clone())
                .collect();
            for k in &gone {
                t.anomalies.close_node(k, now);
            }
            t.nodes.retain(|_, n| now - n.received_at <= horizon);
            dropped += before - t.nodes.len();
        }
        dropped
    }

    /// [`consistency::check`] over the target's reporting nodes.
    fn inconsistencies(t: &TargetState, now: DateTime<Utc>) -> Vec<consistency::Inconsistency> {
        consistency::check(
            t.nodes
                .iter()
                .filter(|(_, n)| !is_stale(Some(n.received_at), n.interval_seconds, now))
                .map(|(name, n)| (name.as_str(), &n.sample)),
        )
    }

    /// The node's findings from its latest report plus its Node conditions.
    fn findings_of(&self, name: &str, n: &NodeState) -> Vec<Finding> {
        let mut f = n.findings.clone();
        if let Some(c) = self.conditions.get(name) {
            f.extend(c.findings());
        }
        f
    }

    fn health_of(&self, name: &str, n: &NodeState, now: DateTime<Utc>) -> Health {
        // Staleness goes by receive time: agent clocks may be skewed.
        node_health(
            &self.findings_of(name, n),
            Some(n.received_at),
            n.interval_seconds,
            now,
        )
    }

    /// The view of `target` at `now`; `None` when unknown.
    pub fn view(&self, target: &ObjectRef, now: DateTime<Utc>) -> Option<TargetView> {
        let t = self.targets.get(target)?;
        let mut counts = NodeCounts {
            known: t.nodes.len() as u32,
            desired: t.config.desired_nodes,
            missing: t
                .config
                .desired_nodes
                .map_or(0, |d| d.saturating_sub(t.nodes.len() as u32)),
            ..Default::default()
        };
        let mut summary = Summary::default();
        let mut problems = Vec::new();
        let mut healths = Vec::new();
        let mut p99s = Vec::new();
        for (name, n) in &t.nodes {
            let mut h = self.health_of(name, n, now);
            // A node suspect is at least as bad as the suspect, even when no single path of
            // it is beyond a threshold on its own.
            if let Some(sv) = t
                .suspects
                .iter()
                .find(|s| s.suspect.node.as_deref() == Some(name.as_str()))
            {
                if h != Health::Unknown && sv.suspect.severity.rank() > h.rank() {
                    h = sv.suspect.severity;
                }
            }
            healths.push(h);
            match h {
                Health::Unknown => {
                    problems.push(Problem {
                        node: name.clone(),
                        component: "agent".into(),
                        severity: Health::Critical,
                        message: format!(
                            "agent has not reported since {}",
                            n.received_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                        since: n.received_at,
                    });
                    continue;
                }
                Health::Warning => counts.warning += 1,
                Health::Critical => counts.critical += 1,
                Health::Healthy => {}
            }
            counts.reporting += 1;
            let s = &n.sample;
            // Over each path's recent probes, not one report's ten.
            let windowed = s
                .peers
                .iter()
                .map(|p| {
                    if p.probes_sent > 0 {
                        100.0 * p.probes_lost as f64 / p.probes_sent as f64
                    } else {
                        p.loss_percent
                    }
                })
                .reduce(f64::max);
            summary.worst_loss_percent = [summary.worst_loss_percent, windowed]
                .into_iter()
                .flatten()
                .reduce(f64::max);
            p99s.extend(s.peers.iter().filter_map(|p| p.rtt_p99_seconds));
            summary.rdma_ports_active += s.rdma_ports_active;
            summary.rdma_ports_down += s.rdma_ports_down;
            if let Some(e) = s.rdma_errors_per_minute {
                *summary.rdma_errors_per_minute.get_or_insert(0.0) += e;
            }
            summary.anomalies += n.anomaly.flagged.len() as u32;
            for f in &self.findings_of(name, n) {
                problems.push(Problem {
                    node: name.clone(),
                    component: f.component.clone(),
                    severity: f.severity,
                    message: f.message.clone(),
                    since: n
                        .problem_since
                        .get(&f.component)
                        .copied()
                        .unwrap_or(n.last_report),
                });
            }
        }
        summary.rtt_p99_seconds = quantile(&p99s, 0.99);
        localize_endpoints(t, now, &mut problems);
        let inconsistencies = Self::inconsistencies(t, now);
        problems.extend(inconsistencies.iter().map(|i| Problem {
            node: i.node.clone(),
            component: i.component.clone(),
            severity: Health::Warning,
            message: i.message.clone(),
            // Re-checked on every view; the node's latest report is when it was last seen.
            since: t.nodes.get(&i.node).map_or(now, |n| n.last_report),
        }));
        let mut suspects = t.suspects.clone();
        let mut explained: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        let mut down: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, sv) in t.suspects.iter().enumerate() {
            for (a, b) in &sv.suspect.paths {
                explained.entry((a.as_str(), b.as_str())).or_insert(i);
            }
            if let Some(n) = &sv.suspect.node {
                down.entry(n.as_str()).or_insert(i);
            }
        }
        problems.retain(|p| {
            let peer = p
                .component
                .strip_prefix("ping/")
                .map(|r| r.strip_suffix("/rtt").unwrap_or(r));
            let by = match peer {
                Some(peer) => explained.get(&(p.node.as_str(), peer)),
                None if p.component == "agent" => down.get(p.node.as_str()),
                None => None,
            };
            match by {
                Some(i) => {
                    suspects[*i].problems += 1;
                    false
                }
                None => true,
            }
        });
        healths.extend(std::iter::repeat_n(
            Health::Unknown,
            counts.missing as usize,
        ));
        let mut health = target_health(healths);
        if let Some(worst) = suspects
            .iter()
            .map(|s| s.suspect.severity)
            .max_by_key(|h| h.rank())
        {
            if health != Health::Unknown && worst.rank() > health.rank() {
                health = worst;
            }
        }
        problems.sort_by(|a, b| {
            b.severity
                .rank()
                .cmp(&a.severity.rank())
                .then(a.since.cmp(&b.since))
                .then_with(|| (&a.node, &a.component).cmp(&(&b.node, &b.component)))
        });
        problems.truncate(self.settings.max_problems);
        if health == Health::Healthy && !inconsistencies.is_empty() {
            health = Health::Warning;
        }
        Some(TargetView {
            target: target.clone(),
            health,
            nodes: counts,
            summary,
            suspects,
            problems,
            last_report_time: t.last_report,
        })
    }

    /// Views of every node of `target`.
    pub fn nodes(&self, target: &ObjectRef, now: DateTime<Utc>) -> Option<Vec<NodeView>> {
        let t = self.targets.get(target)?;
        let since = now - Duration::minutes(LINK_FLAP_WINDOW_MINUTES);
        Some(
            t.nodes
                .iter()
                .map(|(name, n)| NodeView {
                    node: name.clone(),
                    health: self.health_of(name, n, now),
                    address: n.address.clone(),
                    domain: n.domain.clone(),
                    pod: n.pod.clone(),
                    last_report_time: n.last_report,
                    agent_restarts: n.restarts,
                    findings: self.findings_of(name, n),
                    anomaly: n.anomaly.clone(),
                    series: n
                        .windows
                        .iter()
                        .map(|(k, w)| {
                            (
                                k.to_string(),
                                SeriesStats {
                                    last: w.last().map(|s| s.value),
                                    mean: w.mean(),
                                    std_dev: w.std_dev(),
                                    p50: w.quantile(0.5),
                                    p99: w.quantile(0.99),
                                    samples: w.len(),
                                },
                            )
                        })
                        .collect(),
                    link_flaps: n
                        .port_flaps
                        .iter()
                        .map(|((d, p), w)| (format!("{d}/{p}"), w.increase_since(since)))
                        .collect(),
                    history_seconds: n
                        .windows
                        .values()
                        .filter_map(|w| w.samples().next().map(|s| s.at))
                        .min()
                        .map_or(0.0, |oldest| {
                            (now - oldest).num_milliseconds().max(0) as f64 / 1000.0
                        }),
                    latest: n.sample.clone(),
                })
                .collect(),
        )
    }

    /// Per node of `target`: name, health, network score, anomaly score — what the metrics
    /// export, without building full [`NodeView`]s.
    pub fn node_gauges(&self, target: &ObjectRef, now: DateTime<Utc>) -> Vec<NodeGauges> {
        self.targets
            .get(target)
            .map(|t| {
                t.nodes
                    .iter()
                    .map(|(name, n)| NodeGauges {
                        node: name.clone(),
                        health: self.health_of(name, n, now),
                        network_score: n.sample.network_score,
                        anomaly_score: n.anomaly.score,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The window of one series of one node, oldest first; `None` when unknown.
    pub fn history(&self, target: &ObjectRef, node: &str, series: &str) -> Option<Vec<Sample>> {
        let w = self
            .targets
            .get(target)?
            .nodes
            .get(node)?
            .windows
            .get(series)?;
        Some(w.samples().copied().collect())
    }

    /// The values an AlertRule on `metric` with `scope` evaluates at `now`, one per series.
    ///
    /// Per node: ping metrics per (node, peer); RDMA error rates and link flaps per
    /// (node, device, port); `disk_free_percent` per (node, mount point); endpoint metrics
    /// per (node, endpoint); others per node.
    /// Only reporting nodes count, except for `agents_not_reporting` (1 for a silent node,
    /// else 0). `target` scope folds them into one value: the sum for counts
    /// (`rdma_ports_down`, `rdma_link_flaps`, `agents_not_reporting`), the minimum for
    /// `disk_free_percent`, `network_score`, `endpoint_up` and `tls_certificate_expiry_days`
    /// (lower is worse), else the maximum.
    pub fn series_values(
        &self,
        target: &ObjectRef,
        metric: Metric,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> BTreeMap<SeriesKey, f64> {
        let mut out = BTreeMap::new();
        let Some(t) = self.targets.get(target) else {
            return out;
        };
        let flap_since = now - Duration::minutes(LINK_FLAP_WINDOW_MINUTES);
        let mut inconsistent: BTreeMap<String, usize> = BTreeMap::new();
        if metric == Metric::RdmaInconsistencies {
            for i in Self::inconsistencies(t, now) {
                *inconsistent.entry(i.node).or_default() += 1;
            }
        }
        for (name, n) in &t.nodes {
            let stale = is_stale(Some(n.received_at), n.interval_seconds, now);
            let node_key = || SeriesKey::node(name);
            if metric == Metric::AgentsNotReporting {
                out.insert(node_key(), if stale { 1.0 } else { 0.0 });
                continue;
            }
            if metric == Metric::NodeSuspect {
                // Silent nodes too: a node that is down is the suspect users alert on.
                let c = t
                    .suspects
                    .iter()
                    .find(|s| s.suspect.node.as_deref() == Some(name.as_str()))
                    .map_or(0.0, |s| s.suspect.confidence);
                out.insert(node_key(), c);
                continue;
            }
            if stale {
                continue;
            }
            let s = &n.sample;
            let peer_key = |p: &str| SeriesKey {
                peer: Some(p.to_string()),
                ..node_key()
            };
            let port_key = |d: &str, p: u32| SeriesKey {
                device: Some(d.to_string()),
                port: Some(p),
                ..node_key()
            };
            let port_rate = |names: &[&str]| -> Vec<(SeriesKey, f64)> {
                s.ports
                    .iter()
                    .filter_map(|p| {
                        let v: Vec<f64> = names
                            .iter()
                            .filter_map(|c| p.error_rates_per_minute.get(*c).copied())
                            .collect();
                        (!v.is_empty())
                            .then(|| (port_key(&p.device, p.port), v.iter().sum::<f64>()))
                    })
                    .collect()
            };
            match metric {
                Metric::PingLossPercent => {
                    out.extend(s.peers.iter().map(|p| (peer_key(&p.peer), p.loss_percent)))
                }
                Metric::PingRttP99Seconds => out.extend(
                    s.peers
                        .iter()
                        .filter_map(|p| Some((peer_key(&p.peer), p.rtt_p99_seconds?))),
                ),
                Metric::PingJitterSeconds => out.extend(
                    s.peers
                        .iter()
                        .filter_map(|p| Some((peer_key(&p.peer), p.jitter_seconds?))),
                ),
                Metric::RdmaSymbolErrorsPerMinute => out.extend(port_rate(&["symbol_error"])),
                Metric::RdmaLinkErrorsPerMinute => {
                    out.extend(port_rate(&["link_error_recovery", "link_downed"]))
                }
                Metric::RdmaRcvErrorsPerMinute => out.extend(port_rate(&["port_rcv_errors"])),
                Metric::RdmaPortsDown => {
                    out.insert(node_key(), f64::from(s.rdma_ports_down));
                }
                Metric::RdmaLinkFlaps => out.extend(
                    n.port_flaps
                        .iter()
                        .map(|((d, p), w)| (port_key(d, *p), w.increase_since(flap_since))),
                ),
                Metric::CpuUsagePercent => out.extend(s.cpu_usage_percent.map(|v| (node_key(), v))),
                Metric::MemoryUsedPercent => {
                    out.extend(s.memory_used_percent.map(|v| (node_key(), v)))
                }
                Metric::DiskFreePercent => {
                    out.extend(s.disk_free_percent.as_ref().map(|(m, v)| {
                        (
                            SeriesKey {
                                device: Some(m.clone()),
                                ..node_key()
                            },
                            *v,
                        )
                    }))
                }
                Metric::NetworkScore => out.extend(s.network_score.map(|v| (node_key(), v))),
                Metric::AnomalyScore => {
                    out.insert(node_key(), n.anomaly.score);
                }
                Metric::AgentsNotReporting | Metric::NodeSuspect => {}
                Metric::EndpointUp
                | Metric::EndpointDurationSeconds
                | Metric::TlsCertificateExpiryDays => {
                    out.extend(s.endpoints.iter().filter_map(|e| {
                        let v = match metric {
                            Metric::EndpointUp => Some(
                                if e.state == fabricwatch_proto::endpoint::EndpointState::Down {
                                    0.0
                                } else {
                                    1.0
                                },
                            ),
                            Metric::EndpointDurationSeconds => Some(e.duration_seconds),
                            _ => e.tls_expiry_days,
                        }?;
                        Some((
                            SeriesKey {
                                endpoint: Some(e.name.clone()),
                                ..node_key()
                            },
                            v,
                        ))
                    }))
                }
                Metric::RdmaInconsistencies => {
                    let n = inconsistent.get(name).copied().unwrap_or(0);
                    out.insert(node_key(), n as f64);
                }
                m => out.extend(s.ports.iter().filter_map(|p| {
                    Some((
                        port_key(&p.device, p.port),
                        congestion::metric_value(&p.congestion, m)?,
                    ))
                })),
            }
        }
        if scope == Scope::Target {
            let values = out.values().copied();
            let folded = match metric {
                Metric::RdmaPortsDown
                | Metric::RdmaLinkFlaps
                | Metric::AgentsNotReporting
                | Metric::RdmaInconsistencies => Some(values.sum()),
                Metric::DiskFreePercent
                | Metric::NetworkScore
                | Metric::EndpointUp
                | Metric::TlsCertificateExpiryDays => values.reduce(f64::min),
                _ => values.reduce(f64::max),
            };
            return folded
                .map(|v| BTreeMap::from([(SeriesKey::default(), v)]))
                .unwrap_or_default();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::{peer, port, t};
    use fabricwatch_proto::report::{HostReport, PeerReport};

    fn target() -> ObjectRef {
        ObjectRef {
            namespace: "ns".into(),
            name: "fabric".into(),
        }
    }

    fn report(node: &str, seq: u64, at: i64, loss: f64) -> AgentReport {
        AgentReport {
            schema_version: 1,
            target: target(),
            node: node.into(),
            node_ip: Some(format!("10.0.0.{}", node.len())),
            seq,
            collected_at: t(at),
            interval_seconds: 10.0,
            // 100 probes, `loss` of them lost.
            ping: vec![PeerReport {
                sent: 100,
                received: 100 - loss.round().clamp(0.0, 100.0) as u32,
                ..peer("other", loss, 0.001)
            }],
            host: Some(HostReport {
                cpu_usage_percent: 20.0,
                memory_used_percent: 30.0,
                ..Default::default()
            }),
            rdma: vec![port("mlx5_0", "ACTIVE", "LinkUp", seq * 10)],
            ..Default::default()
        }
    }

    /// A report whose port carries firmware, board and RoCE statistics.
    fn roce_report(node: &str, seq: u64, at: i64, fw: &str, storm_rate: f64) -> AgentReport {
        let mut r = report(node, seq, at, 0.0);
        let p = &mut r.rdma[0];
        // Still error counters: only congestion and consistency are under test.
        p.counters.values_mut().for_each(|v| *v = 0);
        p.link_layer = "Ethernet".into();
        p.netdev = Some("ens1f0".into());
        p.identity = Some(fabricwatch_proto::report::PortIdentity {
            fw_ver: Some(fw.into()),
            board_id: Some("MT_0000000012".into()),
            ..Default::default()
        });
        p.ethtool = Some(fabricwatch_proto::report::EthtoolReport {
            driver: "mlx5_core".into(),
            rates: BTreeMap::from([
                ("pause_transmitted/3".to_string(), 2000.0),
                ("pause_storm_error_events".to_string(), storm_rate),
            ]),
            ..Default::default()
        });
        r
    }

    fn with_endpoint(mut r: AgentReport, state: &str, not_after_days: i64) -> AgentReport {
        use fabricwatch_proto::endpoint::{EndpointKind, EndpointReport, EndpointState};
        let state = match state {
            "down" => EndpointState::Down,
            "slow" => EndpointState::Slow,
            _ => EndpointState::Up,
        };
        r.endpoints = vec![EndpointReport {
            name: "api".into(),
            kind: EndpointKind::Http,
            target: "https://api.example/healthz".into(),
            state,
            probed_at: r.collected_at,
            duration_seconds: if state == EndpointState::Slow {
                2.5
            } else {
                0.004
            },
            tls_not_after: Some(r.collected_at + Duration::days(not_after_days)),
            error: (state == EndpointState::Down)
                .then(|| "connect 10.96.0.7:443: Connection refused (os error 111)".into()),
            ..Default::default()
        }];
        r
    }

    #[test]
    fn an_endpoint_down_from_one_node_names_that_node() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "up", 90),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n2", 1, 0, 0.0), "down", 90),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n3", 1, 0, 0.0), "up", 90),
            None,
            t(0),
        );
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        let p: Vec<_> = v
            .problems
            .iter()
            .filter(|p| p.component.starts_with("endpoint/"))
            .collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].node, "n2");
        assert_eq!(
            p[0].message,
            "endpoint api (https://api.example/healthz) unreachable: connect 10.96.0.7:443: Connection refused (os error 111); unreachable from 1 of 3 nodes (n2)"
        );
        let up = f.series_values(&target(), Metric::EndpointUp, Scope::PerNode, t(1));
        let key = |n: &str| SeriesKey {
            endpoint: Some("api".into()),
            ..SeriesKey::node(n)
        };
        assert_eq!(up.get(&key("n2")), Some(&0.0));
        assert_eq!(up.get(&key("n1")), Some(&1.0));
        let folded = f.series_values(&target(), Metric::EndpointUp, Scope::Target, t(1));
        assert_eq!(folded.values().copied().collect::<Vec<_>>(), vec![0.0]);
        let d = f.series_values(
            &target(),
            Metric::EndpointDurationSeconds,
            Scope::PerNode,
            t(1),
        );
        assert_eq!(d.get(&key("n1")), Some(&0.004));
    }

    #[test]
    fn an_endpoint_down_everywhere_is_the_service_and_expiry_is_graded() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "down", 10),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n2", 1, 0, 0.0), "down", 10),
            None,
            t(0),
        );
        let v = f.view(&target(), t(1)).expect("view");
        let down = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api")
            .expect("endpoint problem");
        assert!(
            down.message
                .ends_with("unreachable from all 2 nodes: the service itself is down or refusing"),
            "{}",
            down.message
        );
        let tls = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api/tls")
            .expect("certificate problem");
        assert_eq!(tls.severity, Health::Warning);
        assert_eq!(
            tls.message,
            "endpoint api certificate expires in 10.0 days (threshold 14 days)"
        );
        let days = f.series_values(
            &target(),
            Metric::TlsCertificateExpiryDays,
            Scope::Target,
            t(1),
        );
        assert_eq!(days.values().copied().collect::<Vec<_>>(), vec![10.0]);
        // Slow is a Warning of its own.
        let mut g = Fleet::new(Settings::default());
        g.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "slow", 90),
            None,
            t(0),
        );
        let v = g.view(&target(), t(1)).expect("view");
        let slow = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api")
            .expect("slow problem");
        assert_eq!(slow.severity, Health::Warning);
        assert_eq!(
            slow.message,
            "endpoint api (https://api.example/healthz) slow: 2.500 s"
        );
    }

    #[test]
    fn congestion_and_consistency_reach_problems_health_and_alert_values() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&roce_report("a", 1, 0, "16.35.2000", 0.0), None, t(0));
        f.ingest(&roce_report("bb", 1, 0, "16.35.2000", 0.0), None, t(0));
        f.ingest(&roce_report("ccc", 1, 0, "16.28.1002", 0.5), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        let storm = v
            .problems
            .iter()
            .find(|p| p.component == "rdma/mlx5_0/1/pause-storm")
            .expect("storm problem");
        assert_eq!(
            (storm.node.as_str(), storm.severity),
            ("ccc", Health::Critical)
        );
        assert!(
            storm.message.contains("mlx5_0/1 (ens1f0), priority 3"),
            "{}",
            storm.message
        );
        let fw = v
            .problems
            .iter()
            .find(|p| p.component == "rdma/mlx5_0/firmware")
            .expect("firmware problem");
        assert_eq!((fw.node.as_str(), fw.severity), ("ccc", Health::Warning));
        let inc = f.series_values(&target(), Metric::RdmaInconsistencies, Scope::PerNode, t(1));
        assert_eq!(inc.get(&SeriesKey::node("ccc")), Some(&1.0));
        assert_eq!(inc.get(&SeriesKey::node("a")), Some(&0.0));
        let pause = f.series_values(
            &target(),
            Metric::RdmaPauseFramesPerSecond,
            Scope::Target,
            t(1),
        );
        assert_eq!(pause.values().copied().collect::<Vec<_>>(), [2000.0]);
        let storms = f.series_values(
            &target(),
            Metric::RdmaPauseStormEventsPerMinute,
            Scope::PerNode,
            t(1),
        );
        assert_eq!(storms.values().copied().fold(0.0, f64::max), 30.0);
        // The same firmware everywhere and no storm: Healthy again.
        f.ingest(&roce_report("ccc", 2, 10, "16.35.2000", 0.0), None, t(10));
        let v = f.view(&target(), t(11)).expect("view");
        assert_eq!(v.health, Health::Healthy, "{:?}", v.problems);
    }

    #[test]
    fn health_summary_and_problems_follow_reports() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        // 8 of 100 probes lost: at least 1 % (warning) with confidence, not at least 5 %.
        f.ingest(&report("bb", 1, 0, 8.0), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Warning);
        assert_eq!(
            v.nodes,
            NodeCounts {
                known: 2,
                reporting: 2,
                warning: 1,
                critical: 0,
                ..Default::default()
            }
        );
        assert_eq!(v.summary.worst_loss_percent, Some(8.0));
        assert_eq!(v.summary.rdma_ports_active, 2);
        assert_eq!(v.problems.len(), 1);
        assert_eq!(
            (
                v.problems[0].node.as_str(),
                v.problems[0].component.as_str()
            ),
            ("bb", "ping/other")
        );
        // Second report: the problem keeps its first-seen time; RDMA rates now exist.
        f.ingest(&report("bb", 2, 10, 9.0), None, t(10));
        let v = f.view(&target(), t(11)).expect("view");
        let ping = v
            .problems
            .iter()
            .find(|p| p.component == "ping/other")
            .expect("ping problem");
        assert_eq!(ping.since, t(0));
        // symbol_error went 10 → 20 in 10 s: 60 per minute → Critical for rdma errors,
        // listed first.
        assert_eq!(v.health, Health::Critical);
        assert_eq!(
            (v.problems[0].component.as_str(), v.problems[0].since),
            ("rdma/mlx5_0/1/errors", t(10))
        );
        assert_eq!(v.summary.rdma_errors_per_minute, Some(60.0));
    }

    /// A three-node mesh where every probe to or from `bad` is lost with `loss` percent.
    fn mesh_round(f: &mut Fleet, seq: u64, bad: Option<&str>, loss: u32) {
        let names = ["n1", "n2", "n3"];
        for me in names {
            let ping = names
                .iter()
                .filter(|p| **p != me)
                .map(|p| {
                    let lost = if bad == Some(me) || bad == Some(*p) {
                        loss
                    } else {
                        0
                    };
                    PeerReport {
                        sent: 100,
                        received: 100 - lost,
                        ..peer(p, f64::from(lost), 0.001)
                    }
                })
                .collect();
            let at = 10 * seq as i64;
            f.ingest(
                &AgentReport {
                    ping,
                    rdma: vec![],
                    ..report(me, seq, at, 0.0)
                },
                None,
                t(at),
            );
        }
    }

    #[test]
    fn a_bad_node_is_the_suspect_and_replaces_its_pair_problems() {
        let mut f = Fleet::new(Settings::default());
        for seq in 1..=3 {
            mesh_round(&mut f, seq, None, 0);
        }
        assert!(f.localize_all(t(31)).is_empty());
        assert!(f.suspects(&target()).is_empty());
        mesh_round(&mut f, 4, Some("n2"), 40);
        let changes = f.localize_all(t(41));
        assert!(
            matches!(&changes[..], [SuspectChange::Appeared(_, s)] if s.name == "node/n2"),
            "{changes:?}"
        );
        let v = f.view(&target(), t(41)).expect("view");
        assert_eq!(v.health, Health::Critical);
        assert_eq!(v.suspects.len(), 1);
        assert_eq!(v.suspects[0].since, t(41));
        assert_eq!(
            v.suspects[0].problems, 4,
            "four pair problems grouped under it"
        );
        assert!(
            v.problems.iter().all(|p| !p.component.starts_with("ping/")),
            "{:?}",
            v.problems
        );
        // The suspect keeps its first-seen time, then clears with the fault.
        mesh_round(&mut f, 5, Some("n2"), 40);
        f.localize_all(t(51));
        assert_eq!(f.suspects(&target())[0].since, t(41));
        for seq in 6..=14 {
            mesh_round(&mut f, seq, None, 0);
        }
        let changes = f.localize_all(t(141));
        assert!(
            matches!(&changes[..], [SuspectChange::Cleared(_, n)] if n == "node/n2"),
            "{changes:?}"
        );
        assert_eq!(
            f.view(&target(), t(141)).expect("view").health,
            Health::Healthy
        );
        let s = f.series_values(&target(), Metric::NodeSuspect, Scope::PerNode, t(141));
        assert!(s.values().all(|v| *v == 0.0));
    }

    #[test]
    fn desired_nodes_that_never_report_keep_the_target_out_of_healthy() {
        let mut f = Fleet::new(Settings::default());
        f.configure(
            target(),
            TargetConfig {
                desired_nodes: Some(3),
                ..TargetConfig::default()
            },
        );
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!((v.nodes.missing, v.nodes.desired), (1, Some(3)));
        assert_eq!(v.health, Health::Warning);
        f.ingest(&report("ccc", 1, 0, 0.0), None, t(0));
        assert_eq!(
            f.view(&target(), t(1)).expect("view").health,
            Health::Healthy
        );
    }

    #[test]
    fn node_conditions_feed_node_health_and_suspects() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        f.set_node_conditions(BTreeMap::from([(
            "bb".to_string(),
            NodeConditions {
                not_ready: true,
                ..Default::default()
            },
        )]));
        f.localize_all(t(1));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        assert_eq!(v.suspects[0].name, "node/bb");
        assert!(v
            .problems
            .iter()
            .any(|p| p.component == "host/condition/Ready"));
        let n = f.nodes(&target(), t(1)).expect("nodes");
        assert_eq!(n[1].health, Health::Critical);
    }

    #[test]
    fn silent_node_is_unknown_and_reported_as_a_problem() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        f.ingest(&report("a", 2, 40, 0.0), None, t(40));
        let v = f.view(&target(), t(40)).expect("view");
        assert_eq!(v.nodes.reporting, 1);
        assert_eq!(
            v.health,
            Health::Critical,
            "a silent node makes the target Critical (API doc)"
        );
        assert_eq!(v.problems[0].component, "agent");
        let nodes = f.nodes(&target(), t(40)).expect("nodes");
        assert_eq!(
            nodes.iter().find(|n| n.node == "bb").map(|n| n.health),
            Some(Health::Unknown)
        );
        let silent = f.series_values(&target(), Metric::AgentsNotReporting, Scope::Target, t(40));
        assert_eq!(silent.values().copied().collect::<Vec<_>>(), vec![1.0]);
        // And a silent node is no longer anyone's peer.
        assert!(f.peers(&target(), "a", t(40)).is_empty());
        assert_eq!(f.forget_silent(t(40) + Duration::hours(2)), 2);
    }

    #[test]
    fn peers_exclude_self_and_honour_max_peers() {
        let mut f = Fleet::new(Settings::default());
        for i in 0..10 {
            f.ingest(
                &AgentReport {
                    node_ip: Some(format!("10.0.0.{i}")),
                    ..report(&format!("n{i}"), 1, 0, 0.0)
                },
                None,
                t(0),
            );
        }
        let out = f.ingest(
            &AgentReport {
                node_ip: Some("10.0.0.0".into()),
                ..report("n0", 2, 10, 0.0)
            },
            None,
            t(10),
        );
        assert_eq!(out.peers.len(), 9);
        assert!(out.peers.iter().all(|p| p.node != "n0"));
        f.configure(
            target(),
            TargetConfig {
                max_peers: Some(3),
                ..TargetConfig::default()
            },
        );
        assert_eq!(f.peers(&target(), "n0", t(10)).len(), 3);
    }

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

    #[test]
    fn series_values_per_peer_port_and_target() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 1.0), None, t(0));
        f.ingest(&report("a", 2, 60, 4.0), None, t(60));
        f.ingest(&report("bb", 1, 60, 7.0), None, t(60));
        let loss = f.series_values(&target(), Metric::PingLossPercent, Scope::PerNode, t(61));
        assert_eq!(
            loss.get(&SeriesKey {
                node: Some("a".into()),
                peer: Some("other".into()),
                ..Default::default()
            }),
            Some(&4.0)
        );
        let sym = f.series_values(
            &target(),
            Metric::RdmaSymbolErrorsPerMinute,
            Scope::PerNode,
            t(61),
        );
        // node a: 10 → 20 over 60 s = 10/min on mlx5_0/1; bb has no previous counters.
        assert_eq!(sym.len(), 1);
        assert_eq!(sym.values().next(), Some(&10.0));
        let worst = f.series_values(&target(), Metric::PingLossPercent, Scope::Target, t(61));
        assert_eq!(worst, BTreeMap::from([(SeriesKey::default(), 7.0)]));
        assert!(
            f.series_values(&target(), Metric::CpuUsagePercent, Scope::Target, t(1000))
                .is_empty(),
            "all stale"
        );
    }

    #[test]
    fn a_resent_report_counts_once() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("a", 2, 10, 4.0), None, t(10));
        f.ingest(&report("a", 2, 10, 4.0), None, t(11));
        let h = f
            .history(&target(), "a", "ping_loss_percent")
            .expect("history");
        assert_eq!(h.len(), 2, "the retry is not a third sample");
        let n = f.nodes(&target(), t(11)).expect("nodes");
        assert_eq!(n[0].agent_restarts, 0);
    }

    #[test]
    fn agent_restart_is_detected_and_does_not_invent_rates() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 5, 0, 0.0), None, t(0));
        let out = f.ingest(&report("a", 1, 10, 0.0), None, t(10));
        assert!(out.agent_restarted);
        let n = f.nodes(&target(), t(10)).expect("nodes");
        assert_eq!(n[0].agent_restarts, 1);
        assert_eq!(n[0].latest.rdma_errors_per_minute, None);
    }
}
