//! What the controller's caches of its own kinds keep.
//!
//! The reconciles read the spec, identity, `generation`, and from the status only what the
//! controller itself writes (`observedGeneration`, conditions, and the MonitorTarget's node
//! counts). Everything else — managed fields, annotations such as kubectl's
//! `last-applied-configuration` (a second copy of the spec), and the status parts written by
//! analytics, the notifier and the AI workers (problems, firing instances, findings) — is
//! dropped as each object arrives, so the cache grows with the specs, not with what the
//! other components report.

use fabricwatch_crds::{
    AIAnalysis, AIAnalysisStatus, AlertRule, AlertRuleStatus, MonitorTarget, MonitorTargetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn metadata(m: &mut ObjectMeta) {
    m.managed_fields = None;
    m.annotations = None;
}

/// A MonitorTarget as cached: status keeps `observedGeneration`, `conditions`, `nodes`.
pub fn monitor_target(mt: &mut MonitorTarget) {
    metadata(&mut mt.metadata);
    if let Some(s) = mt.status.take() {
        mt.status = Some(MonitorTargetStatus {
            observed_generation: s.observed_generation,
            conditions: s.conditions,
            nodes: s.nodes,
            ..MonitorTargetStatus::default()
        });
    }
}

/// An AlertRule as cached: status keeps `observedGeneration` and `conditions`.
pub fn alert_rule(ar: &mut AlertRule) {
    metadata(&mut ar.metadata);
    if let Some(s) = ar.status.take() {
        ar.status = Some(AlertRuleStatus {
            observed_generation: s.observed_generation,
            conditions: s.conditions,
            ..AlertRuleStatus::default()
        });
    }
}

/// An AIAnalysis as cached: status keeps `observedGeneration` and `conditions`.
pub fn ai_analysis(aia: &mut AIAnalysis) {
    metadata(&mut aia.metadata);
    if let Some(s) = aia.status.take() {
        aia.status = Some(AIAnalysisStatus {
            observed_generation: s.observed_generation,
            conditions: s.conditions,
            ..AIAnalysisStatus::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_target_keeps_spec_and_own_status() {
        let mut mt: MonitorTarget = serde_json::from_value(serde_json::json!({
            "apiVersion": "fabricwatch.io/v1alpha1", "kind": "MonitorTarget",
            "metadata": {"name": "fabric", "namespace": "ns", "generation": 2,
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"nodeSelector": {"gpu": "true"}},
            "status": {"observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "AgentsReady",
                    "message": "3/3", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "nodes": {"desired": 3, "ready": 3, "reporting": 3},
                "problems": [{"node": "n1", "component": "ping", "severity": "warning",
                    "message": "loss"}]}
        }))
        .expect("valid MonitorTarget");
        let spec = mt.spec.clone();
        monitor_target(&mut mt);
        assert_eq!(mt.spec, spec);
        assert_eq!(mt.metadata.generation, Some(2));
        assert!(mt.metadata.annotations.is_none() && mt.metadata.managed_fields.is_none());
        let s = mt.status.expect("status kept");
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.nodes.and_then(|n| n.ready), Some(3));
        assert!(s.problems.is_empty());
    }

    #[test]
    fn no_status_stays_none() {
        let mut ar: AlertRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "fabricwatch.io/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"targetRef": {"name": "fabric"},
                     "metric": "ping_loss_percent", "operator": "gt", "threshold": 5}
        }))
        .expect("valid AlertRule");
        alert_rule(&mut ar);
        assert!(ar.status.is_none());
    }
}
