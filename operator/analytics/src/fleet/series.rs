//! The values an AlertRule evaluates: one per series of a metric over a target's nodes
//! (per peer, port, mount point or endpoint where the metric has them), or folded into
//! one target-wide value.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::{Metric, Scope};
use fabricwatch_proto::{endpoint::EndpointState, ObjectRef};

use super::{
    state::{NodeState, TargetState},
    Fleet, LINK_FLAP_WINDOW_MINUTES,
};
use crate::{alert::SeriesKey, congestion};

impl Fleet {
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
        let Some(t) = self.targets.get(target) else {
            return BTreeMap::new();
        };
        let out = per_node(t, metric, now);
        if scope == Scope::Target {
            return fold(metric, &out);
        }
        out
    }
}

/// The per-node series of `metric` over the target's nodes.
fn per_node(t: &TargetState, metric: Metric, now: DateTime<Utc>) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    let flap_since = now - Duration::minutes(LINK_FLAP_WINDOW_MINUTES);
    let mut inconsistent: BTreeMap<String, usize> = BTreeMap::new();
    if metric == Metric::RdmaInconsistencies {
        for i in t.inconsistencies(now) {
            *inconsistent.entry(i.node).or_default() += 1;
        }
    }
    for (name, n) in &t.nodes {
        let stale = n.is_stale(now);
        if metric == Metric::AgentsNotReporting {
            out.insert(SeriesKey::node(name), if stale { 1.0 } else { 0.0 });
            continue;
        }
        if metric == Metric::NodeSuspect {
            // Silent nodes too: a node that is down is the suspect users alert on.
            let c = t.node_suspect(name).map_or(0.0, |s| s.suspect.confidence);
            out.insert(SeriesKey::node(name), c);
            continue;
        }
        if stale {
            continue;
        }
        if metric == Metric::RdmaInconsistencies {
            let n = inconsistent.get(name).copied().unwrap_or(0);
            out.insert(SeriesKey::node(name), n as f64);
            continue;
        }
        reporting_node(&mut out, metric, name, n, flap_since);
    }
    out
}

/// Adds the series of `metric` of reporting node `name` to `out`; link flaps count since
/// `flap_since`.
fn reporting_node(
    out: &mut BTreeMap<SeriesKey, f64>,
    metric: Metric,
    name: &str,
    n: &NodeState,
    flap_since: DateTime<Utc>,
) {
    let s = &n.sample;
    let node_key = || SeriesKey::node(name);
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
                (!v.is_empty()).then(|| (port_key(&p.device, p.port), v.iter().sum::<f64>()))
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
        Metric::MemoryUsedPercent => out.extend(s.memory_used_percent.map(|v| (node_key(), v))),
        Metric::DiskFreePercent => out.extend(s.disk_free_percent.as_ref().map(|(m, v)| {
            (
                SeriesKey {
                    device: Some(m.clone()),
                    ..node_key()
                },
                *v,
            )
        })),
        Metric::NetworkScore => out.extend(s.network_score.map(|v| (node_key(), v))),
        Metric::AnomalyScore => {
            out.insert(node_key(), n.anomaly.score);
        }
        Metric::AgentsNotReporting | Metric::NodeSuspect | Metric::RdmaInconsistencies => {}
        Metric::EndpointUp | Metric::EndpointDurationSeconds | Metric::TlsCertificateExpiryDays => {
            out.extend(endpoints(metric, name, n))
        }
        m => out.extend(s.ports.iter().filter_map(|p| {
            Some((
                port_key(&p.device, p.port),
                congestion::metric_value(&p.congestion, m)?,
            ))
        })),
    }
}

/// The endpoint series of `metric` of node `name`: up (1) or down (0), probe duration, or
/// days until the certificate expires.
fn endpoints<'a>(
    metric: Metric,
    name: &'a str,
    n: &'a NodeState,
) -> impl Iterator<Item = (SeriesKey, f64)> + 'a {
    n.sample.endpoints.iter().filter_map(move |e| {
        let v = match metric {
            Metric::EndpointUp => Some(if e.state == EndpointState::Down {
                0.0
            } else {
                1.0
            }),
            Metric::EndpointDurationSeconds => Some(e.duration_seconds),
            _ => e.tls_expiry_days,
        }?;
        Some((
            SeriesKey {
                endpoint: Some(e.name.clone()),
                ..SeriesKey::node(name)
            },
            v,
        ))
    })
}

/// One target-wide value: the sum for counts, the minimum where lower is worse, else the
/// maximum; empty without series.
fn fold(metric: Metric, out: &BTreeMap<SeriesKey, f64>) -> BTreeMap<SeriesKey, f64> {
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
    folded
        .map(|v| BTreeMap::from([(SeriesKey::default(), v)]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{report, target};
    use super::*;
    use crate::{derive::tests::t, fleet::Settings};

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
}
