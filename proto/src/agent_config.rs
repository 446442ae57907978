//! The node agent's configuration file (YAML), as rendered by the controller into the
//! agent ConfigMap and as written by hand for standalone mode.
//!
//! Every field has a default, so `{}` is a valid config (standalone defaults). Durations are
//! seconds as numbers. The agent may override any field from the environment
//! (`FABRICWATCH_<SECTION>__<KEY>`) and some from flags; see the agent's README.

use serde::{Deserialize, Serialize};

use crate::{report::Peer, ObjectRef};

/// Default port of the agent's `/metrics`, `/healthz`, `/readyz`, `/status` server.
pub const DEFAULT_AGENT_PORT: u16 = 9470;

/// Root of the agent configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The MonitorTarget this agent serves (absent in standalone mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectRef>,
    /// Collection interval in seconds (> 0).
    pub interval_seconds: f64,
    /// Address for `/metrics`, `/healthz`, `/readyz`, `/status`.
    pub listen: String,
    /// Root under which `class/infiniband` is read (`/host/sys` in the pod).
    pub sysfs_root: String,
    /// Root of the proc filesystem to read (`/host/proc` in the pod).
    pub procfs_root: String,
    /// Where to push reports; absent in standalone mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<AnalyticsConfig>,
    /// RDMA collector.
    pub rdma: RdmaConfig,
    /// Ping-mesh collector.
    pub ping: PingConfig,
    /// Host collector.
    pub host: HostConfig,
    /// Health thresholds applied locally (standalone mode and `/status`).
    pub thresholds: ThresholdsConfig,
    /// Directory for periodic JSON snapshots (standalone mode); none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_dir: Option<String>,
    /// Endpoint probes this agent runs from its node (at most
    /// [`crate::endpoint::MAX_ENDPOINTS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::endpoint::EndpointConfig>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            target: None,
            interval_seconds: 10.0,
            listen: format!("0.0.0.0:{DEFAULT_AGENT_PORT}"),
            sysfs_root: "/sys".into(),
            procfs_root: "/proc".into(),
            analytics: None,
            rdma: RdmaConfig::default(),
            ping: PingConfig::default(),
            host: HostConfig::default(),
            thresholds: ThresholdsConfig::default(),
            snapshot_dir: None,
            endpoints: Vec::new(),
        }
    }
}

/// Push target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Base URL of analytics, e.g. `http://fabricwatch-analytics.fabricwatch.svc:8080`.
    pub url: String,
    /// File holding the bearer token (the projected ServiceAccount token), re-read on every push.
    pub token_file: String,
    /// Per-push timeout in seconds.
    pub timeout_seconds: f64,
    /// Unsent reports kept while analytics is unreachable (oldest dropped first).
    pub buffer_reports: usize,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            token_file: "/var/run/secrets/fabricwatch/token".into(),
            timeout_seconds: 5.0,
            buffer_reports: 60,
        }
    }
}

/// Which link layers the RDMA collector watches (`spec.rdma.mode` of a MonitorTarget, `rdma.mode`
/// of the agent config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RdmaMode {
    /// Every port, whatever its link layer.
    #[default]
    Auto,
    /// Only InfiniBand ports (`link_layer` InfiniBand).
    Infiniband,
    /// Only RoCE ports (`link_layer` Ethernet).
    Roce,
}

/// RDMA collector settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RdmaConfig {
    /// Collect RDMA metrics.
    pub enabled: bool,
    /// Device names to watch; empty means all.
    pub devices: Vec<String>,
    /// Which link layers to watch.
    pub mode: RdmaMode,
    /// Also read `hw_counters/` (driver-specific counters).
    pub hw_counters: bool,
    /// Ethernet driver statistics and DCQCN settings of RoCE netdevs.
    pub ethtool: EthtoolConfig,
}

impl Default for RdmaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            devices: Vec::new(),
            mode: RdmaMode::Auto,
            hw_counters: true,
            ethtool: EthtoolConfig::default(),
        }
    }
}

/// Where the Ethernet driver statistics of RoCE netdevs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EthtoolConfig {
    /// Read the statistics (`ETHTOOL_GSTATS`) and DCQCN settings of each RoCE netdev.
    pub enabled: bool,
    /// Read the statistics from `<dir>/<netdev>/statistics` (`ethtool -S` output) and the
    /// driver from `<dir>/<netdev>/driver` (`ethtool -i` output) instead of asking the
    /// kernel: node_exporter's fixture layout, for nodes without the hardware (tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics_dir: Option<String>,
}

impl Default for EthtoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            statistics_dir: None,
        }
    }
}

/// Ping-mesh collector settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PingConfig {
    /// Probe peers.
    pub enabled: bool,
    /// ICMP echo or TCP connect.
    pub protocol: crate::report::ProbeProtocol,
    /// Port for TCP probes.
    pub tcp_port: u16,
    /// Per-probe timeout in seconds.
    pub timeout_seconds: f64,
    /// Probes sent to each peer per interval.
    pub packets_per_probe: u32,
    /// Static mesh peers (analytics' push response replaces them when present).
    pub peers: Vec<Peer>,
    /// Extra hosts or IPs to probe (gateway, storage head). Standalone default: the default gateway.
    pub external_targets: Vec<String>,
}

impl Default for PingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            protocol: crate::report::ProbeProtocol::Icmp,
            tcp_port: 22,
            timeout_seconds: 1.0,
            packets_per_probe: 5,
            peers: Vec::new(),
            external_targets: Vec::new(),
        }
    }
}

/// Host collector settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HostConfig {
    /// Collect host metrics.
    pub enabled: bool,
    /// Mount points to watch; empty means every real (non-virtual) filesystem.
    pub filesystems: Vec<String>,
    /// Interfaces to watch; empty means every interface but `lo`.
    pub netdevs: Vec<String>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            filesystems: Vec::new(),
            netdevs: Vec::new(),
        }
    }
}

/// A warning/critical pair. For "higher is worse" values warning <= critical; for
/// `diskFreePercent` and `tlsCertificateExpiryDays` (lower is worse) warning >= critical.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Level {
    /// Warning at or beyond this value.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0)))]
    pub warning: f64,
    /// Critical at or beyond this value.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0)))]
    pub critical: f64,
}

/// Health thresholds: `spec.thresholds` of a MonitorTarget (the controller copies them into
/// the agent config) and `thresholds` of the agent config (applied locally in standalone
/// mode and for `/status`). A missing field takes its default: cpu 70/90 %, memory 70/90 %,
/// disk free 20/10 %, loss 1/5 %, RTT p99 0.005/0.020 s, RDMA errors 1/10 per minute, RoCE
/// pause time 10/50 %, RoCE discards 1/10 per minute, certificate expiry 14/3 days. The
/// field docs are the CRD's field descriptions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// CPU usage percent, 0-100 (higher is worse).
    pub cpu_usage_percent: Level,
    /// Memory used percent, 0-100 (higher is worse).
    pub memory_used_percent: Level,
    /// Filesystem free percent, 0-100 (LOWER is worse: warning >= critical).
    pub disk_free_percent: Level,
    /// Ping loss percent, 0-100 (higher is worse).
    pub loss_percent: Level,
    /// Ping RTT 99th percentile in seconds (higher is worse).
    pub rtt_p99_seconds: Level,
    /// RDMA error counter increments per minute: symbol errors, link integrity errors,
    /// port receive errors (higher is worse).
    pub rdma_errors_per_minute: Level,
    /// Share of time a RoCE port was paused (PFC or link-level pause) on its busiest
    /// priority, percent, from the driver's pause-duration statistics (higher is worse).
    /// Default 10/50. A pause storm the NIC reports (`tx_pause_storm_error_events`) is
    /// Critical whatever this says.
    // 10/50: a lossless class held a tenth of the time has lost that share of its
    // throughput, and one held half the time is close to head-of-line blocking the fabric.
    pub rdma_pause_percent: Level,
    /// Packets a RoCE port dropped for lack of buffers or for congestion, per minute
    /// (higher is worse). Default 1/10.
    // Like the error counters: a lossless class should drop nothing.
    pub rdma_discards_per_minute: Level,
    /// Days until the earliest certificate of a TLS endpoint expires (LOWER is worse:
    /// warning >= critical). Default 14/3.
    // Two weeks leave time for a renewal by hand; three days is an outage in waiting. An
    // expired certificate fails the probe itself.
    pub tls_certificate_expiry_days: Level,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        Self {
            cpu_usage_percent: Level {
                warning: 70.0,
                critical: 90.0,
            },
            memory_used_percent: Level {
                warning: 70.0,
                critical: 90.0,
            },
            disk_free_percent: Level {
                warning: 20.0,
                critical: 10.0,
            },
            loss_percent: Level {
                warning: 1.0,
                critical: 5.0,
            },
            rtt_p99_seconds: Level {
                warning: 0.005,
                critical: 0.020,
            },
            rdma_errors_per_minute: Level {
                warning: 1.0,
                critical: 10.0,
            },
            rdma_pause_percent: Level {
                warning: 10.0,
                critical: 50.0,
            },
            rdma_discards_per_minute: Level {
                warning: 1.0,
                critical: 10.0,
            },
            tls_certificate_expiry_days: Level {
                warning: 14.0,
                critical: 3.0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_default_config() {
        let c: AgentConfig = serde_json::from_str("{}").expect("parse");
        assert_eq!(c, AgentConfig::default());
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let e = serde_json::from_str::<AgentConfig>(r#"{"ping":{"timeoutSecs":1}}"#)
            .expect_err("must fail");
        assert!(e.to_string().contains("timeoutSecs"), "{e}");
    }
}
