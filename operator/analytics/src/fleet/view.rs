//! What the read API, the fleet view, the metrics and the status writer see: a target's
//! health, node counts, summary figures and ranked problems (with the problems a suspect
//! explains counted under it), every node's view, metric gauges and series history.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_proto::ObjectRef;
use serde::Serialize;

use super::{
    state::{NodeState, TargetState},
    suspects::localize_endpoints,
    AnomalyState, Fleet, SuspectView, LINK_FLAP_WINDOW_MINUTES,
};
use crate::{
    consistency::Inconsistency,
    derive::NodeSample,
    health::{target_health, Finding, Health},
    stats::quantile,
    window::{Sample, Window},
};

/// One top-N problem of a target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Node.
    pub node: String,
    /// Component path, e.g. `rdma/mlx5_0/1`; its first segment is `rdma`, `ping`, `host` or
    /// `agent`.
    pub component: String,
    /// Warning or Critical.
    pub severity: Health,
    /// Human text.
    pub message: String,
    /// Since when it is continuously present.
    pub since: DateTime<Utc>,
}

/// Fabric-wide figures of a target, over its reporting nodes' latest samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Highest loss of any reporting node to any peer over the path's recent probes
    /// ([`crate::loss::PATH_HISTORY`] reports), percent.
    pub worst_loss_percent: Option<f64>,
    /// 99th percentile (type 7) over every node-to-peer RTT p99, seconds.
    pub rtt_p99_seconds: Option<f64>,
    /// RDMA ports ACTIVE.
    pub rdma_ports_active: u32,
    /// RDMA ports down and not disabled.
    pub rdma_ports_down: u32,
    /// RDMA error increments per minute, all ports.
    pub rdma_errors_per_minute: Option<f64>,
    /// Flagged anomalous series, all nodes.
    pub anomalies: u32,
}

/// Node counts of a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCounts {
    /// Nodes known (reported at least once, not forgotten).
    pub known: u32,
    /// Reported within three intervals.
    pub reporting: u32,
    /// In Warning.
    pub warning: u32,
    /// In Critical.
    pub critical: u32,
    /// Nodes that should run an agent, when the controller has said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    /// Desired nodes never heard of (or forgotten): agents that never started or never
    /// reached analytics.
    pub missing: u32,
}

/// A target as dashboards and the status writer see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// The MonitorTarget.
    pub target: ObjectRef,
    /// Overall health.
    pub health: Health,
    /// Node counts.
    pub nodes: NodeCounts,
    /// Fabric-wide figures.
    pub summary: Summary,
    /// Suspects of the latest localization, most severe and confident first.
    pub suspects: Vec<SuspectView>,
    /// Worst problems first, at most `Settings::max_problems`; problems a suspect explains
    /// (its pair problems, a down node's silence) are counted under it instead.
    pub problems: Vec<Problem>,
    /// Latest report received from any node.
    pub last_report_time: Option<DateTime<Utc>>,
}

/// Rolling statistics of one series of one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesStats {
    /// Latest value.
    pub last: Option<f64>,
    /// Window mean.
    pub mean: Option<f64>,
    /// Window standard deviation.
    pub std_dev: Option<f64>,
    /// Window median.
    pub p50: Option<f64>,
    /// Window 99th percentile.
    pub p99: Option<f64>,
    /// Samples in the window.
    pub samples: usize,
}

/// One node as dashboards see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Node name.
    pub node: String,
    /// Health.
    pub health: Health,
    /// Address peers probe.
    pub address: Option<String>,
    /// Topology domain.
    pub domain: Option<String>,
    /// Agent pod.
    pub pod: Option<String>,
    /// Collection time of the latest report.
    pub last_report_time: DateTime<Utc>,
    /// Agent restarts seen (sequence number drops).
    pub agent_restarts: u64,
    /// Findings of the latest report.
    pub findings: Vec<Finding>,
    /// Anomaly state.
    pub anomaly: AnomalyState,
    /// Rolling statistics per series.
    pub series: BTreeMap<String, SeriesStats>,
    /// Link flaps per port over the last 10 minutes.
    pub link_flaps: BTreeMap<String, f64>,
    /// Seconds of history held for this node: from its oldest windowed sample to now.
    pub history_seconds: f64,
    /// The latest derived sample.
    pub latest: NodeSample,
}

/// The per-node values exported as metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeGauges {
    /// Node name.
    pub node: String,
    /// Health.
    pub health: Health,
    /// Worst-path network score.
    pub network_score: Option<f64>,
    /// Anomaly score.
    pub anomaly_score: f64,
}

/// What a target's nodes add up to, before suspects group their problems.
struct Rollup {
    counts: NodeCounts,
    summary: Summary,
    problems: Vec<Problem>,
    /// Each known node's health in the view.
    healths: Vec<Health>,
}

/// The problem of a node whose agent went silent.
fn silent_problem(name: &str, n: &NodeState) -> Problem {
    Problem {
        node: name.to_string(),
        component: "agent".into(),
        severity: Health::Critical,
        message: format!(
            "agent has not reported since {}",
            n.received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        since: n.received_at,
    }
}

/// Adds a reporting node's latest sample to the summary; its RTT p99s go to `p99s`.
fn add_sample(summary: &mut Summary, p99s: &mut Vec<f64>, n: &NodeState) {
    let s = &n.sample;
    // Over each path's recent probes, not one report's ten.
    let windowed = s
        .peers
        .iter()
        .map(|p| {
            if p.probes_sent > 0 {
                100.0 * p.probes_lost as f64 / p.probes_sent as f64
            } else {
                p.loss_percent
            }
        })
        .reduce(f64::max);
    summary.worst_loss_percent = [summary.worst_loss_percent, windowed]
        .into_iter()
        .flatten()
        .reduce(f64::max);
    p99s.extend(s.peers.iter().filter_map(|p| p.rtt_p99_seconds));
    summary.rdma_ports_active += s.rdma_ports_active;
    summary.rdma_ports_down += s.rdma_ports_down;
    if let Some(e) = s.rdma_errors_per_minute {
        *summary.rdma_errors_per_minute.get_or_insert(0.0) += e;
    }
    summary.anomalies += n.anomaly.flagged.len() as u32;
}

/// The fleet-check findings as Warning problems.
fn inconsistency_problems<'a>(
    t: &'a TargetState,
    found: &'a [Inconsistency],
    now: DateTime<Utc>,
) -> impl Iterator<Item = Problem> + 'a {
    found.iter().map(move |i| Problem {
        node: i.node.clone(),
        component: i.component.clone(),
        severity: Health::Warning,
        message: i.message.clone(),
        // Re-checked on every view; the node's latest report is when it was last seen.
        since: t.nodes.get(&i.node).map_or(now, |n| n.last_report),
    })
}

/// Removes from `problems` those a suspect explains (its pair problems; for a node suspect,
/// its node's silence) and counts them under the first suspect that explains each; returns
/// the suspects with their counts.
fn group_under_suspects(suspects: &[SuspectView], problems: &mut Vec<Problem>) -> Vec<SuspectView> {
    let mut grouped = suspects.to_vec();
    let mut explained: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut down: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, sv) in suspects.iter().enumerate() {
        for (a, b) in &sv.suspect.paths {
            explained.entry((a.as_str(), b.as_str())).or_insert(i);
        }
        if let Some(n) = &sv.suspect.node {
            down.entry(n.as_str()).or_insert(i);
        }
    }
    problems.retain(|p| {
        let peer = p
            .component
            .strip_prefix("ping/")
            .map(|r| r.strip_suffix("/rtt").unwrap_or(r));
        let by = match peer {
            Some(peer) => explained.get(&(p.node.as_str(), peer)),
            None if p.component == "agent" => down.get(p.node.as_str()),
            None => None,
        };
        match by {
            Some(i) => {
                grouped[*i].problems += 1;
                false
            }
            None => true,
        }
    });
    grouped
}

/// The target's health: over its nodes' (`healths`, missing nodes as Unknown), at least
/// as bad as its worst suspect unless Unknown, and Warning instead of Healthy when the
/// fleet checks found something.
fn view_health(healths: Vec<Health>, suspects: &[SuspectView], inconsistent: bool) -> Health {
    let mut health = target_health(healths);
    if let Some(worst) = suspects
        .iter()
        .map(|s| s.suspect.severity)
        .max_by_key(|h| h.rank())
    {
        if health != Health::Unknown && worst.rank() > health.rank() {
            health = worst;
        }
    }
    if health == Health::Healthy && inconsistent {
        health = Health::Warning;
    }
    health
}

/// Most severe first, then oldest, then by node and component; at most `max`.
fn rank_problems(problems: &mut Vec<Problem>, max: usize) {
    problems.sort_by(|a, b| {
        b.severity
            .rank()
            .cmp(&a.severity.rank())
            .then(a.since.cmp(&b.since))
            .then_with(|| (&a.node, &a.component).cmp(&(&b.node, &b.component)))
    });
    problems.truncate(max);
}

/// A window's rolling statistics.
fn series_stats(w: &Window) -> SeriesStats {
    SeriesStats {
        last: w.last().map(|s| s.value),
        mean: w.mean(),
        std_dev: w.std_dev(),
        p50: w.quantile(0.5),
        p99: w.quantile(0.99),
        samples: w.len(),
    }
}

/// Seconds from the node's oldest windowed sample to `now` (0 without samples).
fn history_seconds(n: &NodeState, now: DateTime<Utc>) -> f64 {
    n.windows
        .values()
        .filter_map(|w| w.samples().next().map(|s| s.at))
        .min()
        .map_or(0.0, |oldest| {
            (now - oldest).num_milliseconds().max(0) as f64 / 1000.0
        })
}

impl Fleet {
    /// A node's health in its target's view: its own, raised to the severity of the
    /// suspect that is the node unless Unknown.
    fn view_health_of(
        &self,
        t: &TargetState,
        name: &str,
        n: &NodeState,
        now: DateTime<Utc>,
    ) -> Health {
        let mut h = self.health_of(name, n, now);
        // A node suspect is at least as bad as the suspect, even when no single path of
        // it is beyond a threshold on its own.
        if let Some(sv) = t.node_suspect(name) {
            if h != Health::Unknown && sv.suspect.severity.rank() > h.rank() {
                h = sv.suspect.severity;
            }
        }
        h
    }

    /// Counts, summary, problems and healths over the target's nodes.
    fn roll_up(&self, t: &TargetState, now: DateTime<Utc>) -> Rollup {
        let mut r = Rollup {
            counts: NodeCounts {
                known: t.nodes.len() as u32,
                desired: t.config.desired_nodes,
                missing: t
                    .config
                    .desired_nodes
                    .map_or(0, |d| d.saturating_sub(t.nodes.len() as u32)),
                ..Default::default()
            },
            summary: Summary::default(),
            problems: Vec::new(),
            healths: Vec::new(),
        };
        let mut p99s = Vec::new();
        for (name, n) in &t.nodes {
            let h = self.view_health_of(t, name, n, now);
            r.healths.push(h);
            match h {
                Health::Unknown => {
                    r.problems.push(silent_problem(name, n));
                    continue;
                }
                Health::Warning => r.counts.warning += 1,
                Health::Critical => r.counts.critical += 1,
                Health::Healthy => {}
            }
            r.counts.reporting += 1;
            add_sample(&mut r.summary, &mut p99s, n);
            r.problems
                .extend(self.findings_of(name, n).into_iter().map(|f| {
                    Problem {
                        node: name.clone(),
                        since: n
                            .problem_since
                            .get(&f.component)
                            .copied()
                            .unwrap_or(n.last_report),
                        component: f.component,
                        severity: f.severity,
                        message: f.message,
                    }
                }));
        }
        r.summary.rtt_p99_seconds = quantile(&p99s, 0.99);
        r
    }

    /// The view of `target` at `now`; `None` when unknown.
    pub fn view(&self, target: &ObjectRef, now: DateTime<Utc>) -> Option<TargetView> {
        let t = self.targets.get(target)?;
        let Rollup {
            counts,
            summary,
            mut problems,
            mut healths,
        } = self.roll_up(t, now);
        localize_endpoints(t, now, &mut problems);
        let inconsistencies = t.inconsistencies(now);
        problems.extend(inconsistency_problems(t, &inconsistencies, now));
        let suspects = group_under_suspects(&t.suspects, &mut problems);
        healths.extend(std::iter::repeat_n(
            Health::Unknown,
            counts.missing as usize,
        ));
        let health = view_health(healths, &suspects, !inconsistencies.is_empty());
        rank_problems(&mut problems, self.settings.max_problems);
        Some(TargetView {
            target: target.clone(),
            health,
            nodes: counts,
            summary,
            suspects,
            problems,
            last_report_time: t.last_report,
        })
    }

    /// Views of every node of `target`.
    pub fn nodes(&self, target: &ObjectRef, now: DateTime<Utc>) -> Option<Vec<NodeView>> {
        let t = self.targets.get(target)?;
        let since = now - Duration::minutes(LINK_FLAP_WINDOW_MINUTES);
        Some(
            t.nodes
                .iter()
                .map(|(name, n)| NodeView {
                    node: name.clone(),
                    health: self.health_of(name, n, now),
                    address: n.address.clone(),
                    domain: n.domain.clone(),
                    pod: n.pod.clone(),
                    last_report_time: n.last_report,
                    agent_restarts: n.restarts,
                    findings: self.findings_of(name, n),
                    anomaly: n.anomaly.clone(),
                    series: n
                        .windows
                        .iter()
                        .map(|(k, w)| (k.to_string(), series_stats(w)))
                        .collect(),
                    link_flaps: n
                        .port_flaps
                        .iter()
                        .map(|((d, p), w)| (format!("{d}/{p}"), w.increase_since(since)))
                        .collect(),
                    history_seconds: history_seconds(n, now),
                    latest: n.sample.clone(),
                })
                .collect(),
        )
    }

    /// Per node of `target`: name, health, network score, anomaly score — what the metrics
    /// export, without building full [`NodeView`]s.
    pub fn node_gauges(&self, target: &ObjectRef, now: DateTime<Utc>) -> Vec<NodeGauges> {
        self.targets
            .get(target)
            .map(|t| {
                t.nodes
                    .iter()
                    .map(|(name, n)| NodeGauges {
                        node: name.clone(),
                        health: self.health_of(name, n, now),
                        network_score: n.sample.network_score,
                        anomaly_score: n.anomaly.score,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The window of one series of one node, oldest first; `None` when unknown.
    pub fn history(&self, target: &ObjectRef, node: &str, series: &str) -> Option<Vec<Sample>> {
        let w = self
            .targets
            .get(target)?
            .nodes
            .get(node)?
            .windows
            .get(series)?;
        Some(w.samples().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{report, roce_report, target};
    use super::*;
    use crate::{
        alert::SeriesKey,
        derive::tests::t,
        fleet::{Settings, TargetConfig},
    };
    use fabricwatch_crds::alert_rule::{Metric, Scope};

    #[test]
    fn health_summary_and_problems_follow_reports() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        // 8 of 100 probes lost: at least 1 % (warning) with confidence, not at least 5 %.
        f.ingest(&report("bb", 1, 0, 8.0), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Warning);
        assert_eq!(
            v.nodes,
            NodeCounts {
                known: 2,
                reporting: 2,
                warning: 1,
                critical: 0,
                ..Default::default()
            }
        );
        assert_eq!(v.summary.worst_loss_percent, Some(8.0));
        assert_eq!(v.summary.rdma_ports_active, 2);
        assert_eq!(v.problems.len(), 1);
        assert_eq!(
            (
                v.problems[0].node.as_str(),
                v.problems[0].component.as_str()
            ),
            ("bb", "ping/other")
        );
        // Second report: the problem keeps its first-seen time; RDMA rates now exist.
        f.ingest(&report("bb", 2, 10, 9.0), None, t(10));
        let v = f.view(&target(), t(11)).expect("view");
        let ping = v
            .problems
            .iter()
            .find(|p| p.component == "ping/other")
            .expect("ping problem");
        assert_eq!(ping.since, t(0));
        // symbol_error went 10 → 20 in 10 s: 60 per minute → Critical for rdma errors,
        // listed first.
        assert_eq!(v.health, Health::Critical);
        assert_eq!(
            (v.problems[0].component.as_str(), v.problems[0].since),
            ("rdma/mlx5_0/1/errors", t(10))
        );
        assert_eq!(v.summary.rdma_errors_per_minute, Some(60.0));
    }

    #[test]
    fn desired_nodes_that_never_report_keep_the_target_out_of_healthy() {
        let mut f = Fleet::new(Settings::default());
        f.configure(
            target(),
            TargetConfig {
                desired_nodes: Some(3),
                ..TargetConfig::default()
            },
        );
        f.ingest(&report("a", 1, 0, 0.0), None, t(0));
        f.ingest(&report("bb", 1, 0, 0.0), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!((v.nodes.missing, v.nodes.desired), (1, Some(3)));
        assert_eq!(v.health, Health::Warning);
        f.ingest(&report("ccc", 1, 0, 0.0), None, t(0));
        assert_eq!(
            f.view(&target(), t(1)).expect("view").health,
            Health::Healthy
        );
    }

    #[test]
    fn congestion_and_consistency_reach_problems_health_and_alert_values() {
        let mut f = Fleet::new(Settings::default());
        f.ingest(&roce_report("a", 1, 0, "16.35.2000", 0.0), None, t(0));
        f.ingest(&roce_report("bb", 1, 0, "16.35.2000", 0.0), None, t(0));
        f.ingest(&roce_report("ccc", 1, 0, "16.28.1002", 0.5), None, t(0));
        let v = f.view(&target(), t(1)).expect("view");
        assert_eq!(v.health, Health::Critical);
        let storm = v
            .problems
            .iter()
            .find(|p| p.component == "rdma/mlx5_0/1/pause-storm")
            .expect("storm problem");
        assert_eq!(
            (storm.node.as_str(), storm.severity),
            ("ccc", Health::Critical)
        );
        assert!(
            storm.message.contains("mlx5_0/1 (ens1f0), priority 3"),
            "{}",
            storm.message
        );
        let fw = v
            .problems
            .iter()
            .find(|p| p.component == "rdma/mlx5_0/firmware")
            .expect("firmware problem");
        assert_eq!((fw.node.as_str(), fw.severity), ("ccc", Health::Warning));
        let inc = f.series_values(&target(), Metric::RdmaInconsistencies, Scope::PerNode, t(1));
        assert_eq!(inc.get(&SeriesKey::node("ccc")), Some(&1.0));
        assert_eq!(inc.get(&SeriesKey::node("a")), Some(&0.0));
        let pause = f.series_values(
            &target(),
            Metric::RdmaPauseFramesPerSecond,
            Scope::Target,
            t(1),
        );
        assert_eq!(pause.values().copied().collect::<Vec<_>>(), [2000.0]);
        let storms = f.series_values(
            &target(),
            Metric::RdmaPauseStormEventsPerMinute,
            Scope::PerNode,
            t(1),
        );
        assert_eq!(storms.values().copied().fold(0.0, f64::max), 30.0);
        // The same firmware everywhere and no storm: Healthy again.
        f.ingest(&roce_report("ccc", 2, 10, "16.35.2000", 0.0), None, t(10));
        let v = f.view(&target(), t(11)).expect("view");
        assert_eq!(v.health, Health::Healthy, "{:?}", v.problems);
    }
}
