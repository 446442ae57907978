//! Evaluation of every AlertRule over the fleet, one cycle at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use fabricwatch_proto::{notify::NotificationRequest, ObjectRef};
use serde::Serialize;

use crate::{
    alert::{AlertEvent, Evaluation, FiringSeries, Handling, RuleEngine, RuleSpec, RuleState},
    fleet::Fleet,
    trigger::Trigger,
};

/// A rule as the cluster has it: its settings (or why they are invalid), the firing series
/// its status records, and its generation.
#[derive(Clone, Debug)]
pub struct RuleInput {
    /// The AlertRule.
    pub rule: ObjectRef,
    /// Parsed settings, or the error that makes it unusable.
    pub spec: Result<RuleSpec, String>,
    /// `status.firing` (used once, when the rule is first seen).
    pub recorded_firing: Vec<FiringSeries>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
}

/// Outcome of one rule in one cycle.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleReport {
    /// The AlertRule.
    pub rule: ObjectRef,
    /// Its generation when evaluated.
    pub generation: Option<i64>,
    /// State, `activeSince`, `lastValue`, firing series (absent when invalid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RuleState>,
    /// Start of the current episode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_since: Option<DateTime<Utc>>,
    /// Worst value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// Firing series.
    pub firing: Vec<FiringSeries>,
    /// Who silenced the rule and until when, while the silence is in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced: Option<Handling>,
    /// Who acknowledged and until when, while the acknowledgement covers a firing series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Handling>,
    /// When evaluated.
    pub evaluated_at: DateTime<Utc>,
    /// Why the rule cannot be evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A change of a rule worth telling people: an alert firing or resolving, or someone
/// silencing or acknowledging it (and that ending).
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    /// The AlertRule.
    pub rule: ObjectRef,
    /// What happened, e.g. `firing for node n2`, `acknowledged by alice`.
    pub text: String,
    /// A Warning (an alert fires) rather than a Normal Event.
    pub warning: bool,
}

/// The text of a change into or out of the states people set (Silenced, Acknowledged), with
/// who set them; `None` for other changes (firing and resolving are told per series).
fn handled(before: Option<RuleState>, now: RuleState, spec: &RuleSpec) -> Option<String> {
    let by = |b: &Option<String>| b.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    match (before, now) {
        (b, RuleState::Acknowledged) if b != Some(RuleState::Acknowledged) => {
            let a = spec.acknowledge.as_ref()?;
            let until = a
                .until
                .map(|u| format!(" until {}", u.to_rfc3339()))
                .unwrap_or_default();
            Some(format!("acknowledged{}{until}", by(&a.by)))
        }
        (b, RuleState::Silenced) if b != Some(RuleState::Silenced) => {
            let s = spec.silence.as_ref()?;
            let node = s
                .node
                .as_ref()
                .map(|n| format!(" for node {n}"))
                .unwrap_or_default();
            Some(format!(
                "silenced{}{node} until {}",
                by(&s.by),
                s.until.to_rfc3339()
            ))
        }
        (Some(RuleState::Acknowledged), RuleState::Firing) => {
            Some("no longer acknowledged (expired or lifted): notifying again".into())
        }
        (Some(RuleState::Silenced), RuleState::Firing) => {
            Some("silence over: notifying again".into())
        }
        _ => None,
    }
}

/// What one cycle produced.
#[derive(Debug, Default)]
pub struct Cycle {
    /// Per rule.
    pub reports: Vec<RuleReport>,
    /// Notification requests, in order.
    pub notifications: Vec<NotificationRequest>,
    /// AI triggers.
    pub triggers: Vec<Trigger>,
    /// State changes, for the event log and the AlertRules' Kubernetes Events.
    pub changes: Vec<StateChange>,
}

#[derive(Debug)]
struct Slot {
    engine: Option<RuleEngine>,
    error: Option<String>,
    generation: Option<i64>,
    last: Option<RuleReport>,
}

/// All rules' engines.
#[derive(Debug, Default)]
pub struct Evaluator {
    slots: BTreeMap<ObjectRef, Slot>,
}

impl Evaluator {
    /// Brings the engines in line with the rules that exist: new rules start (restored from
    /// their recorded firing series), edited ones keep their series' state, deleted ones go.
    pub fn sync(&mut self, rules: Vec<RuleInput>) {
        let keep: std::collections::BTreeSet<ObjectRef> =
            rules.iter().map(|r| r.rule.clone()).collect();
        self.slots.retain(|k, _| keep.contains(k));
        for r in rules {
            let slot = self.slots.entry(r.rule.clone()).or_insert_with(|| Slot {
                engine: None,
                error: None,
                generation: None,
                last: None,
            });
            slot.generation = r.generation;
            match r.spec {
                Ok(spec) => {
                    slot.error = None;
                    match &mut slot.engine {
                        Some(e) => e.update_spec(spec),
                        None => {
                            let mut e = RuleEngine::new(spec);
                            e.restore(&r.recorded_firing);
                            slot.engine = Some(e);
                        }
                    }
                }
                Err(e) => slot.error = Some(e),
            }
        }
    }

    /// Evaluates every valid rule against `fleet` at `now`, taken to the whole second:
    /// status times have second precision, and episode starts read back after a restart
    /// must equal the ones notified.
    pub fn evaluate(&mut self, fleet: &Fleet, now: DateTime<Utc>) -> Cycle {
        let now = now.trunc_subsecs(0);
        let mut cycle = Cycle::default();
        for (key, slot) in &mut self.slots {
            let report = match (&mut slot.engine, &slot.error) {
                (Some(engine), None) => {
                    let spec = engine.spec();
                    let values = fleet.series_values(&spec.target, spec.metric, spec.scope, now);
                    let ev: Evaluation = engine.evaluate(&values, now);
                    for e in &ev.events {
                        cycle.notifications.push(engine.request(e));
                        match e {
                            AlertEvent::Firing {
                                key: series,
                                value,
                                starts_at,
                                index: 0,
                            } => {
                                cycle.changes.push(StateChange {
                                    rule: key.clone(),
                                    text: format!("firing for {}", series.describe()),
                                    warning: true,
                                });
                                if let Some(analysis) = &engine.spec().analysis_ref {
                                    cycle.triggers.push(Trigger::Alert {
                                        analysis: analysis.clone(),
                                        rule: key.clone(),
                                        target: engine.spec().target.clone(),
                                        series: series.clone(),
                                        value: *value,
                                        starts_at: *starts_at,
                                    });
                                }
                            }
                            AlertEvent::Resolved { key: series, .. } => {
                                cycle.changes.push(StateChange {
                                    rule: key.clone(),
                                    text: format!("resolved for {}", series.describe()),
                                    warning: false,
                                });
                            }
                            AlertEvent::Firing { .. } => {}
                        }
                    }
                    let before = slot.last.as_ref().and_then(|l| l.state);
                    if let Some(text) = handled(before, ev.state, engine.spec()) {
                        cycle.changes.push(StateChange {
                            rule: key.clone(),
                            text,
                            warning: false,
                        });
                    }
                    RuleReport {
                        rule: key.clone(),
                        generation: slot.generation,
                        state: Some(ev.state),
                        active_since: ev.active_since,
                        last_value: ev.last_value,
                        firing: ev.firing,
                        silenced: ev.silenced,
                        acknowledged: ev.acknowledged,
                        evaluated_at: now,
                        error: None,
                    }
                }
                (_, error) => RuleReport {
                    rule: key.clone(),
                    generation: slot.generation,
                    state: None,
                    active_since: None,
                    last_value: None,
                    firing: Vec::new(),
                    silenced: None,
                    acknowledged: None,
                    evaluated_at: now,
                    error: error.clone(),
                },
            };
            slot.last = Some(report.clone());
            cycle.reports.push(report);
        }
        cycle
    }

    /// The last report of every rule (for `/api/v1/alerts`).
    pub fn snapshot(&self) -> Vec<RuleReport> {
        self.slots.values().filter_map(|s| s.last.clone()).collect()
    }

    /// Each valid rule's settings with its last report (for AI analyses: what is firing,
    /// with metric, threshold and severity).
    pub fn rules_with_reports(&self) -> Vec<(RuleSpec, RuleReport)> {
        self.slots
            .values()
            .filter_map(|s| Some((s.engine.as_ref()?.spec().clone(), s.last.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::SeriesKey,
        derive::tests::{peer, t},
        fleet::Settings,
    };
    use chrono::Duration;
    use fabricwatch_crds::alert_rule::{Metric, Operator, Scope};
    use fabricwatch_proto::{notify::AlertStatus, report::AgentReport, Severity};

    fn spec(analysis: bool) -> RuleSpec {
        RuleSpec {
            rule: ObjectRef {
                namespace: "ns".into(),
                name: "loss".into(),
            },
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            metric: Metric::PingLossPercent,
            op: Operator::Gt,
            threshold: 5.0,
            for_: Duration::zero(),
            scope: Scope::PerNode,
            severity: Severity::Warning,
            resolve_for: Duration::zero(),
            flap: None,
            cooldown: Duration::zero(),
            repeat_interval: None,
            maintenance: vec![],
            silence: None,
            acknowledge: None,
            annotations: Default::default(),
            analysis_ref: analysis.then(|| ObjectRef {
                namespace: "ns".into(),
                name: "diag".into(),
            }),
        }
    }

    fn input(analysis: bool, recorded: Vec<FiringSeries>) -> RuleInput {
        RuleInput {
            rule: spec(analysis).rule,
            spec: Ok(spec(analysis)),
            recorded_firing: recorded,
            generation: Some(1),
        }
    }

    fn fleet(loss: f64, at: i64) -> Fleet {
        let mut f = Fleet::new(Settings::default());
        f.ingest(
            &AgentReport {
                schema_version: 1,
                target: spec(false).target,
                node: "n1".into(),
                collected_at: t(at),
                interval_seconds: 10.0,
                ping: vec![peer("n2", loss, 0.001)],
                ..Default::default()
            },
            None,
            t(at),
        );
        f
    }

    #[test]
    fn firing_rule_notifies_and_triggers_its_analysis() {
        let mut e = Evaluator::default();
        e.sync(vec![input(true, vec![])]);
        let c = e.evaluate(&fleet(20.0, 0), t(1));
        assert_eq!(c.notifications.len(), 1);
        assert_eq!(c.notifications[0].status, AlertStatus::Firing);
        assert_eq!(c.notifications[0].labels["peer"], "n2");
        assert!(
            matches!(&c.triggers[..], [Trigger::Alert { analysis, .. }] if analysis.name == "diag")
        );
        assert_eq!(c.reports[0].state, Some(RuleState::Firing));
        assert_eq!(e.snapshot().len(), 1);
    }

    #[test]
    fn restart_restores_firing_and_the_resend_has_the_original_id() {
        let mut first = Evaluator::default();
        first.sync(vec![input(false, vec![])]);
        let c1 = first.evaluate(&fleet(20.0, 0), t(1));
        let recorded = c1.reports[0].firing.clone();
        let mut second = Evaluator::default();
        second.sync(vec![input(false, recorded)]);
        let c2 = second.evaluate(&fleet(20.0, 10), t(11));
        assert_eq!(c2.notifications.len(), 1);
        assert_eq!(c2.notifications[0].id, c1.notifications[0].id);
        assert_eq!(
            c2.reports[0].firing[0].key,
            SeriesKey {
                node: Some("n1".into()),
                peer: Some("n2".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn invalid_rule_reports_its_error_and_deleted_rule_goes() {
        let mut e = Evaluator::default();
        e.sync(vec![RuleInput {
            spec: Err("spec.for: bad".into()),
            ..input(false, vec![])
        }]);
        let c = e.evaluate(&fleet(20.0, 0), t(1));
        assert_eq!(c.reports[0].error.as_deref(), Some("spec.for: bad"));
        assert!(c.notifications.is_empty());
        e.sync(vec![]);
        assert!(e.evaluate(&fleet(20.0, 0), t(2)).reports.is_empty());
    }

    #[test]
    fn who_silenced_or_acknowledged_is_told_once() {
        use crate::alert::{Acknowledgement, SilenceWindow};
        use RuleState::*;
        let s = RuleSpec {
            silence: Some(SilenceWindow {
                until: t(100),
                node: Some("n2".into()),
                by: Some("bob".into()),
            }),
            acknowledge: Some(Acknowledgement {
                at: t(0),
                until: None,
                by: Some("alice".into()),
                notify_resolved: true,
            }),
            ..spec(false)
        };
        assert_eq!(
            handled(Some(Firing), Acknowledged, &s).as_deref(),
            Some("acknowledged by alice")
        );
        assert_eq!(handled(Some(Acknowledged), Acknowledged, &s), None);
        assert!(handled(Some(Firing), Silenced, &s)
            .is_some_and(|t| t.starts_with("silenced by bob for node n2 until ")));
        assert!(handled(Some(Acknowledged), Firing, &s).is_some_and(|t| t.contains("again")));
        assert_eq!(handled(Some(Pending), Firing, &s), None, "told per series");
        assert_eq!(
            handled(Some(Acknowledged), Inactive, &s),
            None,
            "told as resolved"
        );
    }
}
