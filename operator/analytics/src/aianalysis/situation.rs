//! Analytics' in-memory state → the [`Situation`] an analysis sees. Pure: the caller takes
//! the node views and rule reports under the fleet/evaluator locks and lists the Events.
//!
//! Units are those of `fabricwatch-ai`'s situation (seconds, percent, per minute).

use std::collections::BTreeSet;

use fabricwatch_ai::situation::{
    Anomaly, FiringAlert, HostPressure, KubeEvent, NodeHealth, PeerStats, RdmaPortStats,
    SuspectInfo,
};
use fabricwatch_ai::Situation;

use crate::{
    alert::{RuleSpec, RuleState},
    evaluator::RuleReport,
    fleet::{NodeView, SuspectView},
};

/// Most problem lines kept per node (the context builder cuts further to the token budget).
pub const MAX_PROBLEMS_PER_NODE: usize = 8;

fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Builds the situation of one analysis.
///
/// - `window_seconds`: `spec.window` in seconds;
/// - `nodes`: the node views of every referenced MonitorTarget (and of the targets of the
///   referenced AlertRules);
/// - `rules`: the referenced rules' settings and last reports; only firing ones are kept;
/// - `events`: recent Kubernetes Events of the affected nodes and pods, already bounded.
///
/// Analytics holds a bounded history per node (`--window-samples` reports); when that covers
/// less than the window, `covered_seconds` says how much, and RDMA `counter_deltas` (the
/// latest per-counter error rate, increments per minute, times the time covered — analytics
/// keeps rates, not raw counters) are not extrapolated beyond it.
pub fn build(
    window_seconds: u64,
    nodes: &[NodeView],
    rules: &[(RuleSpec, RuleReport)],
    events: Vec<KubeEvent>,
) -> Situation {
    let held = nodes
        .iter()
        .map(|n| n.history_seconds)
        .filter(|h| h.is_finite())
        .fold(0.0_f64, f64::max);
    let covered = (window_seconds as f64).min(held.max(0.0));
    let window_minutes = covered / 60.0;
    let mut s = Situation {
        window_seconds,
        covered_seconds: (!nodes.is_empty() && covered + 1.0 < window_seconds as f64)
            .then_some(covered.round() as u64),
        events,
        ..Situation::default()
    };
    for n in nodes {
        let latest = &n.latest;
        s.nodes.push(NodeHealth {
            node: n.node.clone(),
            health: n.health,
            score: latest.network_score.filter(|v| v.is_finite()),
            problems: n
                .findings
                .iter()
                .take(MAX_PROBLEMS_PER_NODE)
                .map(|f| format!("{}: {}", f.component, f.message))
                .collect(),
            address: n.address.clone(),
        });
        s.peers.extend(latest.peers.iter().map(|p| PeerStats {
            source: n.node.clone(),
            peer: p.peer.clone(),
            external: p.external,
            loss_percent: finite(p.loss_percent),
            rtt_p50_seconds: None,
            rtt_p99_seconds: p.rtt_p99_seconds,
            jitter_seconds: p.jitter_seconds,
        }));
        s.rdma_ports.extend(latest.ports.iter().map(|p| {
            let key = format!("{}/{}", p.device, p.port);
            RdmaPortStats {
                node: n.node.clone(),
                device: p.device.clone(),
                port: p.port,
                state: p.state.clone(),
                link_layer: p.link_layer.clone(),
                counter_deltas: p
                    .error_rates_per_minute
                    .iter()
                    .filter(|(_, r)| r.is_finite() && **r > 0.0)
                    .map(|(k, r)| (k.clone(), (r * window_minutes).round().max(1.0) as u64))
                    .collect(),
                error_rate_per_minute: finite(p.errors_per_minute.unwrap_or(0.0)),
                link_flaps: n
                    .link_flaps
                    .get(&key)
                    .map_or(0, |f| finite(*f).max(0.0).round() as u64),
                congestion_per_second: p.congestion.per_second.clone(),
            }
        }));
        if latest.cpu_usage_percent.is_some()
            || latest.memory_used_percent.is_some()
            || latest.disk_free_percent.is_some()
        {
            s.hosts.push(HostPressure {
                node: n.node.clone(),
                cpu_usage_percent: finite(latest.cpu_usage_percent.unwrap_or(0.0)),
                memory_used_percent: finite(latest.memory_used_percent.unwrap_or(0.0)),
                disk_free_percent_min: latest.disk_free_percent.as_ref().map(|(_, f)| *f),
                ..HostPressure::default()
            });
        }
        for series in &n.anomaly.flagged {
            let stats = n.series.get(series);
            s.anomalies.push(Anomaly {
                node: n.node.clone(),
                metric: series.clone(),
                score: finite(
                    n.anomaly
                        .scores
                        .get(series)
                        .copied()
                        .unwrap_or(n.anomaly.score),
                ),
                value: finite(stats.and_then(|st| st.last).unwrap_or(0.0)),
                baseline: stats.and_then(|st| st.mean),
                since: n.anomaly.since,
            });
        }
    }
    for (spec, report) in rules {
        if report.state != Some(RuleState::Firing) || report.firing.is_empty() {
            continue;
        }
        let nodes: BTreeSet<String> = report
            .firing
            .iter()
            .filter_map(|f| f.key.node.clone())
            .collect();
        s.alerts.push(FiringAlert {
            rule: spec.rule.name.clone(),
            severity: spec.severity,
            metric: spec.metric.as_str().into(),
            value: finite(report.last_value.unwrap_or(0.0)),
            threshold: spec.threshold,
            nodes: nodes.into_iter().collect(),
            since: report.active_since,
        });
    }
    s
}

/// Puts the targets' `suspects` first in `s` and drops the pair statistics they explain,
/// so the model reads "node X, because …" instead of the raw pair list.
pub fn with_suspects(s: &mut Situation, suspects: &[SuspectView]) {
    let explained: BTreeSet<(&str, &str)> = suspects
        .iter()
        .flat_map(|x| x.suspect.paths.iter())
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    s.peers
        .retain(|p| !explained.contains(&(p.source.as_str(), p.peer.as_str())));
    s.suspects.extend(suspects.iter().map(|x| {
        let nodes = match &x.suspect.node {
            Some(n) => vec![n.clone()],
            None => x.suspect.nodes.clone(),
        };
        SuspectInfo {
            kind: x.suspect.kind.as_str().into(),
            nodes,
            domain: x.suspect.domain.clone(),
            cause: x.suspect.cause.as_str().into(),
            severity: x.suspect.severity,
            confidence: finite(x.suspect.confidence),
            evidence: x.suspect.evidence.clone(),
            since: Some(x.since),
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::{FiringSeries, SeriesKey},
        derive::{NodeSample, PeerSample, PortSample},
        fleet::{AnomalyState, SeriesStats},
        health::{Finding, Health},
    };
    use chrono::{DateTime, Utc};
    use fabricwatch_proto::{ObjectRef, Severity};
    use std::collections::BTreeMap;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn view() -> NodeView {
        let mut sample = NodeSample {
            at: t(0),
            agent_state: Default::default(),
            collector_errors: 0,
            cpu_usage_percent: Some(91.0),
            memory_used_percent: Some(40.0),
            disk_free_percent: Some(("/var".into(), 12.0)),
            loss_percent: Some(20.0),
            rtt_p50_seconds: Some(0.002),
            rtt_p99_seconds: Some(0.004),
            jitter_seconds: Some(0.001),
            network_score: Some(55.0),
            peers: vec![PeerSample {
                peer: "gpu-b".into(),
                external: false,
                loss_percent: 20.0,
                probes_sent: 50,
                probes_lost: 10,
                loss_lower_percent: Some(8.0),
                rtt_p50_seconds: Some(0.002),
                rtt_p99_seconds: Some(0.004),
                jitter_seconds: Some(0.001),
                score: 55.0,
            }],
            ports: vec![PortSample {
                device: "mlx5_0".into(),
                port: 1,
                link_layer: "InfiniBand".into(),
                state: "ACTIVE".into(),
                phys_state: "LinkUp".into(),
                errors_per_minute: Some(30.0),
                symbol_errors_per_minute: Some(30.0),
                error_rates_per_minute: BTreeMap::from([
                    ("symbol_error".to_string(), 30.0),
                    ("port_rcv_errors".to_string(), 0.0),
                ]),
                link_flaps_total: 3,
                netdev: None,
                rate_gbps: Some(200.0),
                identity: None,
                pfc_enabled_priorities: Some(vec![3]),
                dcqcn: None,
                congestion: crate::congestion::Congestion {
                    pause_frames_per_second: Some(5000.0),
                    per_second: BTreeMap::from([
                        ("np_cnp_sent".to_string(), 120.0),
                        ("pause_received/3".to_string(), 5000.0),
                    ]),
                    ..Default::default()
                },
            }],
            rdma_receive_bytes_per_second: None,
            rdma_transmit_bytes_per_second: None,
            rdma_errors_per_minute: Some(30.0),
            rdma_symbol_errors_per_minute: Some(30.0),
            rdma_ports_active: 1,
            rdma_ports_down: 0,
            link_flaps_total: 3,
            endpoints: Vec::new(),
        };
        sample.agent_state = fabricwatch_proto::report::AgentState::Running;
        NodeView {
            node: "gpu-a".into(),
            health: Health::Critical,
            address: Some("10.1.2.3".into()),
            domain: None,
            pod: Some("fabric-agent-x1".into()),
            last_report_time: t(0),
            agent_restarts: 0,
            findings: vec![Finding {
                component: "rdma/mlx5_0/1".into(),
                severity: Health::Critical,
                message: "30 errors/min >= 10".into(),
            }],
            anomaly: AnomalyState {
                score: 7.5,
                scores: BTreeMap::from([("ping_loss_percent".to_string(), 7.5)]),
                flagged: vec!["ping_loss_percent".into()],
                since: Some(t(-60)),
            },
            series: BTreeMap::from([(
                "ping_loss_percent".to_string(),
                SeriesStats {
                    last: Some(20.0),
                    mean: Some(1.0),
                    std_dev: Some(2.0),
                    p50: Some(0.0),
                    p99: Some(20.0),
                    samples: 30,
                },
            )]),
            link_flaps: BTreeMap::from([("mlx5_0/1".to_string(), 2.0)]),
            history_seconds: 7200.0,
            latest: sample,
        }
    }

    fn rule(state: RuleState) -> (RuleSpec, RuleReport) {
        let r = ObjectRef {
            namespace: "ns".into(),
            name: "loss".into(),
        };
        let spec = RuleSpec {
            rule: r.clone(),
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            metric: fabricwatch_crds::alert_rule::Metric::PingLossPercent,
            op: fabricwatch_crds::alert_rule::Operator::Gt,
            threshold: 5.0,
            for_: chrono::Duration::zero(),
            scope: fabricwatch_crds::alert_rule::Scope::PerNode,
            severity: Severity::Warning,
            resolve_for: chrono::Duration::zero(),
            flap: None,
            cooldown: chrono::Duration::zero(),
            repeat_interval: None,
            maintenance: vec![],
            silence: None,
            acknowledge: None,
            annotations: Default::default(),
            analysis_ref: None,
        };
        (
            spec,
            RuleReport {
                rule: r,
                generation: Some(1),
                state: Some(state),
                active_since: Some(t(-30)),
                last_value: Some(20.0),
                firing: vec![FiringSeries {
                    key: SeriesKey {
                        peer: Some("gpu-b".into()),
                        ..SeriesKey::node("gpu-a")
                    },
                    since: t(-30),
                    value: Some(20.0),
                }],
                silenced: None,
                acknowledged: None,
                evaluated_at: t(0),
                error: None,
            },
        )
    }

    #[test]
    fn maps_every_section() {
        let ev = KubeEvent {
            name: "gpu-a".into(),
            reason: "NodeNotReady".into(),
            ..KubeEvent::default()
        };
        let s = build(
            3600,
            &[view()],
            &[rule(RuleState::Firing), rule(RuleState::Inactive)],
            vec![ev.clone()],
        );
        assert_eq!(s.window_seconds, 3600);
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.nodes[0].health, Health::Critical);
        assert_eq!(s.nodes[0].score, Some(55.0));
        assert_eq!(
            s.nodes[0].problems,
            vec!["rdma/mlx5_0/1: 30 errors/min >= 10"]
        );
        assert_eq!(s.nodes[0].address.as_deref(), Some("10.1.2.3"));
        assert_eq!(s.peers.len(), 1);
        assert_eq!(
            (s.peers[0].source.as_str(), s.peers[0].peer.as_str()),
            ("gpu-a", "gpu-b")
        );
        assert_eq!(s.peers[0].loss_percent, 20.0);
        let p = &s.rdma_ports[0];
        assert_eq!(
            (p.device.as_str(), p.port, p.state.as_str()),
            ("mlx5_0", 1, "ACTIVE")
        );
        assert_eq!(p.error_rate_per_minute, 30.0);
        assert_eq!(p.link_flaps, 2);
        // 30/min over 60 minutes; counters without errors are left out.
        assert_eq!(
            p.counter_deltas,
            BTreeMap::from([("symbol_error".to_string(), 1800)])
        );
        assert!(p.is_interesting());
        // Congestion rates reach the situation under their kernel/driver-signal names.
        assert_eq!(
            p.congestion_per_second,
            BTreeMap::from([
                ("np_cnp_sent".to_string(), 120.0),
                ("pause_received/3".to_string(), 5000.0),
            ])
        );
        assert_eq!(s.hosts[0].cpu_usage_percent, 91.0);
        assert_eq!(s.hosts[0].disk_free_percent_min, Some(12.0));
        assert_eq!(s.anomalies.len(), 1);
        assert_eq!(s.anomalies[0].metric, "ping_loss_percent");
        assert_eq!((s.anomalies[0].score, s.anomalies[0].value), (7.5, 20.0));
        assert_eq!(s.anomalies[0].baseline, Some(1.0));
        assert_eq!(s.alerts.len(), 1, "only the firing rule");
        assert_eq!(s.alerts[0].rule, "loss");
        assert_eq!(s.alerts[0].nodes, vec!["gpu-a"]);
        assert_eq!(s.alerts[0].metric, "ping_loss_percent");
        assert_eq!(s.events, vec![ev]);
    }

    #[test]
    fn a_short_history_is_said_and_not_extrapolated() {
        let mut v = view();
        v.history_seconds = 600.0;
        let s = build(3600, &[v], &[], Vec::new());
        assert_eq!(s.covered_seconds, Some(600));
        // 30/min over the 10 minutes held, not the hour asked for.
        assert_eq!(
            s.rdma_ports[0].counter_deltas,
            BTreeMap::from([("symbol_error".to_string(), 300)])
        );
        assert_eq!(
            build(3600, &[view()], &[], Vec::new()).covered_seconds,
            None
        );
    }

    #[test]
    fn suspects_come_first_and_replace_their_pairs() {
        use crate::localize::{Cause, Suspect, SuspectKind};
        let mut s = build(3600, &[view()], &[], Vec::new());
        let sv = SuspectView {
            name: "node/gpu-b".into(),
            suspect: Suspect {
                kind: SuspectKind::Node,
                node: Some("gpu-b".into()),
                nodes: vec![],
                domain: None,
                cause: Cause::Network,
                severity: Health::Critical,
                confidence: 0.9,
                evidence: "9 of 10 paths to it lossy".into(),
                paths: vec![("gpu-a".into(), "gpu-b".into())],
            },
            since: t(-60),
            problems: 1,
        };
        with_suspects(&mut s, &[sv]);
        assert!(s.peers.is_empty(), "the pair gpu-a→gpu-b is explained");
        assert_eq!(s.suspects.len(), 1);
        assert_eq!(s.suspects[0].nodes, vec!["gpu-b"]);
        assert_eq!(
            (s.suspects[0].kind.as_str(), s.suspects[0].cause.as_str()),
            ("node", "network")
        );
    }

    #[test]
    fn empty_state_gives_an_empty_situation() {
        let s = build(600, &[], &[], Vec::new());
        assert_eq!(
            s,
            Situation {
                window_seconds: 600,
                ..Situation::default()
            }
        );
    }
}
