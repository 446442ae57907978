//! Fault localization over each target's nodes and mesh paths ([`crate::localize`]): the
//! inputs built from the fleet's state, suspects with their first-seen times, what appeared
//! and cleared, and how far an endpoint outage reaches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fabricwatch_proto::ObjectRef;
use serde::Serialize;

use super::{
    state::{NodeState, TargetState},
    Fleet, Problem,
};
use crate::{
    localize::{localize, Limits, Liveness, NodeInput, PathInput, Suspect},
    loss::FAMILY_ALPHA,
    node_conditions::NodeConditions,
};

/// A suspect as the API and status show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspectView {
    /// `node/<name>`, `link/<a>–<b>` or `domain/<value>`.
    pub name: String,
    /// The inference's result.
    #[serde(flatten)]
    pub suspect: Suspect,
    /// Since when it is continuously a suspect.
    pub since: DateTime<Utc>,
    /// Pair problems it replaces in `problems`.
    pub problems: u32,
}

/// A suspect that appeared or cleared in a localization.
#[derive(Clone, Debug, PartialEq)]
pub enum SuspectChange {
    /// New suspect.
    Appeared(ObjectRef, SuspectView),
    /// A suspect of the previous localization is gone; its name.
    Cleared(ObjectRef, String),
}

/// How recently node `n` reported at `now`: silent past three intervals, late past two.
fn liveness(n: &NodeState, now: DateTime<Utc>) -> Liveness {
    let age = (now - n.received_at).num_milliseconds() as f64 / 1000.0;
    if n.is_stale(now) {
        Liveness::Silent
    } else if age > 2.0 * n.interval_seconds {
        Liveness::Late
    } else {
        Liveness::Fresh
    }
}

/// The localization input of node `name`: liveness, host evidence (Node conditions, CPU
/// and memory past critical) and network evidence (ports down, port errors past critical).
fn node_input(
    t: &TargetState,
    name: &str,
    n: &NodeState,
    conditions: &BTreeMap<String, NodeConditions>,
    now: DateTime<Utc>,
) -> NodeInput {
    let th = &t.config.thresholds;
    let s = &n.sample;
    let (mut host, host_fault) = conditions
        .get(name)
        .map(NodeConditions::evidence)
        .unwrap_or_default();
    if let Some(cpu) = s
        .cpu_usage_percent
        .filter(|c| *c >= th.cpu_usage_percent.critical)
    {
        host.push(format!("CPU {cpu:.0}% busy"));
    }
    if let Some(m) = s
        .memory_used_percent
        .filter(|m| *m >= th.memory_used_percent.critical)
    {
        host.push(format!("memory {m:.0}% used"));
    }
    let mut network = Vec::new();
    for p in &s.ports {
        if p.is_down() {
            network.push(format!(
                "RDMA port {}/{} {} ({})",
                p.device, p.port, p.state, p.phys_state
            ));
        }
        if let Some(e) = p
            .errors_per_minute
            .filter(|e| *e >= th.rdma_errors_per_minute.critical)
        {
            network.push(format!(
                "{e:.0} RDMA port errors per minute on {}/{}",
                p.device, p.port
            ));
        }
    }
    NodeInput {
        name: name.to_string(),
        domain: n.domain.clone().filter(|_| t.config.topology_key.is_some()),
        liveness: liveness(n, now),
        host,
        host_fault,
        network_fault: s.rdma_ports_down > 0,
        network,
    }
}

/// The mesh paths from node `n` (index `src`) to the target's other nodes (`index`), with
/// their probe windows and whether the path's RTT p99 is past warning.
fn path_inputs(
    t: &TargetState,
    src: usize,
    n: &NodeState,
    index: &BTreeMap<&str, usize>,
) -> Vec<PathInput> {
    let th = &t.config.thresholds;
    let rtt: BTreeMap<&str, Option<f64>> = n
        .sample
        .peers
        .iter()
        .map(|p| (p.peer.as_str(), p.rtt_p99_seconds))
        .collect();
    n.paths
        .iter()
        .filter_map(|(peer, h)| {
            let &dst = index.get(peer.as_str())?;
            Some(PathInput {
                src,
                dst,
                windows: h.windows(),
                slow: rtt
                    .get(peer.as_str())
                    .copied()
                    .flatten()
                    .is_some_and(|r| r >= th.rtt_p99_seconds.warning),
            })
        })
        .collect()
}

/// The suspects of one target at `now` (see [`crate::localize`]), from every node with its
/// liveness, host and network evidence, and every mesh path with its probe windows.
fn localize_target(
    t: &TargetState,
    conditions: &BTreeMap<String, NodeConditions>,
    now: DateTime<Utc>,
) -> Vec<Suspect> {
    let th = &t.config.thresholds;
    let index: BTreeMap<&str, usize> = t
        .nodes
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut nodes = Vec::with_capacity(t.nodes.len());
    let mut paths = Vec::new();
    for (si, (name, n)) in t.nodes.iter().enumerate() {
        nodes.push(node_input(t, name, n, conditions, now));
        paths.extend(path_inputs(t, si, n, &index));
    }
    localize(
        &nodes,
        &paths,
        Limits {
            loss_warning: th.loss_percent.warning / 100.0,
            loss_critical: th.loss_percent.critical / 100.0,
            alpha: FAMILY_ALPHA,
        },
    )
}

/// Says how far each endpoint outage reaches: every node's "endpoint X unreachable"
/// problem gains "from k of n nodes" over the reporting nodes that probe X, and which
/// they are (at most 5 named) — few nodes point at their paths to the service, all of
/// them at the service itself.
pub(super) fn localize_endpoints(t: &TargetState, now: DateTime<Utc>, problems: &mut [Problem]) {
    use fabricwatch_proto::endpoint::EndpointState;
    let mut probing: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    for (name, n) in t.reporting(now) {
        for e in &n.sample.endpoints {
            let entry = probing.entry(e.name.as_str()).or_default();
            entry.1 += 1;
            if e.state == EndpointState::Down {
                entry.0.push(name.as_str());
            }
        }
    }
    for p in problems.iter_mut() {
        let Some(ep) = p.component.strip_prefix("endpoint/") else {
            continue;
        };
        let Some((down, of)) = probing.get(ep) else {
            continue;
        };
        if !down.contains(&p.node.as_str()) {
            continue;
        }
        let k = down.len();
        let scope = if k == *of && *of > 1 {
            format!("unreachable from all {of} nodes: the service itself is down or refusing")
        } else {
            let mut named = down.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            if k > 5 {
                named.push_str(", …");
            }
            format!("unreachable from {k} of {of} nodes ({named})")
        };
        p.message = format!("{}; {scope}", p.message);
    }
}

/// Ranks `found` as the target's suspects, keeping the first-seen time of those already
/// suspected in `prev`; returns what appeared and cleared.
fn track_suspects(
    key: &ObjectRef,
    t: &mut TargetState,
    found: Vec<Suspect>,
    now: DateTime<Utc>,
) -> Vec<SuspectChange> {
    let prev: BTreeMap<String, DateTime<Utc>> =
        t.suspects.drain(..).map(|s| (s.name, s.since)).collect();
    t.suspects = found
        .into_iter()
        .map(|s| {
            let name = s.key();
            SuspectView {
                since: prev.get(&name).copied().unwrap_or(now),
                name,
                suspect: s,
                problems: 0,
            }
        })
        .collect();
    let mut changes = Vec::new();
    for s in &t.suspects {
        if !prev.contains_key(&s.name) {
            changes.push(SuspectChange::Appeared(key.clone(), s.clone()));
        }
    }
    for name in prev.keys() {
        if !t.suspects.iter().any(|s| &s.name == name) {
            changes.push(SuspectChange::Cleared(key.clone(), name.clone()));
        }
    }
    changes
}

impl Fleet {
    /// Localizes faults in every target at `now` ([`crate::localize`]), keeps each suspect's
    /// first-seen time, and returns the suspects that appeared and cleared.
    pub fn localize_all(&mut self, now: DateTime<Utc>) -> Vec<SuspectChange> {
        let mut changes = Vec::new();
        for (key, t) in self.targets.iter_mut() {
            let found = localize_target(t, &self.conditions, now);
            changes.extend(track_suspects(key, t, found, now));
        }
        changes
    }

    /// The suspects of `target` from the latest [`Fleet::localize_all`].
    pub fn suspects(&self, target: &ObjectRef) -> &[SuspectView] {
        self.targets
            .get(target)
            .map(|t| t.suspects.as_slice())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mesh_round, report, target, with_endpoint};
    use super::*;
    use crate::{alert::SeriesKey, derive::tests::t, fleet::Settings, health::Health};
    use fabricwatch_crds::alert_rule::{Metric, Scope};

    #[test]
    fn a_bad_node_is_the_suspect_and_replaces_its_pair_problems() {
        let mut f = Fleet::new(Settings::default());
        for seq in 1..=3 {
            mesh_round(&mut f, seq, None, 0);
        }
        assert!(f.localize_all(t(31)).is_empty());
        assert!(f.suspects(&target()).is_empty());
        mesh_round(&mut f, 4, Some("n2"), 40);
        let changes = f.localize_all(t(41));
        assert!(
            matches!(&changes[..], [SuspectChange::Appeared(_, s)] if s.name == "node/n2"),
            "{changes:?}"
        );
        let v = f.view(&target(), t(41)).expect("view");
        assert_eq!(v.health, Health::Critical);
        assert_eq!(v.suspects.len(), 1);
        assert_eq!(v.suspects[0].since, t(41));
        assert_eq!(
            v.suspects[0].problems, 4,
            "four pair problems grouped under it"
        );
        assert!(
            v.problems.iter().all(|p| !p.component.starts_with("ping/")),
            "{:?}",
            v.problems
        );
        // The suspect keeps its first-seen time, then clears with the fault.
        mesh_round(&mut f, 5, Some("n2"), 40);
        f.localize_all(t(51));
        assert_eq!(f.suspects(&target())[0].since, t(41));
        for seq in 6..=14 {
            mesh_round(&mut f, seq, None, 0);
        }
        let changes = f.localize_all(t(141));
        assert!(
            matches!(&changes[..], [SuspectChange::Cleared(_, n)] if n == "node/n2"),
            "{changes:?}"
        );
        assert_eq!(
            f.view(&target(), t(141)).expect("view").health,
            Health::Healthy
        );
        let s = f.series_values(&target(), Metric::NodeSuspect, Scope::PerNode, t(141));
        assert!(s.values().all(|v| *v == 0.0));
    }

    #[test]
    fn node_conditions_feed_node_health_and_suspects() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        f.set_node_conditions(BTreeMap::from([(
            "bb".to_string(),
            NodeConditions {
                not_ready: true,
                ..Default::default()
            },
        )]));
        f.localize_all(t(1));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        assert_eq!(v.suspects[0].name, "node/bb");
        assert!(v
            .problems
            .iter()
            .any(|p| p.component == "host/condition/Ready"));
        let n = f.nodes(&target(), t(1)).expect("nodes");
        assert_eq!(n[1].health, Health::Critical);
    }

    #[test]
    fn an_endpoint_down_from_one_node_names_that_node() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "up", 90),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n2", 1, 0, 0.0), "down", 90),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n3", 1, 0, 0.0), "up", 90),
            None,
            t(0),
        );
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        let p: Vec<_> = v
            .problems
            .iter()
            .filter(|p| p.component.starts_with("endpoint/"))
            .collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].node, "n2");
        assert_eq!(
            p[0].message,
            "endpoint api (https://api.example/healthz) unreachable: connect 10.96.0.7:443: Connection refused (os error 111); unreachable from 1 of 3 nodes (n2)"
        );
        let up = f.series_values(&target(), Metric::EndpointUp, Scope::PerNode, t(1));
        let key = |n: &str| SeriesKey {
            endpoint: Some("api".into()),
            ..SeriesKey::node(n)
        };
        assert_eq!(up.get(&key("n2")), Some(&0.0));
        assert_eq!(up.get(&key("n1")), Some(&1.0));
        let folded = f.series_values(&target(), Metric::EndpointUp, Scope::Target, t(1));
        assert_eq!(folded.values().copied().collect::<Vec<_>>(), vec![0.0]);
        let d = f.series_values(
            &target(),
            Metric::EndpointDurationSeconds,
            Scope::PerNode,
            t(1),
        );
        assert_eq!(d.get(&key("n1")), Some(&0.004));
    }

    #[test]
    fn an_endpoint_down_everywhere_is_the_service_and_expiry_is_graded() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "down", 10),
            None,
            t(0),
        );
        f.ingest(
            &with_endpoint(report("n2", 1, 0, 0.0), "down", 10),
            None,
            t(0),
        );
        let v = f.view(&target(), t(1)).expect("view");
        let down = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api")
            .expect("endpoint problem");
        assert!(
            down.message
                .ends_with("unreachable from all 2 nodes: the service itself is down or refusing"),
            "{}",
            down.message
        );
        let tls = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api/tls")
            .expect("certificate problem");
        assert_eq!(tls.severity, Health::Warning);
        assert_eq!(
            tls.message,
            "endpoint api certificate expires in 10.0 days (threshold 14 days)"
        );
        let days = f.series_values(
            &target(),
            Metric::TlsCertificateExpiryDays,
            Scope::Target,
            t(1),
        );
        assert_eq!(days.values().copied().collect::<Vec<_>>(), vec![10.0]);
        // Slow is a Warning of its own.
        let mut g = Fleet::new(Settings::default());
        g.ingest(
            &with_endpoint(report("n1", 1, 0, 0.0), "slow", 90),
            None,
            t(0),
        );
        let v = g.view(&target(), t(1)).expect("view");
        let slow = v
            .problems
            .iter()
            .find(|p| p.component == "endpoint/api")
            .expect("slow problem");
        assert_eq!(slow.severity, Health::Warning);
        assert_eq!(
            slow.message,
            "endpoint api (https://api.example/healthz) slow: 2.500 s"
        );
    }
}
