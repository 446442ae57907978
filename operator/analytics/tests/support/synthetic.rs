//! Synthetic agent reports of a whole mesh, shared by the fleet-view browser test and the
//! fleet-view bench (`#[path]`-included, so it is not a library item).

use chrono::{DateTime, Utc};
use fabricwatch_proto::{
    report::{AgentReport, HostReport, PeerReport, RdmaPortReport},
    ObjectRef,
};

/// A mesh of `nodes` nodes named `n1`…, each probing `peers` others (all others when the
/// mesh is smaller), 100 probes a report, RTT p50 0.2 ms and p99 0.3 ms, RDMA data
/// counters growing by 1 GB received and 0.5 GB sent per sequence number (100 and 50 MB/s
/// with reports 10 s apart); `lossy` = (source, peer, lost
/// probes) makes one pair lossy (1-based node numbers); `down` = a node whose RDMA port is
/// DOWN.
#[derive(Clone, Debug)]
pub struct Mesh {
    /// The MonitorTarget.
    pub target: ObjectRef,
    /// Node count.
    pub nodes: usize,
    /// Peers per node.
    pub peers: usize,
    /// One lossy pair.
    pub lossy: Option<(usize, usize, u32)>,
    /// One node with a port down.
    pub down: Option<usize>,
}

/// Name of node `i` (1-based).
pub fn node(i: usize) -> String {
    format!("n{i}")
}

/// Address of node `i`.
pub fn address(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

impl Mesh {
    /// The report of node `i` (1-based) with sequence number `seq`, collected at `at`.
    pub fn report(&self, i: usize, seq: u64, at: DateTime<Utc>) -> AgentReport {
        let k = self.peers.min(self.nodes.saturating_sub(1));
        let ping = (1..=k)
            .map(|d| (i - 1 + d) % self.nodes + 1)
            .map(|j| {
                let lost = match self.lossy {
                    Some((s, p, lost)) if s == i && p == j => lost,
                    _ => 0,
                };
                PeerReport {
                    peer: node(j),
                    address: address(j),
                    sent: 100,
                    received: 100 - lost,
                    loss_percent: f64::from(lost),
                    rtt_avg_seconds: Some(0.0002),
                    rtt_p50_seconds: Some(0.0002),
                    rtt_p99_seconds: Some(if lost > 0 { 0.004 } else { 0.0003 }),
                    ..Default::default()
                }
            })
            .collect();
        let down = self.down == Some(i);
        AgentReport {
            schema_version: 1,
            target: self.target.clone(),
            node: node(i),
            node_ip: Some(address(i)),
            agent_version: "synthetic".into(),
            seq,
            collected_at: at,
            interval_seconds: 10.0,
            ping,
            rdma: vec![RdmaPortReport {
                device: "mlx5_0".into(),
                port: 1,
                link_layer: "Ethernet".into(),
                state: if down { "DOWN" } else { "ACTIVE" }.into(),
                phys_state: if down { "Polling" } else { "LinkUp" }.into(),
                rate_gbps: Some(100.0),
                // Data counters in 4-octet words (kernel sysfs-class-infiniband): 100 MB/s
                // received and 50 MB/s sent at one report per 10 s.
                counters: [
                    ("port_rcv_data".to_string(), seq * 250_000_000),
                    ("port_xmit_data".to_string(), seq * 125_000_000),
                ]
                .into(),
                ..Default::default()
            }],
            host: Some(HostReport {
                cpu_usage_percent: 20.0 + (seq % 5) as f64,
                memory_used_percent: 40.0,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
