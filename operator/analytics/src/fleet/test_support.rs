//! Reports and targets the fleet's unit tests share.

use std::collections::BTreeMap;

use chrono::Duration;
use fabricwatch_proto::{
    report::{AgentReport, HostReport, PeerReport},
    ObjectRef,
};

use super::Fleet;
use crate::derive::tests::{peer, port, t};

pub(super) fn target() -> ObjectRef {
    ObjectRef {
        namespace: "ns".into(),
        name: "fabric".into(),
    }
}

pub(super) fn report(node: &str, seq: u64, at: i64, loss: f64) -> AgentReport {
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
pub(super) fn roce_report(node: &str, seq: u64, at: i64, fw: &str, storm_rate: f64) -> AgentReport {
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

pub(super) fn with_endpoint(mut r: AgentReport, state: &str, not_after_days: i64) -> AgentReport {
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

/// A three-node mesh where every probe to or from `bad` is lost with `loss` percent.
pub(super) fn mesh_round(f: &mut Fleet, seq: u64, bad: Option<&str>, loss: u32) {
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
