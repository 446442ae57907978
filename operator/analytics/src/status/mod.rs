//! The analytics-owned part of MonitorTarget and AlertRule status, projected from the
//! fleet's [`TargetView`] and the evaluator's [`RuleReport`], and the number formatting
//! that keeps it readable. Pure: no Kubernetes client; [`crate::k8s::StatusWriter`]
//! applies what is built here.
//!
//! [`change`] holds the typed change keys and the write schedule that decide when a
//! projected status is worth writing.

pub mod change;

use chrono::{DateTime, Utc};
use fabricwatch_crds::{
    alert_rule::{AlertRuleStatus, AlertState},
    condition_types,
    monitor_target::{self as mt, MonitorTargetStatus},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::{
    aianalysis::status::condition,
    alert::RuleState,
    evaluator::RuleReport,
    fleet::{Problem, SuspectView, TargetView},
    health::Health,
    rules::{firing_instance, to_time},
};

pub use change::{ChangeKey, RuleKey, TargetKey, WriteSchedule};

/// Rounds to `digits` significant digits, so status does not churn on noise.
pub fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { 0.0 } else { x };
    }
    // Rust's float formatting rounds correctly in decimal; powers of ten in f64 do not.
    let d = digits.clamp(1, 17) as usize - 1;
    format!("{x:.d$e}").parse().unwrap_or(x)
}

/// Seconds for people with three significant digits in the unit that fits: `214µs`,
/// `1.25ms`, `2.5s` (SI prefixes; `µ` is U+00B5 as `kubectl` prints it back).
pub fn human_seconds(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return "-".into();
    }
    let (v, unit) = if x < 1e-3 {
        (x * 1e6, "µs")
    } else if x < 1.0 {
        (x * 1e3, "ms")
    } else {
        (x, "s")
    };
    let v = round_sig(v, 3);
    let mut s = format!("{v:.2}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    format!("{s}{unit}")
}

fn suspect_status(s: &SuspectView) -> mt::Suspect {
    use crate::localize::{Cause, SuspectKind};
    let x = &s.suspect;
    mt::Suspect {
        name: s.name.chars().take(520).collect(),
        kind: match x.kind {
            SuspectKind::Node => mt::SuspectKind::Node,
            SuspectKind::Link => mt::SuspectKind::Link,
            SuspectKind::Domain => mt::SuspectKind::Domain,
        },
        node: x.node.clone(),
        nodes: x.nodes.iter().take(16).cloned().collect(),
        domain: x.domain.clone(),
        cause: match x.cause {
            Cause::Network => mt::SuspectCause::Network,
            Cause::Host => mt::SuspectCause::Host,
            Cause::Down => mt::SuspectCause::Down,
            Cause::Agent => mt::SuspectCause::Agent,
        },
        severity: severity(x.severity),
        confidence: round_sig(x.confidence, 2),
        evidence: x.evidence.chars().take(1024).collect(),
        problems: (s.problems > 0).then_some(s.problems as i32),
        since: Some(to_time(s.since)),
    }
}

fn severity(h: Health) -> fabricwatch_crds::Severity {
    match h {
        Health::Critical => fabricwatch_crds::Severity::Critical,
        Health::Warning => fabricwatch_crds::Severity::Warning,
        _ => fabricwatch_crds::Severity::Info,
    }
}

fn component(p: &Problem) -> mt::Component {
    match p.component.split('/').next() {
        Some("rdma") => mt::Component::Rdma,
        Some("ping") => mt::Component::Ping,
        Some("host") => mt::Component::Host,
        Some("endpoint") => mt::Component::Endpoint,
        _ => mt::Component::Agent,
    }
}

/// The `reason` and `message` of the Healthy and Degraded conditions for `view`.
fn health_reason(view: &TargetView) -> (String, String) {
    let h = view.health;
    let silent = view.nodes.known - view.nodes.reporting;
    match h {
        Health::Healthy => (
            "AllNodesHealthy".to_string(),
            format!(
                "{} nodes reporting, all within thresholds",
                view.nodes.reporting
            ),
        ),
        Health::Unknown => (
            "NoReports".to_string(),
            "no agent has reported recently".to_string(),
        ),
        _ if view.nodes.missing > 0 && view.problems.is_empty() && view.suspects.is_empty() => (
            "NodesNotReporting".to_string(),
            format!(
                "{} of {} desired agents have never reported",
                view.nodes.missing,
                view.nodes.desired.unwrap_or(0)
            ),
        ),
        _ => (
            if silent > 0 || view.nodes.missing > 0 {
                "NodesNotReporting"
            } else if h == Health::Critical {
                "CriticalThresholdExceeded"
            } else {
                "WarningThresholdExceeded"
            }
            .to_string(),
            view.suspects
                .first()
                .map(|s| format!("suspect {}: {}", s.name, s.suspect.evidence))
                .or_else(|| {
                    view.problems
                        .first()
                        .map(|p| format!("{}: {}", p.node, p.message))
                })
                .unwrap_or_default(),
        ),
    }
}

/// The analytics-owned part of a MonitorTarget's status for `view`; `prev` (the current
/// conditions) keeps transition times.
pub fn target_status(
    view: &TargetView,
    generation: Option<i64>,
    prev: &[Condition],
    now: DateTime<Utc>,
) -> MonitorTargetStatus {
    let h = view.health;
    let (reason, message) = health_reason(view);
    let s = &view.summary;
    MonitorTargetStatus {
        conditions: vec![
            condition(
                condition_types::HEALTHY,
                h == Health::Healthy,
                &reason,
                &message,
                generation,
                prev,
                now,
            ),
            condition(
                condition_types::DEGRADED,
                matches!(h, Health::Warning | Health::Critical),
                &reason,
                &message,
                generation,
                prev,
                now,
            ),
        ],
        health: Some(match h {
            Health::Healthy => mt::Health::Healthy,
            Health::Warning => mt::Health::Warning,
            Health::Critical => mt::Health::Critical,
            Health::Unknown => mt::Health::Unknown,
        }),
        nodes: Some(mt::NodeCounts {
            reporting: Some(view.nodes.reporting as i32),
            warning: Some(view.nodes.warning as i32),
            critical: Some(view.nodes.critical as i32),
            ..Default::default()
        }),
        summary: Some(mt::Summary {
            worst_loss_percent: s.worst_loss_percent.map(|v| round_sig(v, 3)),
            rtt_p99_seconds: s.rtt_p99_seconds.map(|v| round_sig(v, 3)),
            rtt_p99: s.rtt_p99_seconds.map(human_seconds),
            rdma_ports_active: Some(s.rdma_ports_active as i32),
            rdma_ports_down: Some(s.rdma_ports_down as i32),
            rdma_errors_per_minute: s.rdma_errors_per_minute.map(|v| round_sig(v, 3)),
            anomalies: Some(s.anomalies as i32),
        }),
        suspects: view
            .suspects
            .iter()
            .take(mt::MAX_SUSPECTS)
            .map(suspect_status)
            .collect(),
        problems: view
            .problems
            .iter()
            .take(mt::MAX_PROBLEMS)
            .map(|p| mt::Problem {
                node: p.node.clone(),
                component: component(p),
                severity: severity(p.severity),
                message: p.message.chars().take(1024).collect(),
                since: Some(to_time(p.since)),
            })
            .collect(),
        last_report_time: view.last_report_time.map(to_time),
        ..Default::default()
    }
}

/// The analytics-owned part of an AlertRule's status.
pub fn rule_status(r: &RuleReport, prev: &[Condition], now: DateTime<Utc>) -> AlertRuleStatus {
    let ready = match &r.error {
        None => condition(
            condition_types::READY,
            true,
            "Evaluated",
            "evaluated by analytics",
            r.generation,
            prev,
            now,
        ),
        Some(e) => condition(
            condition_types::READY,
            false,
            "InvalidSpec",
            e,
            r.generation,
            prev,
            now,
        ),
    };
    AlertRuleStatus {
        conditions: vec![ready],
        state: r.state.map(|s| match s {
            RuleState::Inactive => AlertState::Inactive,
            RuleState::Pending => AlertState::Pending,
            RuleState::Firing => AlertState::Firing,
            RuleState::Suppressed => AlertState::Suppressed,
            RuleState::Silenced => AlertState::Silenced,
            RuleState::Acknowledged => AlertState::Acknowledged,
        }),
        active_since: r.active_since.map(to_time),
        last_evaluation_time: Some(to_time(r.evaluated_at)),
        last_value: r.last_value.map(|v| round_sig(v, 4)),
        firing: r
            .firing
            .iter()
            .take(fabricwatch_crds::alert_rule::MAX_FIRING)
            .map(firing_instance)
            .collect(),
        silenced_by: r.silenced.as_ref().and_then(|h| by_text(h.by.as_deref())),
        silenced_until: r.silenced.as_ref().and_then(|h| h.until).map(to_time),
        acknowledged_by: r
            .acknowledged
            .as_ref()
            .and_then(|h| by_text(h.by.as_deref())),
        acknowledged_until: r.acknowledged.as_ref().and_then(|h| h.until).map(to_time),
        ..Default::default()
    }
}

/// `by` as status holds it: at most 256 characters, like the spec field it is copied from
/// (which the API server already bounds; this keeps status valid if that bound ever grows).
fn by_text(by: Option<&str>) -> Option<String> {
    by.map(|b| b.chars().take(256).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        derive::tests::t,
        fleet::{NodeCounts, Summary},
    };
    use fabricwatch_proto::ObjectRef;
    use serde_json::json;

    /// A Warning target of two nodes, one with `loss` % to a peer, last heard at `last`.
    pub(crate) fn view(loss: f64, last: i64) -> TargetView {
        TargetView {
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            health: Health::Warning,
            nodes: NodeCounts {
                known: 2,
                reporting: 2,
                warning: 1,
                critical: 0,
                ..Default::default()
            },
            summary: Summary {
                worst_loss_percent: Some(loss),
                rtt_p99_seconds: Some(0.000_123_4),
                ..Default::default()
            },
            problems: vec![Problem {
                node: "n1".into(),
                component: "ping/n2".into(),
                severity: Health::Warning,
                message: "2% loss".into(),
                since: t(0),
            }],
            suspects: vec![],
            last_report_time: Some(t(last)),
        }
    }

    #[test]
    fn rtt_for_people() {
        assert_eq!(human_seconds(0.000_214), "214µs");
        assert_eq!(human_seconds(0.001_254), "1.25ms");
        assert_eq!(human_seconds(0.0205), "20.5ms");
        assert_eq!(human_seconds(2.5), "2.5s");
        assert_eq!(human_seconds(0.0), "0µs");
        assert_eq!(human_seconds(f64::NAN), "-");
    }

    #[test]
    fn rounding_to_significant_digits() {
        assert_eq!(round_sig(0.000_123_456, 3), 0.000_123);
        assert_eq!(round_sig(1234.5, 2), 1200.0);
        assert_eq!(round_sig(0.0, 3), 0.0);
        assert_eq!(round_sig(-0.0156, 2), -0.016);
        assert_eq!(round_sig(1e-320, 3), 1e-320, "subnormals pass through");
        assert_eq!(round_sig(1e300, 3), 1e300);
    }

    #[test]
    fn target_status_shape() {
        let s = target_status(&view(2.0, 10), Some(3), &[], t(10));
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["health"], "Warning");
        assert_eq!(
            v["nodes"],
            json!({"reporting": 2, "warning": 1, "critical": 0})
        );
        assert_eq!(v["summary"]["rttP99Seconds"], json!(0.000123));
        assert_eq!(v["problems"][0]["component"], "ping");
        assert_eq!(v["problems"][0]["severity"], "warning");
        assert!(
            v.get("observedGeneration").is_none(),
            "the operator owns observedGeneration"
        );
        let healthy = &s.conditions[0];
        assert_eq!(
            (
                healthy.type_.as_str(),
                healthy.status.as_str(),
                healthy.observed_generation
            ),
            ("Healthy", "False", Some(3))
        );
        // Transition time is kept while the status does not flip.
        let later = target_status(&view(2.0, 99), Some(3), &s.conditions, t(99));
        assert_eq!(
            later.conditions[0].last_transition_time,
            s.conditions[0].last_transition_time
        );
    }

    #[test]
    fn rule_status_shows_who_silenced_and_acknowledged_until_when() {
        use crate::alert::Handling;
        let report = RuleReport {
            rule: ObjectRef {
                namespace: "ns".into(),
                name: "loss".into(),
            },
            generation: Some(1),
            state: Some(RuleState::Acknowledged),
            active_since: Some(t(0)),
            last_value: Some(9.0),
            firing: vec![],
            silenced: Some(Handling {
                by: Some("bob: cable swap".into()),
                until: Some(t(3600)),
            }),
            acknowledged: Some(Handling {
                by: Some("alice".into()),
                until: Some(t(7200)),
            }),
            evaluated_at: t(10),
            error: None,
        };
        let v = serde_json::to_value(rule_status(&report, &[], t(10))).expect("json");
        assert_eq!(v["state"], "Acknowledged");
        assert_eq!(v["silencedBy"], "bob: cable swap");
        assert_eq!(v["silencedUntil"], "2023-11-14T23:13:20Z");
        assert_eq!(v["acknowledgedBy"], "alice");
        assert_eq!(v["acknowledgedUntil"], "2023-11-15T00:13:20Z");
        // An acknowledgement without expiry, and nothing handled: the fields are absent
        // (server-side apply then removes what analytics wrote before).
        let open = RuleReport {
            silenced: None,
            acknowledged: Some(Handling {
                by: None,
                until: None,
            }),
            ..report
        };
        let v = serde_json::to_value(rule_status(&open, &[], t(10))).expect("json");
        for f in [
            "silencedBy",
            "silencedUntil",
            "acknowledgedBy",
            "acknowledgedUntil",
        ] {
            assert!(v.get(f).is_none(), "{f}: {v}");
        }
    }

    #[test]
    fn condition_reasons_follow_health() {
        let mut v = view(2.0, 10);
        assert_eq!(
            health_reason(&v),
            ("WarningThresholdExceeded".into(), "n1: 2% loss".into())
        );
        v.health = Health::Critical;
        v.nodes.reporting = 1;
        assert_eq!(
            health_reason(&v).0,
            "NodesNotReporting",
            "one of two silent"
        );
        v.health = Health::Healthy;
        assert_eq!(
            health_reason(&v),
            (
                "AllNodesHealthy".into(),
                "1 nodes reporting, all within thresholds".into()
            )
        );
    }
}
