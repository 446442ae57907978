//! AlertRule and MonitorTarget objects → the engine's and fleet's plain settings.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::{
    alert_rule::{AlertState, FiringInstance},
    condition_types, AlertRule, MonitorTarget,
};
use fabricwatch_proto::ObjectRef;

use crate::{
    alert::{Acknowledgement, FiringSeries, MaintenanceWindow, RuleSpec, SeriesKey, SilenceWindow},
    fleet::TargetConfig,
};

/// `metav1.Time` (a `jiff` timestamp) → chrono, to the second's nanosecond.
pub fn from_time(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

/// chrono → `metav1.Time`. Kubernetes serializes it with second precision (RFC 3339), so
/// sub-second parts are dropped here to compare equal with what is read back.
pub fn to_time(t: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    let ts = k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts)
}

fn dur(d: &fabricwatch_crds::Duration, field: &str) -> Result<Duration, String> {
    let std = d.to_std().map_err(|e| format!("{field}: {e}"))?;
    Duration::from_std(std).map_err(|e| format!("{field}: {e}"))
}

/// The object reference of a namespaced resource.
pub fn object_ref(meta: &kube::api::ObjectMeta) -> ObjectRef {
    ObjectRef {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

/// Whether the operator has not refused the rule: an `Accepted` condition that is `False`
/// refuses it; no condition yet (the operator has not looked) does not.
pub fn accepted(rule: &AlertRule) -> bool {
    !rule.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == condition_types::ACCEPTED && c.status == "False")
    })
}

/// The engine settings of `rule`.
///
/// # Errors
/// The first problem (`spec.validate()`, durations, cron), with its field path.
pub fn rule_spec(rule: &AlertRule) -> Result<RuleSpec, String> {
    let s = &rule.spec;
    s.validate().map_err(|e| e.to_string())?;
    let me = object_ref(&rule.metadata);
    let maintenance = s
        .maintenance_windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let d = dur(
                &w.duration,
                &format!("spec.maintenanceWindows[{i}].duration"),
            )?;
            MaintenanceWindow::parse(w.schedule.as_str(), d.num_milliseconds() as f64 / 1000.0)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (resolve_for, flap) = match &s.flap_damping {
        Some(f) => (
            dur(&f.resolve_for, "spec.flapDamping.resolveFor")?,
            Some((
                f.max_transitions,
                dur(&f.window, "spec.flapDamping.window")?,
            )),
        ),
        None => (Duration::zero(), None),
    };
    let mut annotations = BTreeMap::new();
    let a = &s.annotations;
    for (k, v) in [
        ("summary", &a.summary),
        ("description", &a.description),
        ("runbook_url", &a.runbook_url),
    ] {
        if let Some(v) = v {
            annotations.insert(k.to_string(), v.clone());
        }
    }
    Ok(RuleSpec {
        target: ObjectRef {
            namespace: me.namespace.clone(),
            name: s.target_ref.name.clone(),
        },
        analysis_ref: s.analysis_ref.as_ref().map(|r| ObjectRef {
            namespace: me.namespace.clone(),
            name: r.name.clone(),
        }),
        rule: me,
        metric: s.metric,
        op: s.operator,
        threshold: s.threshold,
        for_: dur(&s.for_, "spec.for")?,
        scope: s.scope,
        severity: s.severity,
        resolve_for,
        flap,
        cooldown: dur(&s.cooldown, "spec.cooldown")?,
        repeat_interval: Some(dur(&s.repeat_interval, "spec.repeatInterval")?),
        maintenance,
        silence: match &s.silence {
            None => None,
            Some(w) => Some(SilenceWindow {
                until: from_time(&w.until).ok_or("spec.silence.until is out of range")?,
                node: w.node.clone(),
                by: w.by.clone(),
            }),
        },
        acknowledge: match &s.acknowledge {
            None => None,
            Some(a) => Some(Acknowledgement {
                at: from_time(&a.at).ok_or("spec.acknowledge.at is out of range")?,
                until: match &a.until {
                    None => None,
                    Some(u) => Some(from_time(u).ok_or("spec.acknowledge.until is out of range")?),
                },
                by: a.by.clone(),
                notify_resolved: a.notify_resolved,
            }),
        },
        annotations,
    })
}

/// The firing series recorded in the rule's status (to rebuild state after a restart).
pub fn recorded_firing(rule: &AlertRule) -> Vec<FiringSeries> {
    rule.status
        .as_ref()
        .map(|s| {
            s.firing
                .iter()
                .filter(|f| f.state == AlertState::Firing)
                .filter_map(|f| {
                    Some(FiringSeries {
                        key: SeriesKey {
                            node: f.node.clone(),
                            device: f.device.clone(),
                            port: f.port,
                            peer: f.peer.clone(),
                            endpoint: f.endpoint.clone(),
                        },
                        since: from_time(f.since.as_ref()?)?,
                        value: Some(f.value),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A firing series as written in `status.firing`.
pub fn firing_instance(f: &FiringSeries) -> FiringInstance {
    FiringInstance {
        node: f.key.node.clone(),
        device: f.key.device.clone(),
        port: f.key.port,
        peer: f.key.peer.clone(),
        endpoint: f.key.endpoint.clone(),
        value: f.value.unwrap_or(0.0),
        state: AlertState::Firing,
        since: Some(to_time(f.since)),
    }
}

/// The fleet settings of a MonitorTarget. An unparsable interval (the operator marks the
/// target not Accepted) falls back to the 10 s default.
pub fn target_config(t: &MonitorTarget) -> TargetConfig {
    let s = &t.spec;
    TargetConfig {
        interval_seconds: s
            .interval
            .to_std()
            .map(|d| d.as_secs_f64())
            .ok()
            .filter(|v| *v > 0.0)
            .unwrap_or(10.0),
        thresholds: s.thresholds.clone(),
        max_peers: s.ping.peers.max_peers.map(|m| m as usize),
        topology_key: s.ping.peers.topology_key.clone(),
        generation: t.metadata.generation,
        // The controller writes `status.nodes.desired` from the agent DaemonSet.
        desired_nodes: t
            .status
            .as_ref()
            .and_then(|st| st.nodes.as_ref())
            .and_then(|n| n.desired)
            .and_then(|d| u32::try_from(d).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::t;
    use fabricwatch_crds::{alert_rule::AlertRuleStatus, AlertRuleSpec};

    fn rule(yaml: &str) -> AlertRule {
        let spec: AlertRuleSpec = serde_yaml::from_str(yaml).expect("spec");
        let mut r = AlertRule::new("loss", spec);
        r.metadata.namespace = Some("ns".into());
        r
    }

    #[test]
    fn converts_a_full_rule() {
        let r = rule(
            "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gte\nthreshold: 5\nfor: 1m\n\
             cooldown: 10m\nrepeatInterval: 2h\nanalysisRef: {name: diag}\n\
             flapDamping: {resolveFor: 30s, maxTransitions: 6, window: 30m}\n\
             maintenanceWindows: [{schedule: '0 2 * * SAT', duration: 2h}]\nannotations: {summary: 'loss on {{ node }}'}",
        );
        let s = rule_spec(&r).expect("valid");
        assert_eq!(
            s.target,
            ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into()
            }
        );
        assert_eq!(s.analysis_ref.map(|a| a.name), Some("diag".into()));
        assert_eq!(s.for_, Duration::minutes(1));
        assert_eq!(s.cooldown, Duration::minutes(10));
        assert_eq!(s.repeat_interval, Some(Duration::hours(2)));
        assert_eq!(s.resolve_for, Duration::seconds(30));
        assert_eq!(s.flap, Some((6, Duration::minutes(30))));
        assert_eq!(s.maintenance.len(), 1);
        assert_eq!(s.annotations["summary"], "loss on {{ node }}");
        assert!(accepted(&r));
    }

    #[test]
    fn silence_is_read_from_the_spec() {
        let r = rule(
            "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\n\
             silence: {until: '2026-12-06T20:00:00Z', node: n3, by: 'alice: cable swap'}\n",
        );
        let s = rule_spec(&r).expect("valid");
        let w = s.silence.expect("silence");
        assert_eq!(w.until.to_rfc3339(), "2026-12-06T20:00:00+00:00");
        assert_eq!(w.node.as_deref(), Some("n3"));
        assert_eq!(w.by.as_deref(), Some("alice: cable swap"));
        let none = rule(
            "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\n",
        );
        assert_eq!(rule_spec(&none).expect("valid").silence, None);
    }

    #[test]
    fn invalid_rule_is_an_error_with_the_field() {
        let r = rule("targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\nfor: 5x\n");
        assert!(rule_spec(&r).expect_err("invalid").contains("spec.for"));
    }

    #[test]
    fn firing_round_trips_through_status() {
        let f = FiringSeries {
            key: SeriesKey {
                node: Some("n1".into()),
                peer: Some("n2".into()),
                ..Default::default()
            },
            since: t(0),
            value: Some(7.5),
        };
        let mut r = rule(
            "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\n",
        );
        r.status = Some(AlertRuleStatus {
            firing: vec![firing_instance(&f)],
            ..Default::default()
        });
        assert_eq!(recorded_firing(&r), vec![f]);
    }
}
