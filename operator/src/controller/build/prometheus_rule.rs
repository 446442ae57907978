//! The PrometheusRule twin of an AlertRule: the same threshold as a Prometheus alerting rule
//! over the agents' own metrics (as scraped through their PodMonitor), for users who route
//! alerts through Prometheus and Alertmanager.
//!
//! Metrics that only analytics computes (`network_score`, `anomaly_score`,
//! `agents_not_reporting`, `rdma_inconsistencies`) have no twin.

use fabricwatch_crds::alert_rule::{AlertRule, Metric, Operator, Scope};
use kube::ResourceExt;
use serde_json::{json, Value};

use super::{owner_ref, BuildError};
use crate::controller::names::{agent_name, child_name, label_value, MANAGED_BY};

/// The agent's Ethernet driver statistics of RoCE netdevs (labels `statistic`, `signal`,
/// `priority`).
const ETHTOOL: &str = "fabricwatch_rdma_ethtool_statistics_total";

/// Window of `rate()` in the rendered expressions: several scrapes even at a 1 m scrape
/// interval, so one missed scrape does not empty the rate.
pub const RATE_WINDOW: &str = "5m";

/// PromQL of `metric` (per agent series) for the agents of `target` in `namespace`, or `None`
/// when only analytics computes the metric.
pub fn expression(metric: Metric, namespace: &str, target: &str) -> Option<String> {
    let sel = format!(
        "namespace=\"{namespace}\",pod=~\"{}-.*\"",
        agent_name(target)
    );
    let w = RATE_WINDOW;
    Some(match metric {
        Metric::PingLossPercent => format!("100 * fabricwatch_ping_loss_ratio{{{sel}}}"),
        Metric::PingRttP99Seconds => format!("fabricwatch_ping_rtt_seconds{{{sel},stat=\"p99\"}}"),
        Metric::PingJitterSeconds => format!("fabricwatch_ping_jitter_seconds{{{sel}}}"),
        Metric::RdmaSymbolErrorsPerMinute => format!(
            "60 * rate(fabricwatch_rdma_port_counters_total{{{sel},counter=\"symbol_error\"}}[{w}])"
        ),
        Metric::RdmaLinkErrorsPerMinute => format!(
            "60 * sum without (counter) (rate(fabricwatch_rdma_port_counters_total{{{sel},counter=~\"link_error_recovery|link_downed\"}}[{w}]))"
        ),
        Metric::RdmaRcvErrorsPerMinute => format!(
            "60 * rate(fabricwatch_rdma_port_counters_total{{{sel},counter=\"port_rcv_errors\"}}[{w}])"
        ),
        Metric::RdmaPortsDown => format!(
            "sum by (namespace, pod) (1 - fabricwatch_rdma_port_active{{{sel}}})"
        ),
        Metric::RdmaLinkFlaps => {
            format!("increase(fabricwatch_rdma_port_link_flaps_total{{{sel}}}[10m])")
        }
        Metric::CpuUsagePercent => format!("100 * fabricwatch_host_cpu_usage_ratio{{{sel}}}"),
        Metric::MemoryUsedPercent => {
            format!("100 * fabricwatch_host_memory_used_ratio{{{sel}}}")
        }
        Metric::DiskFreePercent => {
            format!("100 * fabricwatch_host_filesystem_free_ratio{{{sel}}}")
        }
        Metric::RdmaCnpSentPerSecond => {
            format!("rate(fabricwatch_rdma_congestion_cnp_sent_total{{{sel}}}[{w}])")
        }
        Metric::RdmaCnpHandledPerSecond => {
            format!("rate(fabricwatch_rdma_congestion_cnp_handled_total{{{sel}}}[{w}])")
        }
        Metric::RdmaEcnMarkedPerSecond => {
            format!("rate(fabricwatch_rdma_congestion_ecn_marked_packets_total{{{sel}}}[{w}])")
        }
        Metric::RdmaOutOfBufferPerSecond => {
            format!("rate(fabricwatch_rdma_congestion_out_of_buffer_total{{{sel}}}[{w}])")
        }
        Metric::RdmaPauseFramesPerSecond => format!(
            "max without (priority) (sum without (statistic, signal) (rate({ETHTOOL}{{{sel},signal=~\"pause_received|pause_transmitted\"}}[{w}])))"
        ),
        Metric::RdmaPausePercent => format!(
            "max without (priority, statistic, signal) (rate({ETHTOOL}{{{sel},signal=~\"pause_duration_(received|transmitted)_microseconds\"}}[{w}])) / 1e4"
        ),
        Metric::RdmaDiscardsPerMinute => format!(
            "60 * sum without (priority, statistic, signal) (rate({ETHTOOL}{{{sel},signal=~\"discards_received|buffer_discards|congestion_discards\"}}[{w}]))"
        ),
        Metric::RdmaPauseStormEventsPerMinute => format!(
            "60 * sum without (priority, statistic, signal) (rate({ETHTOOL}{{{sel},signal=~\"pause_storm_(warning|error)_events\"}}[{w}]))"
        ),
        Metric::EndpointUp => format!("fabricwatch_endpoint_up{{{sel}}}"),
        Metric::EndpointDurationSeconds => {
            format!("fabricwatch_endpoint_duration_seconds{{{sel}}}")
        }
        Metric::TlsCertificateExpiryDays => format!(
            "(fabricwatch_endpoint_tls_certificate_expiry_timestamp_seconds{{{sel}}} - time()) / 86400"
        ),
        Metric::NetworkScore
        | Metric::AnomalyScore
        | Metric::AgentsNotReporting
        | Metric::RdmaInconsistencies
        | Metric::NodeSuspect => return None,
    })
}

/// `ping-loss` → `FabricwatchPingLoss` (Prometheus alert names are metric-name-like).
pub fn alert_name(rule: &str) -> String {
    let mut out = String::from("Fabricwatch");
    for part in rule.split(['-', '.']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// Prometheus duration of a whole number of milliseconds or seconds (Prometheus rejects
/// fractions such as `1.5h`).
fn prom_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Rewrites AlertRule template placeholders into Prometheus template syntax
/// (`{{ value }}` → `{{ $value }}`, `{{ node }}` → `{{ $labels.node }}`, ...); the caller
/// substitutes the per-rule constants `{{ threshold }}`, `{{ metric }}` and `{{ target }}`
/// first ([`literal_placeholders`]): they are no series labels, and Prometheus rejects the
/// rule group for an unknown template function such as `metric`.
pub fn prom_template(text: &str) -> String {
    let mut out = text.replace("{{ value }}", "{{ $value }}");
    for label in ["node", "device", "port", "peer", "namespace", "pod"] {
        out = out.replace(
            &format!("{{{{ {label} }}}}"),
            &format!("{{{{ $labels.{label} }}}}"),
        );
    }
    out
}

/// The PrometheusRule object for `rule`, or `Ok(None)` when its metric has no twin.
///
/// # Errors
/// [`BuildError`] when the rule has no uid or `for` does not parse.
pub fn build(rule: &AlertRule) -> Result<Option<Value>, BuildError> {
    let ns = rule.namespace().unwrap_or_default();
    let spec = &rule.spec;
    let Some(expr) = expression(spec.metric, &ns, &spec.target_ref.name) else {
        return Ok(None);
    };
    let owner = owner_ref(rule)?;
    let expr = match (spec.scope, spec.operator) {
        (Scope::PerNode, _) => expr,
        (Scope::Target, Operator::Lt | Operator::Lte) => format!("min({expr})"),
        (Scope::Target, _) => format!("max({expr})"),
    };
    let expr = format!("{expr} {} {}", spec.operator.promql(), spec.threshold);
    let for_ = spec.for_.to_std().map_err(|message| BuildError::Spec {
        path: "spec.for".into(),
        message,
    })?;
    let mut annotations = serde_json::Map::new();
    let threshold = spec.threshold.to_string();
    for (key, text) in [
        ("summary", &spec.annotations.summary),
        ("description", &spec.annotations.description),
        ("runbook_url", &spec.annotations.runbook_url),
    ] {
        if let Some(t) = text {
            let t = prom_template(&literal_placeholders(t, rule, &threshold));
            annotations.insert(key.into(), Value::String(t));
        }
    }
    let mut labels = std::collections::BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "fabricwatch".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            label_value(&rule.name_any()),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "alertrule".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ]);
    if let Some(p) = &spec.prometheus_rule {
        labels.extend(p.labels.clone());
    }
    let severity = serde_json::to_value(spec.severity).unwrap_or(Value::Null);
    Ok(Some(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": prometheus_rule_name(&rule.name_any()),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "groups": [{
                "name": format!("fabricwatch.{}", rule.name_any()),
                "rules": [{
                    "alert": alert_name(&rule.name_any()),
                    "expr": expr,
                    "for": prom_duration(for_),
                    "labels": {
                        "severity": severity,
                        "fabricwatch_alertrule": rule.name_any(),
                        "metric": spec.metric.as_str(),
                    },
                    "annotations": annotations,
                }],
            }],
        },
    })))
}

/// Substitutes the placeholders that are constant for `rule`: `{{ threshold }}` (as
/// `threshold`), `{{ metric }}` (the metric's documented name) and `{{ target }}` (the
/// MonitorTarget's name).
pub fn literal_placeholders(text: &str, rule: &AlertRule, threshold: &str) -> String {
    text.replace("{{ threshold }}", threshold)
        .replace("{{ metric }}", rule.spec.metric.as_str())
        .replace("{{ target }}", &rule.spec.target_ref.name)
}

/// Name of the PrometheusRule twin of AlertRule `rule`.
pub fn prometheus_rule_name(rule: &str) -> String {
    child_name(rule, "fabricwatch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_crds::AlertRuleSpec;

    fn rule(extra: &str) -> AlertRule {
        rule_of("ping_loss_percent", "gt", extra)
    }

    fn rule_of(metric: &str, operator: &str, extra: &str) -> AlertRule {
        let spec: AlertRuleSpec = serde_yaml::from_str(&format!(
            "targetRef: {{name: fabric}}\nmetric: {metric}\noperator: {operator}\nthreshold: 5\nfor: 1.5m\nprometheusRule: {{enabled: true, labels: {{release: prom}}}}\n{extra}"
        ))
        .expect("spec");
        let mut r = AlertRule::new("ping-loss", spec);
        r.metadata.namespace = Some("team-a".into());
        r.metadata.uid = Some("u".into());
        r
    }

    #[test]
    fn per_node_rule() {
        let v = build(&rule(
            "annotations: {summary: 'loss {{ value }}% on {{ node }} (> {{ threshold }})'}",
        ))
        .expect("build")
        .expect("twin");
        let r = &v["spec"]["groups"][0]["rules"][0];
        assert_eq!(r["alert"], "FabricwatchPingLoss");
        assert_eq!(
            r["expr"],
            "100 * fabricwatch_ping_loss_ratio{namespace=\"team-a\",pod=~\"fabric-agent-.*\"} > 5"
        );
        assert_eq!(r["for"], "90s");
        assert_eq!(r["labels"]["severity"], "warning");
        assert_eq!(
            r["annotations"]["summary"],
            "loss {{ $value }}% on {{ $labels.node }} (> 5)"
        );
        assert_eq!(v["metadata"]["labels"]["release"], "prom");
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "AlertRule");
        assert_eq!(v["metadata"]["name"], "ping-loss-fabricwatch");
    }

    #[test]
    fn every_documented_placeholder_becomes_valid_prometheus_template() {
        // Prometheus (promtool check rules) rejects `{{ metric }}`: "function "metric" not
        // defined"; the per-rule constants are written in, series labels become $labels.
        let v = build(&rule(
            "annotations: {summary: '{{ metric }} of {{ target }} is {{ value }} (> {{ threshold }}) on {{ node }} {{ device }} {{ port }} to {{ peer }}'}",
        ))
        .expect("build")
        .expect("twin");
        assert_eq!(
            v["spec"]["groups"][0]["rules"][0]["annotations"]["summary"],
            "ping_loss_percent of fabric is {{ $value }} (> 5) on {{ $labels.node }} \
             {{ $labels.device }} {{ $labels.port }} to {{ $labels.peer }}"
        );
    }

    #[test]
    fn target_scope_aggregates_towards_the_bad_side() {
        let v = build(&rule_of("disk_free_percent", "lt", "scope: target"))
            .expect("build")
            .expect("twin");
        let expr = v["spec"]["groups"][0]["rules"][0]["expr"]
            .as_str()
            .expect("expr")
            .to_string();
        assert!(
            expr.starts_with("min(100 * fabricwatch_host_filesystem_free_ratio"),
            "{expr}"
        );
        assert!(expr.ends_with(") < 5"), "{expr}");
    }

    #[test]
    fn analytics_only_metrics_have_no_twin() {
        assert!(build(&rule_of("anomaly_score", "gt", ""))
            .expect("build")
            .is_none());
        assert!(expression(Metric::NetworkScore, "a", "b").is_none());
    }

    #[test]
    fn durations_are_prometheus_compatible() {
        assert_eq!(
            prom_duration(std::time::Duration::from_millis(1500)),
            "1500ms"
        );
        assert_eq!(prom_duration(std::time::Duration::from_secs(0)), "0s");
    }
}
