//! The collectors of `MonitorTarget.spec`: `rdma`, `ping`, `host`.
//!
//! The link-layer mode and the ping protocol are the agent config's own enums
//! ([`RdmaMode`], [`ProbeProtocol`] from `fabricwatch_proto`), re-exported here. The
//! sections themselves are CRD types, turned into the agent's sections by the controller:
//! `ping.timeout` is text (`1s`) where the agent takes seconds, `ping.peers` selects peers
//! (analytics assigns them), and `rdma.sysfsRoot` / `rdma.ethtool.statisticsDir` are host
//! paths that the agent sees at fixed mount points.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Duration;

pub use fabricwatch_proto::agent_config::RdmaMode;
pub use fabricwatch_proto::report::ProbeProtocol;

fn default_true() -> bool {
    true
}

/// RDMA collector: reads `class/infiniband/<device>/ports/<port>/{state,phys_state,rate,
/// counters/*,hw_counters/*}` under the node's sysfs (kernel ABI
/// `Documentation/ABI/stable/sysfs-class-infiniband`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RdmaSpec {
    /// Collect RDMA metrics.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Device names to watch (e.g. `mlx5_0`); empty: all devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub devices: Vec<String>,
    /// Which link layers to watch.
    #[serde(default)]
    pub mode: RdmaMode,
    /// Also read the driver-specific `hw_counters/` directory.
    #[serde(default = "default_true")]
    pub hw_counters: bool,
    /// Host directory mounted read-only as the agent's sysfs (`/host/sys`). Default `/sys`;
    /// point it elsewhere only for test fixtures or unusual hosts.
    #[serde(default = "default_sysfs_root")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^/"))]
    pub sysfs_root: String,
    /// Ethernet driver statistics (PFC pauses, discards, pause storms) and DCQCN settings of
    /// RoCE ports' netdevs.
    #[serde(default)]
    pub ethtool: EthtoolSpec,
}

fn default_sysfs_root() -> String {
    "/sys".into()
}

/// Ethernet statistics of RoCE netdevs: read with the `SIOCETHTOOL` ioctl (`ETHTOOL_GSTATS`)
/// for mlx5_core, bnxt_en and ice; other drivers export nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EthtoolSpec {
    /// Read the statistics and DCQCN settings.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Host directory mounted read-only into the agent, holding `<netdev>/statistics`
    /// (`ethtool -S` output) and `<netdev>/driver` (`ethtool -i` output), read instead of
    /// the kernel; for test fixtures on nodes without the NICs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^/"))]
    pub statistics_dir: Option<String>,
}

impl Default for EthtoolSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            statistics_dir: None,
        }
    }
}

impl Default for RdmaSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            devices: Vec::new(),
            mode: RdmaMode::Auto,
            hw_counters: true,
            sysfs_root: default_sysfs_root(),
            ethtool: EthtoolSpec::default(),
        }
    }
}

/// Ping mesh: each agent probes its peers every interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingSpec {
    /// Probe peers.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// ICMP echo or TCP connect.
    #[serde(default)]
    pub protocol: ProbeProtocol,
    /// Port for TCP probes.
    #[serde(default = "default_tcp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub tcp_port: u16,
    /// Which nodes each agent probes.
    #[serde(default)]
    pub peers: PeersSpec,
    /// Extra host names or IPs every agent probes (gateway, storage heads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 253)))]
    pub external_targets: Vec<String>,
    /// Per-probe timeout, e.g. `1s`; shorter than `interval`.
    #[serde(default = "default_ping_timeout")]
    pub timeout: Duration,
    /// Probes sent to each peer per interval (loss resolution is 100/packetsPerProbe %).
    #[serde(default = "default_packets")]
    #[schemars(range(min = 1, max = 100))]
    pub packets_per_probe: u32,
}

fn default_tcp_port() -> u16 {
    22
}
fn default_ping_timeout() -> Duration {
    Duration::new("1s")
}
fn default_packets() -> u32 {
    5
}

impl Default for PingSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            protocol: ProbeProtocol::Icmp,
            tcp_port: default_tcp_port(),
            peers: PeersSpec::default(),
            external_targets: Vec::new(),
            timeout: default_ping_timeout(),
            packets_per_probe: default_packets(),
        }
    }
}

/// Peer selection. Analytics assigns each agent its peers in the push response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeersSpec {
    /// Most peers per agent, chosen by rendezvous (highest-random-weight) hashing so that
    /// assignments stay stable as nodes come and go. Absent: every other node (full mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_peers: Option<u32>,
    /// Node label (e.g. `topology.kubernetes.io/zone`) whose values should all be covered:
    /// with `maxPeers`, each agent gets at least one peer per value before the rest are hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: Option<String>,
}

/// Host collector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    /// Collect host metrics.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Mount points to watch (e.g. `/`, `/var/lib/kubelet`); empty: every real filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 256)))]
    pub filesystems: Vec<String>,
    /// Network interfaces to watch; empty: every interface but `lo`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 15)))]
    pub netdevs: Vec<String>,
}

impl Default for HostSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            filesystems: Vec::new(),
            netdevs: Vec::new(),
        }
    }
}
