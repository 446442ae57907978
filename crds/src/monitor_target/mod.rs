//! `MonitorTarget`: which nodes to watch and with which collectors.
//!
//! This module holds the kind: [`MonitorTargetSpec`] with its checks
//! ([`MonitorTargetSpec::validate`]) and [`MonitorTargetStatus`] with what analytics writes
//! into it. The spec's sections live in submodules and are re-exported here:
//! * [`collectors`]: `rdma`, `ping`, `host`;
//! * [`agent_pods`]: `agent` (Pod settings) and `scrape` (PodMonitor);
//! * `thresholds` is the agent config's [`ThresholdsConfig`] (with [`Level`]) from
//!   `fabricwatch_proto`, so the levels people write are the levels the agents apply;
//! * `endpoints` is in [`crate::endpoint`].

// Each `printcolumn(...)` repeats keys such as `type_ = "date"`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{check_duration, conditions_schema, Condition, Duration, Severity, Time};
use crate::validation::Errors;

pub mod agent_pods;
pub mod collectors;

pub use agent_pods::{AgentSpec, PodMonitorMode, PullPolicy, ScrapeSpec};
pub use collectors::{
    EthtoolSpec, HostSpec, PeersSpec, PingSpec, ProbeProtocol, RdmaMode, RdmaSpec,
};
pub use fabricwatch_proto::agent_config::{Level, ThresholdsConfig};

/// Most problems kept in `status.problems`.
pub const MAX_PROBLEMS: usize = 20;

/// Most suspects in `status.suspects`.
pub const MAX_SUSPECTS: usize = 10;

/// What to watch on which nodes: the controller runs one agent per selected node (a
/// DaemonSet) with the collectors enabled here; analytics writes the fabric's health back
/// into `status`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fabricwatch.io",
    version = "v1alpha1",
    kind = "MonitorTarget",
    plural = "monitortargets",
    singular = "monitortarget",
    shortname = "mt",
    category = "fabricwatch",
    namespaced,
    status = "MonitorTargetStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "MonitorTarget selects nodes and collectors (RDMA, ping mesh, host); the operator runs an agent on each selected node and reports the fabric's health in status.",
    printcolumn(
        name = "Health",
        type_ = "string",
        json_path = ".status.health",
        description = "Healthy, Warning, Critical or Unknown"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.nodes.ready",
        description = "Agents ready"
    ),
    printcolumn(
        name = "Reporting",
        type_ = "integer",
        json_path = ".status.nodes.reporting",
        description = "Agents that reported recently"
    ),
    printcolumn(
        name = "Loss",
        type_ = "number",
        json_path = ".status.summary.worstLossPercent",
        description = "Worst ping loss percent over the nodes"
    ),
    printcolumn(
        name = "RTT-p99",
        type_ = "string",
        json_path = ".status.summary.rttP99",
        description = "Ping RTT 99th percentile, seconds"
    ),
    printcolumn(
        name = "RDMA-Down",
        type_ = "integer",
        json_path = ".status.summary.rdmaPortsDown",
        description = "RDMA ports not ACTIVE"
    ),
    printcolumn(
        name = "Suspect",
        type_ = "string",
        json_path = ".status.suspects[0].name",
        description = "Most likely place of a fault, e.g. node/fw-n2"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MonitorTargetSpec {
    /// Labels a node must have to run an agent (all must match). Empty: every node the
    /// tolerations allow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the agent Pods, e.g. to run on tainted GPU nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,
    /// How often the agents collect and report, e.g. `10s`. At least 1s.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// RDMA (InfiniBand / RoCE) port state and counters from sysfs.
    #[serde(default)]
    pub rdma: RdmaSpec,
    /// Node-to-node ping mesh.
    #[serde(default)]
    pub ping: PingSpec,
    /// Host CPU, memory, filesystems and network interfaces from procfs.
    #[serde(default)]
    pub host: HostSpec,
    /// Warning and critical levels that decide node and target health.
    #[serde(default)]
    pub thresholds: ThresholdsConfig,
    /// Agent Pod settings.
    #[serde(default)]
    pub agent: AgentSpec,
    /// Prometheus Operator scraping of the agents.
    #[serde(default)]
    pub scrape: ScrapeSpec,
    /// Services every agent probes from its node (HTTP, TCP, DNS): node-to-service
    /// reachability, latency phases, certificate expiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub endpoints: Vec<crate::endpoint::EndpointSpec>,
}

impl Default for MonitorTargetSpec {
    fn default() -> Self {
        Self {
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            interval: default_interval(),
            rdma: RdmaSpec::default(),
            ping: PingSpec::default(),
            host: HostSpec::default(),
            thresholds: ThresholdsConfig::default(),
            agent: AgentSpec::default(),
            scrape: ScrapeSpec::default(),
            endpoints: Vec::new(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::new("10s")
}

/// Overall health of a target or node: the one [`fabricwatch_proto::Health`] (PascalCase
/// in the API; `Unknown` when no agent reported recently).
pub use fabricwatch_proto::Health;

/// Observed state, written by the operator (`observedGeneration`, `conditions` Accepted
/// and Ready, `nodes.desired`, `nodes.ready`) and by analytics (the rest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorTargetStatus {
    /// The `metadata.generation` the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted (spec valid), Ready (agents rolled out), Healthy, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Overall health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Agent counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeCounts>,
    /// Fabric-wide figures over the last window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Where the faults most likely are, most severe and most confident first: a node, a
    /// link (one pair) or a topology domain that explains the bad paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub suspects: Vec<Suspect>,
    /// The worst current problems, most severe first. Problems a suspect explains (its pair
    /// problems) are counted in that suspect instead of listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub problems: Vec<Problem>,
    /// When analytics last received a report from any agent of this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_time: Option<Time>,
}

/// Agent counts. `desired`/`ready` come from the DaemonSet, the rest from analytics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// Nodes that should run an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<i32>,
    /// Agent Pods ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<i32>,
    /// Agents that reported within the last three intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting: Option<i32>,
    /// Nodes in Warning health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<i32>,
    /// Nodes in Critical health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<i32>,
}

/// Fabric-wide figures over the last window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Highest ping loss percent of any node pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_loss_percent: Option<f64>,
    /// 99th percentile of ping RTT over all pairs, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p99_seconds: Option<f64>,
    /// The same for people, e.g. `214µs`, `1.25ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub rtt_p99: Option<String>,
    /// RDMA ports in state ACTIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_ports_active: Option<i32>,
    /// RDMA ports in any other state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_ports_down: Option<i32>,
    /// RDMA error counter increments per minute, summed over ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_errors_per_minute: Option<f64>,
    /// Series currently flagged anomalous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<i32>,
}

/// What a suspect is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuspectKind {
    /// One node: its NIC, its link to the switch, or its host.
    Node,
    /// One pair of nodes.
    Link,
    /// A topology domain (a value of `spec.ping.peers.topologyKey`, e.g. a rack).
    Domain,
}

/// Where a suspect's trouble most likely is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuspectCause {
    /// In the network: NIC, cable, switch port, switch.
    Network,
    /// On the host: CPU or memory pressure, Node conditions, the agent's own side.
    Host,
    /// The node is down or unreachable: its agent is silent and peers lose every probe.
    Down,
    /// The agent is silent but peers still reach the node.
    Agent,
}

/// One suspect of fault localization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suspect {
    /// `node/<name>`, `link/<a>–<b>` or `domain/<value>`.
    #[schemars(length(max = 520))]
    pub name: String,
    /// Node, link or domain.
    pub kind: SuspectKind,
    /// The node, for a node suspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub node: Option<String>,
    /// The two ends of a link, or the members of a domain (at most 16 listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub nodes: Vec<String>,
    /// The domain's label value, for a domain suspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub domain: Option<String>,
    /// Network, host, down or agent.
    pub cause: SuspectCause,
    /// How bad.
    pub severity: Severity,
    /// 0–1: the share of the suspect's paths that are bad (for a link, how clean its ends
    /// are elsewhere).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// What points at it: how many of its paths are bad, the loss, counters, conditions.
    #[schemars(length(max = 1024))]
    pub evidence: String,
    /// Pair problems it explains (not listed in `problems`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems: Option<i32>,
    /// Since when it is continuously a suspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// Part of the fabric a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// RDMA ports and counters.
    Rdma,
    /// Node-to-node reachability, loss, latency.
    Ping,
    /// CPU, memory, filesystems, interfaces.
    Host,
    /// The agent itself (not reporting, crashing).
    Agent,
    /// An endpoint probe (`spec.endpoints[]`) from the node: down, slow, certificate
    /// expiring.
    Endpoint,
}

/// One current problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Node the problem is on.
    #[schemars(length(max = 253))]
    pub node: String,
    /// Part of the fabric.
    pub component: Component,
    /// How bad.
    pub severity: Severity,
    /// What is wrong, e.g. `mlx5_0 port 1 state DOWN`.
    #[schemars(length(max = 1024))]
    pub message: String,
    /// Since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

impl MonitorTargetSpec {
    /// Checks what the schema cannot: durations parse, timeout shorter than interval,
    /// thresholds ordered, at least one collector enabled.
    ///
    /// # Errors
    /// Every problem, each with its field path.
    pub fn validate(&self) -> Result<(), Errors> {
        let mut e = Errors::default();
        let min = std::time::Duration::from_secs(1);
        let interval = check_duration(&mut e, "spec.interval", &self.interval, min);
        if self.ping.enabled {
            let timeout = check_duration(
                &mut e,
                "spec.ping.timeout",
                &self.ping.timeout,
                std::time::Duration::from_millis(10),
            );
            if let (Some(i), Some(t)) = (interval, timeout) {
                if t >= i {
                    e.push(
                        "spec.ping.timeout",
                        format!(
                            "must be shorter than spec.interval ({} >= {})",
                            self.ping.timeout, self.interval
                        ),
                    );
                }
            }
        }
        crate::endpoint::validate(&self.endpoints, &mut e);
        if let Some(si) = &self.scrape.interval {
            check_duration(&mut e, "spec.scrape.interval", si, min);
        }
        if !self.rdma.enabled && !self.ping.enabled && !self.host.enabled {
            e.push("spec", "enable at least one collector (rdma, ping or host)");
        }
        if self.rdma.sysfs_root.split('/').any(|c| c == "..") {
            e.push("spec.rdma.sysfsRoot", "must not contain '..'");
        }
        if let Some(d) = &self.rdma.ethtool.statistics_dir {
            if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
                e.push(
                    "spec.rdma.ethtool.statisticsDir",
                    "must be an absolute path without '..'",
                );
            }
        }
        let t = &self.thresholds;
        for (name, level, higher_is_worse, max) in [
            ("cpuUsagePercent", t.cpu_usage_percent, true, Some(100.0)),
            (
                "memoryUsedPercent",
                t.memory_used_percent,
                true,
                Some(100.0),
            ),
            ("diskFreePercent", t.disk_free_percent, false, Some(100.0)),
            ("lossPercent", t.loss_percent, true, Some(100.0)),
            ("rttP99Seconds", t.rtt_p99_seconds, true, None),
            ("rdmaErrorsPerMinute", t.rdma_errors_per_minute, true, None),
            ("rdmaPausePercent", t.rdma_pause_percent, true, Some(100.0)),
            (
                "rdmaDiscardsPerMinute",
                t.rdma_discards_per_minute,
                true,
                None,
            ),
            (
                "tlsCertificateExpiryDays",
                t.tls_certificate_expiry_days,
                false,
                None,
            ),
        ] {
            let p = format!("spec.thresholds.{name}");
            for (which, v) in [("warning", level.warning), ("critical", level.critical)] {
                if !v.is_finite() || v < 0.0 || max.is_some_and(|m| v > m) {
                    let range = max.map_or("a finite number >= 0".to_string(), |m| {
                        format!("between 0 and {m}")
                    });
                    e.push(format!("{p}.{which}"), format!("must be {range}, got {v}"));
                }
            }
            if higher_is_worse && level.warning > level.critical {
                e.push(
                    p,
                    format!(
                        "warning ({}) must not exceed critical ({})",
                        level.warning, level.critical
                    ),
                );
            } else if !higher_is_worse && level.warning < level.critical {
                e.push(
                    p,
                    format!(
                        "warning ({}) must not be below critical ({}): lower {} is worse",
                        level.warning,
                        level.critical,
                        if name == "diskFreePercent" {
                            "free space"
                        } else {
                            "days left"
                        }
                    ),
                );
            }
        }
        e.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MonitorTargetSpec {
        serde_yaml::from_str(yaml).expect("spec parses")
    }

    #[test]
    fn empty_spec_takes_documented_defaults() {
        let s = spec("{}");
        assert_eq!(s.interval.as_str(), "10s");
        assert!(s.rdma.enabled && s.ping.enabled && s.host.enabled);
        assert_eq!(s.rdma.sysfs_root, "/sys");
        assert_eq!(s.ping.packets_per_probe, 5);
        assert_eq!(s.ping.timeout.as_str(), "1s");
        assert_eq!(s.scrape.pod_monitor, PodMonitorMode::Auto);
        assert_eq!(s.thresholds, ThresholdsConfig::default());
        assert_eq!(s, MonitorTargetSpec::default());
        s.validate().expect("defaults are valid");
    }

    #[test]
    fn partial_thresholds_keep_other_defaults() {
        let s = spec("thresholds: {lossPercent: {warning: 2, critical: 10}}");
        assert_eq!(s.thresholds.loss_percent.critical, 10.0);
        assert_eq!(s.thresholds.cpu_usage_percent.warning, 70.0);
    }

    #[test]
    fn validation_catalogue() {
        let cases = [
            (
                "interval: 500ms",
                "spec.interval: must be at least 1s, got 500ms",
            ),
            (
                "interval: 10x",
                "spec.interval: invalid duration \"10x\": unknown unit \"x\"",
            ),
            (
                "interval: 2s\nping: {timeout: 2s}",
                "spec.ping.timeout: must be shorter than spec.interval (2s >= 2s)",
            ),
            (
                "ping: {timeout: 1ms}",
                "spec.ping.timeout: must be at least 10ms",
            ),
            (
                "rdma: {enabled: false}\nping: {enabled: false}\nhost: {enabled: false}",
                "spec: enable at least one collector (rdma, ping or host)",
            ),
            (
                "thresholds: {cpuUsagePercent: {warning: 95, critical: 90}}",
                "spec.thresholds.cpuUsagePercent: warning (95) must not exceed critical (90)",
            ),
            (
                "thresholds: {diskFreePercent: {warning: 5, critical: 10}}",
                "spec.thresholds.diskFreePercent: warning (5) must not be below critical (10)",
            ),
            (
                "thresholds: {lossPercent: {warning: 1, critical: 150}}",
                "spec.thresholds.lossPercent.critical: must be between 0 and 100, got 150",
            ),
            (
                "rdma: {sysfsRoot: /srv/../sys}",
                "spec.rdma.sysfsRoot: must not contain '..'",
            ),
            (
                "scrape: {interval: 0s}",
                "spec.scrape.interval: must be at least 1s, got 0s",
            ),
        ];
        for (yaml, want) in cases {
            let err = spec(yaml).validate().expect_err(yaml).to_string();
            assert!(err.contains(want), "{yaml}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn endpoint_checks_beyond_the_schema() {
        let cases = [
            (
                "endpoints: [{name: a, tcp: {host: a, port: 1}}, {name: a, dns: {name: a.}}]",
                "spec.endpoints[1].name: duplicate name \"a\"",
            ),
            (
                "endpoints: [{name: a, http: {url: 'https://'}}]",
                "spec.endpoints[0].http.url: invalid URL: empty host",
            ),
            (
                "endpoints: [{name: a, http: {url: 'ftp://a/x'}}]",
                "spec.endpoints[0].http.url: must be an http:// or https:// URL with a host",
            ),
            (
                "endpoints: [{name: a, http: {url: 'http://a/', method: HEAD, bodyMatch: ok}}]",
                "spec.endpoints[0].http.bodyMatch: HEAD responses have no body",
            ),
            (
                "endpoints: [{name: a, dns: {name: a., resolver: 'dns.local'}}]",
                "spec.endpoints[0].dns.resolver: must be an IP address or ip:port, got \"dns.local\"",
            ),
        ];
        for (yaml, want) in cases {
            let err = spec(yaml).validate().expect_err(yaml).to_string();
            assert!(err.contains(want), "{yaml}\n got: {err}\nwant: {want}");
        }
        let ok = spec(
            "endpoints: [{name: api, http: {url: 'https://api.example.com/healthz', validStatusCodes: [200, 204], tls: {caConfigMapRef: {name: ca, key: ca.crt}, serverName: api}}, timeout: 3s, slow: 500ms}, {name: ns, dns: {name: a., resolver: '10.0.0.10:53'}}]",
        );
        ok.validate().expect("valid");
        let wire = ok.endpoints[0].to_wire(0).expect("durations parse");
        assert_eq!(wire.timeout_seconds, 3.0);
        assert_eq!(wire.slow_seconds, 0.5);
        let tls = wire.http.expect("http").tls;
        assert_eq!(
            tls.ca_file.as_deref(),
            Some("/etc/fabricwatch/endpoints/0/ca/ca.crt")
        );
        assert_eq!(tls.server_name.as_deref(), Some("api"));
        assert!(!tls.insecure_skip_verify);
    }

    #[test]
    fn ping_timeout_is_not_checked_when_ping_is_off() {
        spec("interval: 1s\nping: {enabled: false, timeout: 5s}")
            .validate()
            .expect("valid");
    }
}
