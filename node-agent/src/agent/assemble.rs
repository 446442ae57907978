//! One collection's results assembled into the report and the `/status` snapshot. Each
//! collector's outcome adds its own part through [`Fold`], implemented next to the
//! collector; [`Agent::assemble`] folds them in a fixed order (rdma, host, ping,
//! endpoints), which is the order of the report's errors and of the problems.

use std::collections::BTreeMap;

use fabricwatch_proto::{
    agent_config::AgentConfig,
    report::{AgentReport, CollectorError, REPORT_SCHEMA_VERSION},
};

use super::{
    cycle::{Collectors, Cycle},
    Agent, MAX_REPORT_ERRORS,
};
use crate::{
    health::{self, CollectorResult, Problem},
    metrics::AgentMetrics,
    snapshot::{ErrorCount, PeerTotals, Snapshot},
};

/// A collector's outcome folded into the report and snapshot being assembled.
pub trait Fold {
    /// Adds this outcome to `a`: its report section and snapshot fields, its collector
    /// result, its errors (through [`Assembly::error`]) and the problems it shows.
    fn fold_into(self, a: &mut Assembly<'_>);
}

/// The report and snapshot of one collection while the collectors' outcomes are folded in.
pub struct Assembly<'a> {
    /// The agent configuration (thresholds, which collectors are enabled).
    pub config: &'a AgentConfig,
    /// The report being built.
    pub report: AgentReport,
    /// The `/status` snapshot being built.
    pub snapshot: Snapshot,
    /// Thresholds crossed, in fold order.
    pub problems: Vec<Problem>,
    /// How each collector fared, for [`health::next_state`].
    pub results: Vec<CollectorResult>,
    /// Probes sent and answered per peer since the agent started (kept between
    /// collections; peers no longer probed are dropped by the ping fold).
    pub ping_totals: &'a mut BTreeMap<String, PeerTotals>,
    errors: Vec<CollectorError>,
    counts: BTreeMap<(String, String), u64>,
}

impl Assembly<'_> {
    /// Records a skipped file or failed probe: counted by `(collector, kind)` for
    /// `fabricwatch_agent_collector_errors_total` and `/status`, and listed in the report
    /// (the first [`MAX_REPORT_ERRORS`] of the collection).
    pub fn error(&mut self, collector: &str, kind: &str, subject: String, message: String) {
        *self
            .counts
            .entry((collector.to_string(), kind.to_string()))
            .or_default() += 1;
        self.errors.push(CollectorError {
            collector: collector.into(),
            subject,
            message,
        });
    }

    /// Folds a timed outcome of collector `name` (recording its duration), or, when the
    /// collection produced none, a failed or disabled result.
    fn fold_timed(&mut self, name: &str, enabled: bool, outcome: Option<(impl Fold, f64)>) {
        match outcome {
            Some((out, secs)) => {
                self.snapshot.durations_seconds.insert(name.into(), secs);
                out.fold_into(self);
            }
            None => self.results.push(if enabled {
                CollectorResult::Failed
            } else {
                CollectorResult::Disabled
            }),
        }
    }

    /// Counts the errors in `metrics` and the snapshot, caps the report's error list and
    /// grades the problems.
    fn finish(mut self, metrics: &AgentMetrics) -> (AgentReport, Snapshot, Vec<CollectorResult>) {
        for ((collector, kind), n) in &self.counts {
            metrics
                .collector_errors
                .with_label_values(&[collector.as_str(), kind.as_str()])
                .inc_by(*n);
            self.snapshot.errors.push(ErrorCount {
                collector: collector.clone(),
                kind: kind.clone(),
                count: *n,
            });
        }
        self.errors.truncate(MAX_REPORT_ERRORS);
        self.report.collector_errors = self.errors;
        self.snapshot.health = health::overall(&self.problems);
        self.snapshot.problems = self.problems;
        self.snapshot.ping_totals = self.ping_totals.clone();
        (self.report, self.snapshot, self.results)
    }
}

impl Agent {
    /// The report, snapshot and collector results of one collection (the agent state is
    /// set by the caller).
    pub(super) fn assemble(
        &self,
        cfg: &AgentConfig,
        cycle: Cycle,
        seq: u64,
        interval: f64,
        totals: &mut BTreeMap<String, PeerTotals>,
        collectors: &Collectors,
    ) -> (AgentReport, Snapshot, Vec<CollectorResult>) {
        let report = AgentReport {
            schema_version: REPORT_SCHEMA_VERSION,
            target: cfg.target.clone().unwrap_or_default(),
            node: self.identity.node.clone(),
            node_ip: self.identity.node_ip.clone(),
            pod: self.identity.pod.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            seq,
            collected_at: chrono::Utc::now(),
            interval_seconds: interval,
            ..AgentReport::default()
        };
        let mut a = Assembly {
            config: cfg,
            report,
            snapshot: Snapshot::default(),
            problems: Vec::new(),
            results: Vec::new(),
            ping_totals: totals,
            errors: Vec::new(),
            counts: BTreeMap::new(),
        };
        a.fold_timed("rdma", cfg.rdma.enabled, cycle.rdma);
        a.fold_timed("host", cfg.host.enabled, cycle.host);
        a.fold_timed("ping", cfg.ping.enabled, cycle.ping);
        cycle.endpoints.fold_into(&mut a);
        a.snapshot.icmp_socket = collectors.ping.icmp_kind();
        a.snapshot.icmp_timestamps = collectors.ping.icmp_timestamps();
        a.finish(&self.metrics)
    }
}
