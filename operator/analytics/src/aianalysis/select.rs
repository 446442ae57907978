//! Which AIAnalyses act, and which ones a trigger asks for. Pure: the runner passes the
//! reflector's objects and resolves AlertRule targets itself.

use std::sync::Arc;

use fabricwatch_crds::{ai_analysis::AnalysisTargetKind, condition_types, AIAnalysis};
use fabricwatch_proto::ObjectRef;

use super::debounce::Reason;
use crate::{rules::object_ref, trigger::Trigger};

/// Whether analytics acts on `a`: the controller's `Accepted` condition when present, else
/// the spec's own validation.
pub fn accepted(a: &AIAnalysis) -> bool {
    match a.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == condition_types::ACCEPTED)
    }) {
        Some(c) => c.status == "True",
        None => a.spec.validate().is_ok(),
    }
}

/// The analyses a trigger asks for, among `all`: `onAlert` analyses named by the rule's
/// `analysisRef` or referencing the rule; `onAnomaly` analyses referencing the target
/// directly or through one of their AlertRules (`rule_target` resolves a rule's target).
pub fn wanted_by(
    t: &Trigger,
    all: &[Arc<AIAnalysis>],
    rule_target: impl Fn(&ObjectRef) -> Option<ObjectRef>,
) -> Vec<(ObjectRef, Reason)> {
    let refs = |a: &AIAnalysis, kind: AnalysisTargetKind| -> Vec<ObjectRef> {
        let ns = a.metadata.namespace.clone().unwrap_or_default();
        a.spec
            .target_refs
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| ObjectRef {
                namespace: ns.clone(),
                name: r.name.clone(),
            })
            .collect()
    };
    let mut out = Vec::new();
    for a in all {
        let me = object_ref(&a.metadata);
        match t {
            Trigger::Alert { analysis, rule, .. } => {
                if a.spec.trigger.on_alert
                    && (analysis == &me || refs(a, AnalysisTargetKind::AlertRule).contains(rule))
                {
                    out.push((me, Reason::Alert));
                }
            }
            Trigger::Anomaly { target, .. } => {
                if a.spec.trigger.on_anomaly
                    && (refs(a, AnalysisTargetKind::MonitorTarget).contains(target)
                        || refs(a, AnalysisTargetKind::AlertRule)
                            .iter()
                            .any(|r| rule_target(r).as_ref() == Some(target)))
                {
                    out.push((me, Reason::Anomaly));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::SeriesKey;
    use chrono::Utc;
    use fabricwatch_crds::{ai_analysis::AIAnalysisStatus, AIAnalysisSpec};

    fn aia(name: &str, extra: &str) -> Arc<AIAnalysis> {
        let spec: AIAnalysisSpec =
            serde_yaml::from_str(&format!("provider: {{type: openai, model: m}}\n{extra}"))
                .expect("spec");
        let mut a = AIAnalysis::new(name, spec);
        a.metadata.namespace = Some("ns".into());
        Arc::new(a)
    }

    fn r(name: &str) -> ObjectRef {
        ObjectRef {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn triggers_reach_the_analyses_that_want_them() {
        let all = vec![
            aia("by-ref", "targetRefs: [{kind: MonitorTarget, name: fabric}]"),
            aia("by-rule", "targetRefs: [{kind: AlertRule, name: loss}]\ntrigger: {onAnomaly: true}"),
            aia("anomaly", "targetRefs: [{kind: MonitorTarget, name: fabric}]\ntrigger: {onAlert: false, onAnomaly: true}"),
            aia("other", "targetRefs: [{kind: MonitorTarget, name: other}]\ntrigger: {onAnomaly: true}"),
        ];
        let alert = Trigger::Alert {
            analysis: r("by-ref"),
            rule: r("loss"),
            target: r("fabric"),
            series: SeriesKey::node("n1"),
            value: Some(9.0),
            starts_at: Utc::now(),
        };
        let names = |v: Vec<(ObjectRef, Reason)>| {
            v.into_iter()
                .map(|(o, why)| (o.name, why))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(wanted_by(&alert, &all, |_| None)),
            vec![
                ("by-ref".into(), Reason::Alert),
                ("by-rule".into(), Reason::Alert)
            ]
        );
        let anomaly = Trigger::Anomaly {
            target: r("fabric"),
            node: "n1".into(),
            anomaly: Default::default(),
            at: Utc::now(),
        };
        assert_eq!(
            names(wanted_by(&anomaly, &all, |rule| (rule.name == "loss")
                .then(|| r("fabric")))),
            vec![
                ("by-rule".into(), Reason::Anomaly),
                ("anomaly".into(), Reason::Anomaly)
            ]
        );
    }

    #[test]
    fn accepted_follows_the_controller_else_validates() {
        let ok = aia("a", "targetRefs: [{kind: MonitorTarget, name: fabric}]");
        assert!(accepted(&ok));
        let bad = aia(
            "b",
            "targetRefs: [{kind: MonitorTarget, name: fabric}]\nwindow: 5s",
        );
        assert!(!accepted(&bad), "fails validate()");
        let mut refused = (*ok).clone();
        refused.status = Some(AIAnalysisStatus {
            conditions: vec![super::super::status::condition(
                "Accepted",
                false,
                "MissingReference",
                "",
                None,
                &[],
                Utc::now(),
            )],
            ..AIAnalysisStatus::default()
        });
        assert!(!accepted(&refused));
    }
}
