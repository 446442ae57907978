//! Taking one agent report in: the node's identity and restarts, its derived sample and
//! probe history, windows and detectors, findings, and the peers the agent should probe
//! next.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fabricwatch_proto::{
    agent_config::ThresholdsConfig,
    report::{AgentReport, Peer},
    ObjectRef,
};

use super::{
    state::{NodeState, TargetState},
    AnomalyState, Fleet, Settings, TargetConfig, HISTORY_SERIES, SERIES,
};
use crate::{
    anomaly::{features::extra_series, series::SeriesDetectors, Mahalanobis},
    derive::{derive, CounterSnapshot, NodeSample},
    health::findings,
    loss::{bonferroni, lower_bound, PathHistory, FAMILY_ALPHA, SCAN_WINDOWS},
    peers::{assign, Candidate},
    window::Window,
};

/// What an accepted report produced.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestOutcome {
    /// Peers for the push response.
    pub peers: Vec<Peer>,
    /// The node's anomaly state went from nothing flagged to something flagged.
    pub new_anomaly: Option<AnomalyState>,
    /// The agent's `seq` went down: it restarted.
    pub agent_restarted: bool,
}

/// The report's interval when it gives a usable one, else the target's.
fn report_interval(report: &AgentReport, config: &TargetConfig) -> f64 {
    if report.interval_seconds.is_finite() && report.interval_seconds > 0.0 {
        report.interval_seconds
    } else {
        config.interval_seconds
    }
}

/// Appends each peer's probe counts to its history (peers no longer probed are dropped: their
/// paths were reassigned) and fills the samples' windowed probe counts and the loss each path
/// has at least, at the target's corrected confidence: `m` = nodes × this node's peers
/// verdicts, about what one evaluation of the whole target takes ([`crate::loss`]).
fn grade_paths(
    paths: &mut BTreeMap<String, PathHistory>,
    report: &AgentReport,
    sample: &mut NodeSample,
    nodes: usize,
) {
    let probed: BTreeSet<&str> = report
        .ping
        .iter()
        .filter(|p| p.sent > 0)
        .map(|p| p.peer.as_str())
        .collect();
    paths.retain(|k, _| probed.contains(k.as_str()));
    for p in report.ping.iter().filter(|p| p.sent > 0) {
        paths
            .entry(p.peer.clone())
            .or_default()
            .push(p.sent, p.received);
    }
    let alpha = bonferroni(FAMILY_ALPHA, nodes.max(1) * probed.len().max(1));
    for s in &mut sample.peers {
        if let Some(h) = paths.get(&s.peer) {
            let w = h.windows();
            let all = w[SCAN_WINDOWS.len() - 1];
            s.probes_sent = all.sent;
            s.probes_lost = all.lost;
            s.loss_lower_percent = Some(100.0 * lower_bound(&w, alpha));
        }
    }
}

impl NodeState {
    /// A node first heard of through `report`, with `detectors` restored from a saved
    /// baseline or fresh.
    fn new(
        report: &AgentReport,
        interval: f64,
        detectors: SeriesDetectors,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            address: None,
            domain: None,
            pod: None,
            last_report: report.collected_at,
            received_at: now,
            interval_seconds: interval,
            seq: report.seq,
            restarts: 0,
            sample: derive(report, None),
            counters: CounterSnapshot::default(),
            windows: SERIES
                .iter()
                .map(|(n, _)| *n)
                .chain(HISTORY_SERIES)
                .map(|n| (n, Window::new(settings.window)))
                .collect(),
            port_flaps: BTreeMap::new(),
            detectors,
            multivariate: Mahalanobis::new(
                SERIES.iter().map(|(_, f)| *f).collect(),
                settings.window,
                settings.warmup as usize,
            ),
            anomaly: AnomalyState::default(),
            findings: Vec::new(),
            problem_since: BTreeMap::new(),
            paths: BTreeMap::new(),
        }
    }

    /// A retried push whose answer was lost: the same report again. It proves the agent
    /// is alive, but must not be counted twice by windows, detectors and rates.
    fn is_resent(&self, report: &AgentReport) -> bool {
        report.seq == self.seq && report.collected_at <= self.last_report
    }

    /// Takes the agent's sequence number, address, pod, domain and interval from
    /// `report`; returns whether the agent restarted (its `seq` went down).
    fn note_agent(&mut self, report: &AgentReport, domain: Option<String>, interval: f64) -> bool {
        let restarted = report.seq < self.seq;
        if restarted {
            self.restarts += 1;
            // A restarted agent's counters may have been reset with the driver; no rates from them.
            self.counters = CounterSnapshot::default();
        }
        self.seq = report.seq;
        self.address = report.node_ip.clone().or(self.address.take());
        self.pod = report.pod.clone().or(self.pod.take());
        self.domain = domain.or(self.domain.take());
        self.interval_seconds = interval;
        restarted
    }

    /// The report's sample (rates against the previous counters, paths graded over
    /// `nodes` nodes) and its extra anomaly series; keeps the report's counters.
    fn take_sample(
        &mut self,
        report: &AgentReport,
        nodes: usize,
    ) -> (NodeSample, Vec<(&'static str, f64)>) {
        let mut sample = derive(report, Some(&self.counters));
        let extra = extra_series(report, &sample, Some(&self.counters));
        self.counters = CounterSnapshot::of(report);
        grade_paths(&mut self.paths, report, &mut sample, nodes);
        self.last_report = self.last_report.max(report.collected_at);
        (sample, extra)
    }

    /// The node's findings under `thresholds`, each problem keeping the time it was first
    /// seen; `sample` becomes the latest.
    fn grade(&mut self, sample: NodeSample, thresholds: &ThresholdsConfig, at: DateTime<Utc>) {
        self.findings = findings(&sample, thresholds);
        let current: BTreeSet<&str> = self.findings.iter().map(|f| f.component.as_str()).collect();
        self.problem_since
            .retain(|k, _| current.contains(k.as_str()));
        for f in &self.findings {
            self.problem_since.entry(f.component.clone()).or_insert(at);
        }
        self.sample = sample;
    }
}

impl TargetState {
    /// The peers `me` should probe at `now`: every reporting node with an address, all or
    /// `maxPeers` by rendezvous hashing (half in its own domain with a `topologyKey`).
    pub(super) fn peers_of(&self, me: &str, now: DateTime<Utc>) -> Vec<Peer> {
        let candidates: Vec<Candidate> = self
            .reporting(now)
            .filter_map(|(name, n)| {
                Some(Candidate {
                    node: name.clone(),
                    address: n.address.clone()?,
                    domain: n.domain.clone(),
                })
            })
            .collect();
        let my_domain = self
            .nodes
            .get(me)
            .and_then(|n| n.domain.as_deref())
            .filter(|_| self.config.topology_key.is_some());
        assign(me, my_domain, &candidates, self.config.max_peers)
    }
}

impl Fleet {
    /// Takes one report in. `domain` is the node's topology domain (value of the target's
    /// `topologyKey` label), `now` the receive time. A target not configured yet is created
    /// with defaults (its spec may still be on its way through the watch).
    pub fn ingest(
        &mut self,
        report: &AgentReport,
        domain: Option<String>,
        now: DateTime<Utc>,
    ) -> IngestOutcome {
        let settings = &self.settings;
        let t = self.targets.entry(report.target.clone()).or_default();
        t.last_report = Some(t.last_report.map_or(now, |l| l.max(now)));
        let interval = report_interval(report, &t.config);
        let known = t.nodes.contains_key(&report.node);
        let restored = if known {
            None
        } else {
            t.restored.remove(&report.node)
        };
        let node_count = t.nodes.len() + usize::from(!known);
        let node = t.nodes.entry(report.node.clone()).or_insert_with(|| {
            NodeState::new(
                report,
                interval,
                restored.unwrap_or_default(),
                settings,
                now,
            )
        });
        node.received_at = now;
        if known && node.is_resent(report) {
            return IngestOutcome {
                peers: t.peers_of(&report.node, now),
                new_anomaly: None,
                agent_restarted: false,
            };
        }
        let agent_restarted = node.note_agent(report, domain, interval);
        let (sample, extra) = node.take_sample(report, node_count);
        let at = report.collected_at;
        let scores = node.observe(&sample, extra, at, settings.window);
        let new_anomaly = node.flag(&report.node, scores, at, &mut t.anomalies);
        node.grade(sample, &t.config.thresholds, at);
        IngestOutcome {
            peers: t.peers_of(&report.node, now),
            new_anomaly,
            agent_restarted,
        }
    }

    /// The peers `node` of `target` should probe: the other reporting agents with an address,
    /// all of them or `maxPeers` by rendezvous hashing.
    pub fn peers(&self, target: &ObjectRef, node: &str, now: DateTime<Utc>) -> Vec<Peer> {
        self.targets
            .get(target)
            .map(|t| t.peers_of(node, now))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{report, target};
    use super::*;
    use crate::derive::tests::t;

    #[test]
    fn peers_exclude_self_and_honour_max_peers() {
        let mut f = Fleet::new(Settings::default());
        for i in 0..10 {
            f.ingest(
                &AgentReport {
                    node_ip: Some(format!("10.0.0.{i}")),
                    ..report(&format!("n{i}"), 1, 0, 0.0)
                },
                None,
                t(0),
            );
        }
        let out = f.ingest(
            &AgentReport {
                node_ip: Some("10.0.0.0".into()),
                ..report("n0", 2, 10, 0.0)
            },
            None,
            t(10),
        );
        assert_eq!(out.peers.len(), 9);
        assert!(out.peers.iter().all(|p| p.node != "n0"));
        f.configure(
            target(),
            TargetConfig {
                max_peers: Some(3),
                ..TargetConfig::default()
            },
        );
        assert_eq!(f.peers(&target(), "n0", t(10)).len(), 3);
    }

    #[test]
    fn a_resent_report_counts_once() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("a", 2, 10, 4.0), None, t(10));
        f.ingest(&report("a", 2, 10, 4.0), None, t(11));
        let h = f
            .history(&target(), "a", "ping_loss_percent")
            .expect("history");
        assert_eq!(h.len(), 2, "the retry is not a third sample");
        let n = f.nodes(&target(), t(11)).expect("nodes");
        assert_eq!(n[0].agent_restarts, 0);
    }

    #[test]
    fn agent_restart_is_detected_and_does_not_invent_rates() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 5, 0, 0.0), None, t(0));
        let out = f.ingest(&report("a", 1, 10, 0.0), None, t(10));
        assert!(out.agent_restarted);
        let n = f.nodes(&target(), t(10)).expect("nodes");
        assert_eq!(n[0].agent_restarts, 1);
        assert_eq!(n[0].latest.rdma_errors_per_minute, None);
    }
}
