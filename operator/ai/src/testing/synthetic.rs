//! A deterministic synthetic [`Situation`] for tests and measurements.

use crate::{Severity, Situation};

/// A deterministic synthetic situation of `nodes` nodes (`gpu-node-000`, ... with InternalIPs
/// `10.42.x.y`), for tests and measurements: every node probes 3 peers, ~3 % of the nodes
/// are critical with an RDMA port DOWN, loss towards them and Warning Events whose messages
/// carry node names and addresses; one alert fires for them and anomalies are scored.
/// `jitter` (0 for none) perturbs every measured value by up to ±`jitter` (relative),
/// deterministically from `round`, to replay a storm of re-evaluations.
pub fn synthetic_situation(nodes: usize, jitter: f64, round: u64) -> Situation {
    use crate::situation::*;
    let name = |i: usize| format!("gpu-node-{i:03}");
    let ip = |i: usize| format!("10.42.{}.{}", i / 250, i % 250 + 1);
    // A small deterministic hash → [-1, 1], so values jitter without a RNG dependency.
    let noise = |a: u64, b: u64| -> f64 {
        let mut x = a
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(round.wrapping_mul(0x94D0_49BB_1331_11EB));
        x ^= x >> 31;
        x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        x ^= x >> 32;
        (x % 2001) as f64 / 1000.0 - 1.0
    };
    let j = |v: f64, a: usize, b: u64| v * (1.0 + jitter * noise(a as u64, b));
    let critical: Vec<usize> = (0..nodes).filter(|i| i % 33 == 1).collect();
    let is_critical = |i: usize| critical.contains(&i);
    let mut s = Situation {
        window_seconds: 600,
        ..Default::default()
    };
    for i in 0..nodes {
        let crit = is_critical(i);
        s.nodes.push(NodeHealth {
            node: name(i),
            health: if crit {
                Health::Critical
            } else {
                Health::Healthy
            },
            score: Some(if crit { j(38.0, i, 1) } else { j(97.0, i, 1) }),
            problems: if crit {
                vec![
                    format!("rdma mlx5_1/1 DOWN on {}", name(i)),
                    format!("loss from peers towards {}", ip(i)),
                ]
            } else {
                Vec::new()
            },
            address: Some(ip(i)),
        });
        for k in 1..=3usize {
            let peer = (i + k * 7) % nodes.max(1);
            if peer == i {
                continue;
            }
            let loss = if is_critical(peer) {
                j(18.0, i, 10 + k as u64)
            } else {
                0.0
            };
            s.peers.push(PeerStats {
                source: name(i),
                peer: name(peer),
                external: false,
                loss_percent: loss,
                rtt_p50_seconds: Some(j(0.00021, i, 20 + k as u64)),
                rtt_p99_seconds: Some(j(
                    if is_critical(peer) { 0.0042 } else { 0.0006 },
                    i,
                    30 + k as u64,
                )),
                jitter_seconds: Some(j(0.00004, i, 40 + k as u64)),
            });
        }
        for dev in 0..2u32 {
            let down = crit && dev == 1;
            let mut deltas = std::collections::BTreeMap::new();
            let mut congestion = std::collections::BTreeMap::new();
            if down {
                deltas.insert("link_downed".to_string(), 3);
                deltas.insert("symbol_error".to_string(), 1200);
                deltas.insert("port_rcv_errors".to_string(), 57);
                congestion.insert("np_cnp_sent".to_string(), j(120.0, i, 50));
            }
            s.rdma_ports.push(RdmaPortStats {
                node: name(i),
                device: format!("mlx5_{dev}"),
                port: 1,
                state: if down { "DOWN".into() } else { "ACTIVE".into() },
                link_layer: "InfiniBand".into(),
                counter_deltas: deltas,
                error_rate_per_minute: if down { j(125.0, i, 51) } else { 0.0 },
                link_flaps: if down { 3 } else { 0 },
                congestion_per_second: congestion,
            });
        }
        s.hosts.push(HostPressure {
            node: name(i),
            cpu_usage_percent: j(if crit { 91.0 } else { 35.0 }, i, 60),
            memory_used_percent: j(52.0, i, 61),
            disk_free_percent_min: Some(j(40.0, i, 62)),
            psi_cpu_some_avg10: Some(j(if crit { 22.0 } else { 1.5 }, i, 63)),
            psi_memory_full_avg10: Some(0.0),
            psi_io_full_avg10: Some(j(0.4, i, 64)),
        });
    }
    for &i in &critical {
        s.anomalies.push(Anomaly {
            node: name(i),
            metric: "rdma_symbol_errors_per_minute".into(),
            score: j(7.5, i, 70),
            value: j(125.0, i, 71),
            baseline: Some(0.2),
            since: None,
        });
        s.events.push(KubeEvent {
            kind: EventObjectKind::Node,
            name: name(i),
            type_: "Warning".into(),
            reason: "RDMALinkDown".into(),
            message: format!("mlx5_1 port 1 on {} ({}) went DOWN", name(i), ip(i)),
            count: 1 + (round as u32) / 4,
            ..Default::default()
        });
        s.events.push(KubeEvent {
            kind: EventObjectKind::Pod,
            namespace: "training".into(),
            name: format!("trainer-{i}"),
            type_: "Warning".into(),
            reason: "BackOff".into(),
            message: format!("Back-off restarting failed container trainer in pod trainer-{i} on {}: NCCL WARN connect to {} failed", name(i), ip(i)),
            count: 2 + (round as u32) / 2,
            ..Default::default()
        });
    }
    if !critical.is_empty() {
        s.alerts.push(FiringAlert {
            rule: "rdma-errors".into(),
            severity: Severity::Critical,
            metric: "rdma_symbol_errors_per_minute".into(),
            value: j(125.0, 0, 80),
            threshold: 10.0,
            nodes: critical.iter().map(|i| name(*i)).collect(),
            since: None,
        });
    }
    s
}
