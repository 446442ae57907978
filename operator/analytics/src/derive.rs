//! Derived metrics of one agent report: the per-node sample the windows, health, anomaly
//! detectors and alert rules work on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fabricwatch_proto::report::{
    AgentReport, AgentState, DcqcnReport, PortIdentity, RdmaPortReport,
};
use serde::Serialize;

use crate::{
    congestion::{self, Congestion},
    score::network_score,
    stats::counter_rate,
};

/// RDMA port error counters (kernel names, `Documentation/ABI/stable/sysfs-class-infiniband`,
/// IBTA PortCounters attribute) whose increase means a link or port problem. Their summed
/// increase per minute is `rdma_errors_per_minute`.
pub const RDMA_ERROR_COUNTERS: &[&str] = &[
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "port_rcv_switch_relay_errors",
    "port_xmit_discards",
    "port_xmit_constraint_errors",
    "port_rcv_constraint_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "VL15_dropped",
];

/// RDMA data counters, received and transmitted, in units of [`RDMA_DATA_OCTETS`] octets
/// (kernel `Documentation/ABI/stable/sysfs-class-infiniband`: `port_rcv_data`,
/// `port_xmit_data` "divided by 4"; IBTA PortCounters `PortRcvData`/`PortXmitData`).
pub const RDMA_DATA_COUNTERS: [&str; 2] = ["port_rcv_data", "port_xmit_data"];
/// Octets per unit of the [`RDMA_DATA_COUNTERS`] (same source: the counters count 4-octet
/// words).
pub const RDMA_DATA_OCTETS: f64 = 4.0;

/// Identifies one RDMA port of a node: device name and 1-based port number.
pub type PortKey = (String, u32);

/// Counters of a node's RDMA ports at one time, kept to compute rates when the agent sent
/// none (its first report, or after a counter reset it detected).
#[derive(Clone, Debug, Default)]
pub struct CounterSnapshot {
    /// When the counters were read.
    pub at: Option<DateTime<Utc>>,
    /// Counters per port, by kernel name.
    pub ports: BTreeMap<PortKey, BTreeMap<String, u64>>,
}

impl CounterSnapshot {
    /// The counters carried by `report`.
    pub fn of(report: &AgentReport) -> Self {
        Self {
            at: Some(report.collected_at),
            ports: report
                .rdma
                .iter()
                .map(|p| ((p.device.clone(), p.port), p.counters.clone()))
                .collect(),
        }
    }
}

/// Derived view of one RDMA port.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSample {
    /// Device name, e.g. `mlx5_0`.
    pub device: String,
    /// Port number.
    pub port: u32,
    /// `InfiniBand`, `Ethernet` (RoCE) or empty.
    pub link_layer: String,
    /// Logical state, e.g. `ACTIVE`.
    pub state: String,
    /// Physical state, e.g. `LinkUp`, `Disabled`.
    pub phys_state: String,
    /// Error counter increments per minute (sum over [`RDMA_ERROR_COUNTERS`]); `None` when
    /// no rate could be computed yet.
    pub errors_per_minute: Option<f64>,
    /// `symbol_error` increments per minute.
    pub symbol_errors_per_minute: Option<f64>,
    /// Increments per minute of each error counter that had a rate, by kernel name.
    pub error_rates_per_minute: BTreeMap<String, f64>,
    /// Link flaps the agent counted since it started.
    pub link_flaps_total: u64,
    /// RoCE netdev behind the port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
    /// Link rate, Gb/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_gbps: Option<f64>,
    /// LID, SM LID/SL, LMC, width, speed, GIDs, firmware and board, as the agent read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<PortIdentity>,
    /// Priorities with PFC enabled, where the driver tells (mlx5); `None` = unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pfc_enabled_priorities: Option<Vec<u8>>,
    /// DCQCN configuration, where the driver exposes it; `None` = unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcqcn: Option<DcqcnReport>,
    /// Congestion figures over the last interval.
    pub congestion: Congestion,
}

impl PortSample {
    /// The port is administratively disabled (`phys_state` `Disabled`): not a fault.
    pub fn is_disabled(&self) -> bool {
        self.phys_state.eq_ignore_ascii_case("Disabled")
    }
    /// The port is up (`state` `ACTIVE`).
    pub fn is_active(&self) -> bool {
        self.state.eq_ignore_ascii_case("ACTIVE")
    }
    /// The port is down without being disabled: a fault.
    pub fn is_down(&self) -> bool {
        !self.is_active() && !self.is_disabled()
    }
}

/// Latest result of one endpoint probe from the node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSample {
    /// Endpoint name.
    pub name: String,
    /// URL, `host:port` or `name TYPE`.
    pub target: String,
    /// Up, slow or down.
    pub state: fabricwatch_proto::endpoint::EndpointState,
    /// Whole probe, seconds.
    pub duration_seconds: f64,
    /// Days until the earliest certificate expires, at the report's collection time.
    pub tls_expiry_days: Option<f64>,
    /// Why it is down.
    pub error: Option<String>,
}

/// Derived view of one ping peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerSample {
    /// Peer node name or external target.
    pub peer: String,
    /// `true` for an external target.
    pub external: bool,
    /// Loss in percent, this report.
    pub loss_percent: f64,
    /// Probes sent over the path's recent reports ([`crate::loss::PATH_HISTORY`]); 0 until
    /// the fleet has a history.
    pub probes_sent: u64,
    /// Probes lost over the same reports.
    pub probes_lost: u64,
    /// The loss the path has at least, percent: the lower Wilson bound over its recent
    /// windows at the fleet's corrected confidence ([`crate::loss`]). Health grades this, not
    /// the point estimate; `None` for a sample outside a fleet.
    pub loss_lower_percent: Option<f64>,
    /// RTT p50 (median) in seconds.
    pub rtt_p50_seconds: Option<f64>,
    /// RTT p99 in seconds.
    pub rtt_p99_seconds: Option<f64>,
    /// Jitter in seconds.
    pub jitter_seconds: Option<f64>,
    /// [`network_score`] of this path.
    pub score: f64,
}

/// Everything derived from one report of one node. Aggregates over mesh peers take the worst
/// path (max loss, max p99, min score), because one bad link is what a user must see.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSample {
    /// Collection time.
    pub at: DateTime<Utc>,
    /// The agent's own state.
    pub agent_state: AgentState,
    /// Collector errors in the report.
    pub collector_errors: usize,
    /// CPU busy percent.
    pub cpu_usage_percent: Option<f64>,
    /// Memory used percent.
    pub memory_used_percent: Option<f64>,
    /// Lowest free percent over the watched filesystems, with its mount point.
    pub disk_free_percent: Option<(String, f64)>,
    /// Worst loss over mesh and external peers, percent.
    pub loss_percent: Option<f64>,
    /// Worst RTT p50 (median) over peers, seconds: the typical round trip of the slowest
    /// path, next to its tail ([`Self::rtt_p99_seconds`]).
    pub rtt_p50_seconds: Option<f64>,
    /// Worst RTT p99 over peers, seconds.
    pub rtt_p99_seconds: Option<f64>,
    /// Mean jitter over peers, seconds.
    pub jitter_seconds: Option<f64>,
    /// Worst per-path network score, 0–100.
    pub network_score: Option<f64>,
    /// Per-peer view.
    pub peers: Vec<PeerSample>,
    /// Per-port view.
    pub ports: Vec<PortSample>,
    /// RDMA bytes received per second over all ports: [`RDMA_DATA_OCTETS`] × Σ rate of
    /// `port_rcv_data`; `None` when no port has that rate.
    pub rdma_receive_bytes_per_second: Option<f64>,
    /// RDMA bytes transmitted per second over all ports, from `port_xmit_data` likewise.
    pub rdma_transmit_bytes_per_second: Option<f64>,
    /// Sum of port error rates, increments per minute.
    pub rdma_errors_per_minute: Option<f64>,
    /// Sum of `symbol_error` rates, increments per minute.
    pub rdma_symbol_errors_per_minute: Option<f64>,
    /// Ports `ACTIVE`.
    pub rdma_ports_active: u32,
    /// Ports down and not disabled.
    pub rdma_ports_down: u32,
    /// Link flaps the agent counted since it started, all ports.
    pub link_flaps_total: u64,
    /// Endpoint probes from the node (at most
    /// [`fabricwatch_proto::endpoint::MAX_ENDPOINTS`] kept).
    pub endpoints: Vec<EndpointSample>,
}

/// Per-second rate of counter `name` of `port`: the agent's own rate when present, else
/// computed from `prev` with [`counter_rate`].
pub(crate) fn port_rate(
    port: &RdmaPortReport,
    name: &str,
    prev: Option<&CounterSnapshot>,
    at: DateTime<Utc>,
) -> Option<f64> {
    if let Some(r) = port.rates.get(name).filter(|r| r.is_finite() && **r >= 0.0) {
        return Some(*r);
    }
    let cur = *port.counters.get(name)?;
    let prev = prev?;
    let before = *prev
        .ports
        .get(&(port.device.clone(), port.port))?
        .get(name)?;
    let dt = (at - prev.at?).num_milliseconds() as f64 / 1000.0;
    counter_rate(before, cur, dt)
}

fn port_sample(
    port: &RdmaPortReport,
    prev: Option<&CounterSnapshot>,
    at: DateTime<Utc>,
) -> PortSample {
    let error_rates_per_minute: BTreeMap<String, f64> = RDMA_ERROR_COUNTERS
        .iter()
        .filter_map(|c| port_rate(port, c, prev, at).map(|r| (c.to_string(), 60.0 * r)))
        .collect();
    // No error counters at all (iWARP) is "nothing to report", not an error rate of 0.
    let errors_per_minute =
        (!error_rates_per_minute.is_empty()).then(|| error_rates_per_minute.values().sum::<f64>());
    PortSample {
        device: port.device.clone(),
        port: port.port,
        link_layer: port.link_layer.clone(),
        state: port.state.clone(),
        phys_state: port.phys_state.clone(),
        errors_per_minute,
        symbol_errors_per_minute: error_rates_per_minute.get("symbol_error").copied(),
        error_rates_per_minute,
        link_flaps_total: port.link_flaps_total,
        netdev: port.netdev.clone(),
        rate_gbps: port.rate_gbps.filter(|r| r.is_finite() && *r >= 0.0),
        identity: port.identity.clone(),
        pfc_enabled_priorities: port
            .ethtool
            .as_ref()
            .and_then(|e| e.pfc_enabled_priorities.clone()),
        dcqcn: port.dcqcn.clone(),
        congestion: congestion::of_port(port),
    }
}

fn max_opt(it: impl Iterator<Item = f64>) -> Option<f64> {
    it.filter(|x| x.is_finite()).reduce(f64::max)
}

fn sum_opt(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    it.fold(None, |acc, x| match (acc, x) {
        (None, x) => x,
        (a, None) => a,
        (Some(a), Some(b)) => Some(a + b),
    })
}

/// Derives a [`NodeSample`] from `report`; `prev` holds the node's previous counters for
/// rates the agent could not compute. Never fails: absent sections give `None` fields.
pub fn derive(report: &AgentReport, prev: Option<&CounterSnapshot>) -> NodeSample {
    let at = report.collected_at;
    let peers: Vec<PeerSample> = report
        .ping
        .iter()
        .filter(|p| p.sent > 0)
        .map(|p| {
            let loss = p.loss_percent.clamp(0.0, 100.0);
            let rtt = p.rtt_avg_seconds.or(p.rtt_p50_seconds).unwrap_or(0.0);
            let jitter = p.jitter_seconds.unwrap_or(0.0);
            PeerSample {
                peer: p.peer.clone(),
                external: p.external,
                loss_percent: loss,
                probes_sent: 0,
                probes_lost: 0,
                loss_lower_percent: None,
                rtt_p50_seconds: p.rtt_p50_seconds.filter(|x| x.is_finite()),
                rtt_p99_seconds: p.rtt_p99_seconds.filter(|x| x.is_finite()),
                jitter_seconds: p.jitter_seconds.filter(|x| x.is_finite()),
                score: network_score(loss, rtt, jitter),
            }
        })
        .collect();
    let jitters: Vec<f64> = peers.iter().filter_map(|p| p.jitter_seconds).collect();
    let ports: Vec<PortSample> = report
        .rdma
        .iter()
        .map(|p| port_sample(p, prev, at))
        .collect();
    let host = report.host.as_ref();
    // Bytes per second of one data counter over all ports (rates the agent sent, else from
    // the previous report's counters).
    let data_rate = |counter: &str| {
        sum_opt(
            report
                .rdma
                .iter()
                .map(|p| port_rate(p, counter, prev, at).map(|r| RDMA_DATA_OCTETS * r)),
        )
    };
    NodeSample {
        at,
        agent_state: report.agent_state,
        collector_errors: report.collector_errors.len(),
        cpu_usage_percent: host.map(|h| h.cpu_usage_percent).filter(|x| x.is_finite()),
        memory_used_percent: host
            .map(|h| h.memory_used_percent)
            .filter(|x| x.is_finite()),
        disk_free_percent: host.and_then(|h| {
            h.filesystems
                .iter()
                .filter(|f| f.free_percent.is_finite())
                .min_by(|a, b| a.free_percent.total_cmp(&b.free_percent))
                .map(|f| (f.mountpoint.clone(), f.free_percent))
        }),
        loss_percent: max_opt(peers.iter().map(|p| p.loss_percent)),
        rtt_p50_seconds: max_opt(peers.iter().filter_map(|p| p.rtt_p50_seconds)),
        rtt_p99_seconds: max_opt(peers.iter().filter_map(|p| p.rtt_p99_seconds)),
        jitter_seconds: (!jitters.is_empty())
            .then(|| jitters.iter().sum::<f64>() / jitters.len() as f64),
        network_score: peers.iter().map(|p| p.score).reduce(f64::min),
        rdma_receive_bytes_per_second: data_rate(RDMA_DATA_COUNTERS[0]),
        rdma_transmit_bytes_per_second: data_rate(RDMA_DATA_COUNTERS[1]),
        rdma_errors_per_minute: sum_opt(ports.iter().map(|p| p.errors_per_minute)),
        rdma_symbol_errors_per_minute: sum_opt(ports.iter().map(|p| p.symbol_errors_per_minute)),
        rdma_ports_active: ports.iter().filter(|p| p.is_active()).count() as u32,
        rdma_ports_down: ports.iter().filter(|p| p.is_down()).count() as u32,
        // Saturating: the values come from the agent's report and may be anything.
        link_flaps_total: ports
            .iter()
            .fold(0u64, |acc, p| acc.saturating_add(p.link_flaps_total)),
        peers,
        ports,
        endpoints: report
            .endpoints
            .iter()
            .take(fabricwatch_proto::endpoint::MAX_ENDPOINTS)
            .map(|e| EndpointSample {
                name: e.name.clone(),
                target: e.target.clone(),
                state: e.state,
                duration_seconds: e.duration_seconds,
                tls_expiry_days: e.tls_expiry_days(at).filter(|d| d.is_finite()),
                error: e.error.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use fabricwatch_proto::report::{FilesystemReport, HostReport, PeerReport};

    pub(crate) fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("time")
    }

    pub(crate) fn port(device: &str, state: &str, phys: &str, symbol_error: u64) -> RdmaPortReport {
        RdmaPortReport {
            device: device.into(),
            port: 1,
            link_layer: "InfiniBand".into(),
            state: state.into(),
            phys_state: phys.into(),
            counters: [
                ("symbol_error".to_string(), symbol_error),
                ("port_rcv_errors".to_string(), 0),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    pub(crate) fn peer(name: &str, loss: f64, p99: f64) -> PeerReport {
        PeerReport {
            peer: name.into(),
            address: "10.0.0.1".into(),
            sent: 5,
            received: 5,
            loss_percent: loss,
            rtt_avg_seconds: Some(p99 / 2.0),
            rtt_p99_seconds: Some(p99),
            jitter_seconds: Some(0.0001),
            ..Default::default()
        }
    }

    #[test]
    fn aggregates_take_the_worst_path_and_lowest_disk() {
        let r = AgentReport {
            collected_at: t(0),
            ping: vec![peer("a", 0.0, 0.001), peer("b", 20.0, 0.004)],
            host: Some(HostReport {
                cpu_usage_percent: 50.0,
                memory_used_percent: 60.0,
                filesystems: vec![
                    FilesystemReport {
                        mountpoint: "/".into(),
                        free_percent: 40.0,
                        ..Default::default()
                    },
                    FilesystemReport {
                        mountpoint: "/var".into(),
                        free_percent: 8.0,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = derive(&r, None);
        assert_eq!(s.loss_percent, Some(20.0));
        assert_eq!(s.rtt_p99_seconds, Some(0.004));
        assert_eq!(s.disk_free_percent, Some(("/var".into(), 8.0)));
        assert!((s.jitter_seconds.expect("jitter") - 0.0001).abs() < 1e-12);
        let worst = s.network_score.expect("score");
        assert!((worst - network_score(20.0, 0.002, 0.0001)).abs() < 1e-9);
    }

    #[test]
    fn rdma_rates_come_from_the_agent_or_from_previous_counters() {
        let mut p = port("mlx5_0", "ACTIVE", "LinkUp", 130);
        let prev = CounterSnapshot::of(&AgentReport {
            collected_at: t(0),
            rdma: vec![port("mlx5_0", "ACTIVE", "LinkUp", 100)],
            ..Default::default()
        });
        let r = AgentReport {
            collected_at: t(60),
            rdma: vec![p.clone()],
            ..Default::default()
        };
        let s = derive(&r, Some(&prev));
        // 30 symbol errors in 60 s → 30 per minute.
        assert_eq!(s.rdma_symbol_errors_per_minute, Some(30.0));
        assert_eq!(s.rdma_errors_per_minute, Some(30.0));
        // The agent's own rate wins: 2/s → 120/min.
        p.rates.insert("symbol_error".into(), 2.0);
        let s = derive(
            &AgentReport {
                collected_at: t(60),
                rdma: vec![p],
                ..Default::default()
            },
            Some(&prev),
        );
        assert_eq!(s.rdma_symbol_errors_per_minute, Some(120.0));
        // No previous report and no agent rates: unknown, not zero.
        let first = derive(
            &AgentReport {
                collected_at: t(0),
                rdma: vec![port("mlx5_0", "ACTIVE", "LinkUp", 1)],
                ..Default::default()
            },
            None,
        );
        assert_eq!(first.rdma_errors_per_minute, None);
    }

    #[test]
    fn counter_reset_gives_no_rate() {
        let prev = CounterSnapshot::of(&AgentReport {
            collected_at: t(0),
            rdma: vec![port("mlx5_0", "ACTIVE", "LinkUp", 500)],
            ..Default::default()
        });
        let s = derive(
            &AgentReport {
                collected_at: t(10),
                rdma: vec![port("mlx5_0", "ACTIVE", "LinkUp", 3)],
                ..Default::default()
            },
            Some(&prev),
        );
        assert_eq!(s.rdma_symbol_errors_per_minute, None);
    }

    #[test]
    fn port_states_count_disabled_as_neither_active_nor_down() {
        let r = AgentReport {
            collected_at: t(0),
            rdma: vec![
                port("mlx5_0", "ACTIVE", "LinkUp", 0),
                port("mlx5_1", "DOWN", "Disabled", 0),
                port("mlx5_2", "DOWN", "Polling", 0),
            ],
            ..Default::default()
        };
        let s = derive(&r, None);
        assert_eq!((s.rdma_ports_active, s.rdma_ports_down), (1, 1));
    }

    #[test]
    fn empty_report_derives_nothing() {
        let s = derive(&AgentReport::default(), None);
        assert_eq!(s.loss_percent, None);
        assert_eq!(s.network_score, None);
        assert_eq!(s.cpu_usage_percent, None);
        assert_eq!(s.rdma_errors_per_minute, None);
    }
}
