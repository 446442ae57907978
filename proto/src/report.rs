//! Agent → analytics report (`POST /api/v1/reports`, `schemaVersion` 1).
//!
//! The agent authenticates with `Authorization: Bearer <projected ServiceAccount token>`.
//! Analytics answers 200 with a [`PushResponse`] (the agent's ping peers), 400 for a
//! malformed body or unknown schema version, 401/403 for a bad token or a pod that belongs
//! to no MonitorTarget, 413 for a body over the size limit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ObjectRef;

/// Path of the report endpoint on analytics.
pub const REPORT_PATH: &str = "/api/v1/reports";
/// Schema version of [`AgentReport`] this crate writes.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One agent's report for one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    /// Always [`REPORT_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// The MonitorTarget this agent runs for.
    pub target: ObjectRef,
    /// Kubernetes node name (or the hostname in standalone mode).
    pub node: String,
    /// The node's address that peers should probe (the pod IP of a hostNetwork pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<String>,
    /// The agent pod's name, when running in Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Agent version (crate version).
    pub agent_version: String,
    /// Monotonic report sequence number since agent start; a drop means a restart.
    pub seq: u64,
    /// When the data in this report was collected.
    pub collected_at: DateTime<Utc>,
    /// The agent's collection interval, in seconds.
    pub interval_seconds: f64,
    /// The agent's own health state.
    pub agent_state: AgentState,
    /// Host metrics, when the host collector is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostReport>,
    /// Ping results per peer over the last interval, when the ping collector is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ping: Vec<PeerReport>,
    /// RDMA ports, when the rdma collector is enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdma: Vec<RdmaPortReport>,
    /// Latest result of each endpoint probe the agent runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::endpoint::EndpointReport>,
    /// Collector problems seen in this interval (bounded; see the agent's docs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collector_errors: Vec<CollectorError>,
}

/// The agent's health state machine: starting → running ⇄ degraded → error → stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentState {
    /// No collection has completed yet.
    #[default]
    Starting,
    /// Every enabled collector succeeded in the last cycle.
    Running,
    /// Some collector failed partly (e.g. skipped files, a peer unreachable by error).
    Degraded,
    /// An enabled collector failed entirely.
    Error,
    /// Shutting down.
    Stopped,
}

/// Host metrics from `/proc` (and `statvfs` for filesystems).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReport {
    /// CPU busy share over the interval, 0–100 (all CPUs together).
    pub cpu_usage_percent: f64,
    /// Number of online CPUs.
    pub cpus: u32,
    /// 1-minute load average.
    pub load1: f64,
    /// 5-minute load average.
    pub load5: f64,
    /// 15-minute load average.
    pub load15: f64,
    /// `MemTotal` in bytes.
    pub memory_total_bytes: u64,
    /// `MemAvailable` in bytes.
    pub memory_available_bytes: u64,
    /// `(MemTotal - MemAvailable) / MemTotal`, 0–100.
    pub memory_used_percent: f64,
    /// Swap in use, 0–100 (0 when there is no swap).
    pub swap_used_percent: f64,
    /// Seconds since boot; absent when `/proc/uptime` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<f64>,
    /// Filesystems watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filesystems: Vec<FilesystemReport>,
    /// Network devices watched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netdevs: Vec<NetdevReport>,
    /// Pressure stall information, when the kernel has PSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<PressureReport>,
}

/// One mounted filesystem.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilesystemReport {
    /// Mount point.
    pub mountpoint: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Bytes available to unprivileged users.
    pub avail_bytes: u64,
    /// `avail / size`, 0–100.
    pub free_percent: f64,
}

/// One network device, rates over the interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetdevReport {
    /// Interface name.
    pub name: String,
    /// Received bytes per second.
    pub rx_bytes_per_second: f64,
    /// Transmitted bytes per second.
    pub tx_bytes_per_second: f64,
    /// Receive errors per second.
    pub rx_errors_per_second: f64,
    /// Transmit errors per second.
    pub tx_errors_per_second: f64,
    /// Receive drops per second.
    pub rx_drops_per_second: f64,
    /// Transmit drops per second.
    pub tx_drops_per_second: f64,
}

/// PSI `avg10` values (percent of wall time stalled), from `/proc/pressure/*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PressureReport {
    /// `cpu some avg10`.
    pub cpu_some_avg10: f64,
    /// `memory some avg10`.
    pub memory_some_avg10: f64,
    /// `memory full avg10`.
    pub memory_full_avg10: f64,
    /// `io some avg10`.
    pub io_some_avg10: f64,
    /// `io full avg10`.
    pub io_full_avg10: f64,
}

/// Probe protocol of the ping mesh (`spec.ping.protocol` of a MonitorTarget, `ping.protocol`
/// of the agent config, and of each [`PeerReport`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProbeProtocol {
    /// ICMP echo (needs the `NET_RAW` capability, granted only when ping is on).
    #[default]
    Icmp,
    /// TCP connect to `tcpPort`.
    Tcp,
}

/// Ping results towards one peer over the last interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerReport {
    /// Peer node name, or the external target as configured.
    pub peer: String,
    /// Address probed.
    pub address: String,
    /// `true` for an `externalTargets` entry, `false` for a mesh peer.
    #[serde(default)]
    pub external: bool,
    /// Probe protocol.
    pub protocol: ProbeProtocol,
    /// Probes sent in the interval.
    pub sent: u32,
    /// Replies received in time.
    pub received: u32,
    /// `(sent - received) / sent`, 0–100.
    pub loss_percent: f64,
    /// Smallest RTT, seconds (absent when nothing was received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_seconds: Option<f64>,
    /// Mean RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_seconds: Option<f64>,
    /// Largest RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_seconds: Option<f64>,
    /// Median RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p50_seconds: Option<f64>,
    /// 99th percentile RTT, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p99_seconds: Option<f64>,
    /// RFC 3550 §6.4.1 interarrival jitter estimate, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_seconds: Option<f64>,
    /// Last probe error in the interval (e.g. "timeout", "host unreachable").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One RDMA port (`/sys/class/infiniband/<device>/ports/<port>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RdmaPortReport {
    /// Device name, e.g. `mlx5_0`.
    pub device: String,
    /// Port number (1-based, as in sysfs).
    pub port: u32,
    /// `link_layer`: `InfiniBand` or `Ethernet` (RoCE); empty when unknown (iWARP, OPA).
    pub link_layer: String,
    /// `state` without its number, e.g. `ACTIVE`, `DOWN`.
    pub state: String,
    /// `phys_state` without its number, e.g. `LinkUp`, `Disabled`.
    pub phys_state: String,
    /// Link rate in Gb/s, parsed from `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_gbps: Option<f64>,
    /// RoCE: the netdev behind the port (from `gid_attrs/ndevs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
    /// Cumulative counters under their kernel names (from `counters/` and `hw_counters/`),
    /// as read; `port_*_data` stay in 4-octet words here.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Per-second rates over the interval under the same kernel names; absent on the first
    /// report and after a counter reset.
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// Link flaps the agent observed since it started (`link_downed` increments plus
    /// ACTIVE → not ACTIVE transitions it saw).
    #[serde(default)]
    pub link_flaps_total: u64,
    /// Port and device identity (LID, SM, rate parts, GIDs, firmware); absent from agents
    /// that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<PortIdentity>,
    /// Ethernet driver statistics of the RoCE netdev (`ETHTOOL_GSTATS`) that the agent
    /// maps for this driver; absent when the port has no netdev, the driver is not one the
    /// agent knows, or the statistics could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethtool: Option<EthtoolReport>,
    /// DCQCN/ECN configuration of the RoCE netdev; absent when the driver does not expose
    /// it where the agent reads it (then the configuration is unknown, not disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcqcn: Option<DcqcnReport>,
}

/// Identity of an RDMA port and its device, from sysfs
/// (`Documentation/ABI/stable/sysfs-class-infiniband`, formats of
/// `drivers/infiniband/core/sysfs.c`). Every field is absent when its file is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortIdentity {
    /// `lid` (`0x%x`); 0 on RoCE ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<u32>,
    /// `sm_lid`: the subnet manager's LID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_lid: Option<u32>,
    /// `sm_sl`: the subnet manager's service level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_sl: Option<u8>,
    /// `lid_mask_count`: the LMC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmc: Option<u8>,
    /// Active link width from `rate`, e.g. `4X`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_width: Option<String>,
    /// Active link speed name from `rate`, e.g. `HDR` (absent when the kernel prints none,
    /// as older kernels do for SDR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_speed: Option<String>,
    /// Populated GID table entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gids: Vec<GidEntry>,
    /// Device `fw_ver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw_ver: Option<String>,
    /// Device `board_id` (the board type; firmware is compared within one board type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_id: Option<String>,
    /// Device `hca_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hca_type: Option<String>,
    /// Device `node_guid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_guid: Option<String>,
}

/// One GID table entry (`gids/<index>`, `gid_attrs/types/<index>`, `gid_attrs/ndevs/<index>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GidEntry {
    /// GID index.
    pub index: u32,
    /// The GID as the kernel prints it (`%pI6`, eight uncompressed groups).
    pub gid: String,
    /// `IB/RoCE v1` or `RoCE v2`; absent when unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid_type: Option<String>,
    /// The netdev of a RoCE GID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
}

/// Ethernet driver statistics of a RoCE netdev, mapped from the driver's own names to
/// driver-independent signals.
///
/// Keys are `<signal>` for port-wide statistics and `<signal>/<priority>` (priority 0–7)
/// for per-priority ones. Signals: `pause_received`, `pause_transmitted` (PFC or 802.3x
/// pause frames), `pause_duration_received_microseconds`,
/// `pause_duration_transmitted_microseconds`, `pause_transitions_received`,
/// `pause_transitions_transmitted`, `pause_control_frames_received`,
/// `pause_control_frames_transmitted`, `discards_received`, `discards_transmitted`,
/// `buffer_discards`, `congestion_discards`, `ecn_marked`, `buffer_passed_threshold`,
/// `pause_storm_warning_events`, `pause_storm_error_events`, `out_of_buffer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EthtoolReport {
    /// Driver name (`ETHTOOL_GDRVINFO`), e.g. `mlx5_core`.
    pub driver: String,
    /// Cumulative values by key.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Per-second rates over the interval by key; absent on the first report and after a
    /// reset.
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// Priorities with PFC enabled, where the driver's statistics reveal it (mlx5 lists
    /// `rx_prio<N>_pause` only for PFC-enabled priorities); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfc_enabled_priorities: Option<Vec<u8>>,
}

/// DCQCN/ECN configuration as the vendor driver exposes it under
/// `/sys/class/net/<netdev>/ecn/` (MLNX_OFED `mlx5_core`; the upstream driver keeps the
/// parameters in debugfs and has no per-priority switches).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DcqcnReport {
    /// Priorities (0–7) with the reaction point enabled (`ecn/roce_rp/enable/<prio>` = 1).
    #[serde(default)]
    pub rp_enabled_priorities: Vec<u8>,
    /// Priorities with the notification point (CNP generation) enabled.
    #[serde(default)]
    pub np_enabled_priorities: Vec<u8>,
    /// Priorities whose enable file could not be read (neither enabled nor disabled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_priorities: Vec<u8>,
    /// Parameter files by `roce_rp/<name>` or `roce_np/<name>`, as integers.
    #[serde(default)]
    pub parameters: BTreeMap<String, i64>,
    /// `settings/pfc_stall_prevention` (`default` or `auto`), when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfc_stall_prevention: Option<String>,
}

/// A collector problem (a skipped file, a failed probe setup).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectorError {
    /// Collector: `rdma`, `ping`, `host` or `endpoint`.
    pub collector: String,
    /// What failed, e.g. a file path or a peer.
    pub subject: String,
    /// Human-readable error.
    pub message: String,
}

/// Analytics' answer to a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResponse {
    /// The mesh peers this agent should probe until the next answer.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// A collection interval the agent should switch to, when the MonitorTarget changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
}

/// A ping peer assigned by analytics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// Peer node name.
    pub node: String,
    /// Address to probe.
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_and_omits_empty_sections() {
        let r = AgentReport {
            schema_version: REPORT_SCHEMA_VERSION,
            target: ObjectRef {
                namespace: "ns".into(),
                name: "mt".into(),
            },
            node: "n1".into(),
            agent_version: "0.1.0".into(),
            seq: 7,
            interval_seconds: 10.0,
            ..Default::default()
        };
        let json = serde_json::to_value(&r).expect("serialize");
        assert_eq!(json["schemaVersion"], 1);
        assert!(
            json.get("ping").is_none(),
            "empty ping list is omitted: {json}"
        );
        let back: AgentReport = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, r);
    }
}
