//! Prometheus metrics of analytics.
//!
//! Label sets are bounded: `namespace`/`target` by the MonitorTargets, `node` by the cluster's
//! nodes (series of forgotten nodes are dropped on each refresh), `rule` by the AlertRules,
//! `reason`/`result`/`kind` by fixed lists. No per-peer or per-port series.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::{
    alert::RuleState,
    fleet::{NodeGauges, TargetView},
    localize::SuspectKind,
};

/// All metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry served at `/metrics`.
    pub registry: Registry,
    /// `fabricwatch_analytics_reports_total{result}`: reports by outcome (`accepted`,
    /// `unauthenticated`, `forbidden`, `too_large`, `malformed`, `unsupported_schema`,
    /// `invalid`, `auth_unavailable`).
    pub reports: IntCounterVec,
    /// `fabricwatch_analytics_report_bytes`: size of accepted report bodies.
    pub report_bytes: Histogram,
    /// `fabricwatch_analytics_ingest_duration_seconds`: time to handle a report.
    pub ingest_seconds: Histogram,
    /// `fabricwatch_analytics_nodes`: nodes held in memory.
    pub nodes: IntGauge,
    /// `fabricwatch_target_health{namespace,target}`: 0 Healthy, 1 Warning, 2 Critical, 3 Unknown.
    pub target_health: GaugeVec,
    /// `fabricwatch_target_nodes_reporting{namespace,target}`.
    pub target_reporting: GaugeVec,
    /// `fabricwatch_target_anomalies{namespace,target}`: flagged series.
    pub target_anomalies: GaugeVec,
    /// `fabricwatch_node_health{namespace,target,node}`: as `fabricwatch_target_health`.
    pub node_health: GaugeVec,
    /// `fabricwatch_target_suspects{namespace,target,kind}`: suspects by kind (`node`,
    /// `link`, `domain`).
    pub target_suspects: GaugeVec,
    /// `fabricwatch_node_suspect{namespace,target,node,cause}`: the suspect's confidence
    /// (0–1), present only while the node is a node suspect.
    pub node_suspect: GaugeVec,
    /// `fabricwatch_node_network_score{namespace,target,node}`: 0–100.
    pub node_score: GaugeVec,
    /// `fabricwatch_node_anomaly_score{namespace,target,node}`: σ-equivalents, 3 = alarm.
    pub node_anomaly: GaugeVec,
    /// `fabricwatch_alert_state{namespace,rule}`: 0 Inactive, 1 Pending, 2 Firing, 3 Suppressed, 4 Silenced, 5 Acknowledged.
    pub alert_state: GaugeVec,
    /// `fabricwatch_alert_evaluations_total{result}`: rule evaluations (`ok`, `invalid`).
    pub evaluations: IntCounterVec,
    /// `fabricwatch_analytics_status_writes_total{kind,result}`: status applies
    /// (`applied`, `failed`).
    pub status_writes: IntCounterVec,
    /// `fabricwatch_analytics_notifications_total{result}`: notification requests
    /// (`accepted`, `duplicate`, `failed`, `dropped`).
    pub notifications: IntCounterVec,
    /// `fabricwatch_analytics_ai_triggers_total{reason}`: analysis triggers (`alert`, `anomaly`).
    pub triggers: IntCounterVec,
    /// `fabricwatch_analytics_last_evaluation_timestamp_seconds`.
    pub last_evaluation: Gauge,
}

fn gv(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn cv(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn hist(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Errors
    /// Registration errors (a programming error: duplicate names).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let m = Self {
            reports: cv(
                &r,
                "fabricwatch_analytics_reports_total",
                "Agent reports received, by result.",
                &["result"],
            )?,
            report_bytes: hist(
                &r,
                "fabricwatch_analytics_report_bytes",
                "Size of accepted agent report bodies.",
                prometheus::exponential_buckets(512.0, 2.0, 12)?,
            )?,
            ingest_seconds: hist(
                &r,
                "fabricwatch_analytics_ingest_duration_seconds",
                "Time to authenticate, parse and analyse one report.",
                prometheus::exponential_buckets(0.0001, 2.0, 16)?,
            )?,
            nodes: {
                let g = IntGauge::new(
                    "fabricwatch_analytics_nodes",
                    "Nodes held in memory, all targets.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            target_health: gv(
                &r,
                "fabricwatch_target_health",
                "Target health: 0 Healthy, 1 Warning, 2 Critical, 3 Unknown.",
                &["namespace", "target"],
            )?,
            target_reporting: gv(
                &r,
                "fabricwatch_target_nodes_reporting",
                "Agents that reported within three intervals.",
                &["namespace", "target"],
            )?,
            target_anomalies: gv(
                &r,
                "fabricwatch_target_anomalies",
                "Series currently flagged anomalous.",
                &["namespace", "target"],
            )?,
            node_health: gv(
                &r,
                "fabricwatch_node_health",
                "Node health: 0 Healthy, 1 Warning, 2 Critical, 3 Unknown.",
                &["namespace", "target", "node"],
            )?,
            target_suspects: gv(
                &r,
                "fabricwatch_target_suspects",
                "Fault localization suspects of the target by kind (node, link, domain).",
                &["namespace", "target", "kind"],
            )?,
            node_suspect: gv(
                &r,
                "fabricwatch_node_suspect",
                "Confidence 0-1 that the node is where a fault is; present only while it is a suspect.",
                &["namespace", "target", "node", "cause"],
            )?,
            node_score: gv(
                &r,
                "fabricwatch_node_network_score",
                "Worst path network quality score of the node, 0-100.",
                &["namespace", "target", "node"],
            )?,
            node_anomaly: gv(
                &r,
                "fabricwatch_node_anomaly_score",
                "Largest anomaly score of the node's series, sigma-equivalents (3 = alarm).",
                &["namespace", "target", "node"],
            )?,
            alert_state: gv(
                &r,
                "fabricwatch_alert_state",
                "AlertRule state: 0 Inactive, 1 Pending, 2 Firing, 3 Suppressed, 4 Silenced, 5 Acknowledged.",
                &["namespace", "rule"],
            )?,
            evaluations: cv(
                &r,
                "fabricwatch_alert_evaluations_total",
                "AlertRule evaluations, by result.",
                &["result"],
            )?,
            status_writes: cv(
                &r,
                "fabricwatch_analytics_status_writes_total",
                "Status server-side applies, by kind and result.",
                &["kind", "result"],
            )?,
            notifications: cv(
                &r,
                "fabricwatch_analytics_notifications_total",
                "Notification requests to the notifier, by result.",
                &["result"],
            )?,
            triggers: cv(
                &r,
                "fabricwatch_analytics_ai_triggers_total",
                "AI analysis triggers emitted, by reason.",
                &["reason"],
            )?,
            last_evaluation: {
                let g = Gauge::new(
                    "fabricwatch_analytics_last_evaluation_timestamp_seconds",
                    "Unix time of the last evaluation cycle.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            registry: r,
        };
        Ok(m)
    }

    /// Replaces the per-target and per-node gauges with `views` (so forgotten nodes and
    /// deleted targets disappear).
    pub fn refresh_targets(&self, views: &[(TargetView, Vec<NodeGauges>)]) {
        for g in [
            &self.target_health,
            &self.target_reporting,
            &self.target_anomalies,
            &self.node_health,
            &self.target_suspects,
            &self.node_suspect,
            &self.node_score,
            &self.node_anomaly,
        ] {
            g.reset();
        }
        for (v, nodes) in views {
            let t = [v.target.namespace.as_str(), v.target.name.as_str()];
            self.target_health
                .with_label_values(&t)
                .set(v.health.as_gauge());
            self.target_reporting
                .with_label_values(&t)
                .set(f64::from(v.nodes.reporting));
            self.target_anomalies
                .with_label_values(&t)
                .set(f64::from(v.summary.anomalies));
            for kind in [SuspectKind::Node, SuspectKind::Link, SuspectKind::Domain] {
                let n = v.suspects.iter().filter(|s| s.suspect.kind == kind).count();
                self.target_suspects
                    .with_label_values(&[t[0], t[1], kind.as_str()])
                    .set(n as f64);
            }
            for s in &v.suspects {
                if let Some(node) = &s.suspect.node {
                    self.node_suspect
                        .with_label_values(&[t[0], t[1], node.as_str(), s.suspect.cause.as_str()])
                        .set(s.suspect.confidence);
                }
            }
            for n in nodes {
                let l = [t[0], t[1], n.node.as_str()];
                self.node_health
                    .with_label_values(&l)
                    .set(n.health.as_gauge());
                if let Some(s) = n.network_score {
                    self.node_score.with_label_values(&l).set(s);
                }
                self.node_anomaly.with_label_values(&l).set(n.anomaly_score);
            }
        }
    }

    /// Replaces the alert state gauges.
    pub fn refresh_alerts<'a>(&self, states: impl Iterator<Item = (&'a str, &'a str, RuleState)>) {
        self.alert_state.reset();
        for (ns, name, s) in states {
            let v = match s {
                RuleState::Inactive => 0.0,
                RuleState::Pending => 1.0,
                RuleState::Firing => 2.0,
                RuleState::Suppressed => 3.0,
                RuleState::Silenced => 4.0,
                RuleState::Acknowledged => 5.0,
            };
            self.alert_state.with_label_values(&[ns, name]).set(v);
        }
    }
}
