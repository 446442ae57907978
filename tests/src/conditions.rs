//! Conditions for [`crate::wait_for`]. Each returns a [`Condition`]; combine them with
//! `.and()`, `.or()`, `.not()`. kube's own ([`is_crd_established`], [`is_deleted`],
//! [`is_pod_running`], [`is_job_completed`]) are re-exported.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod};
pub use kube::runtime::wait::conditions::{
    is_crd_established, is_deleted, is_job_completed, is_pod_running,
};
use kube::runtime::wait::Condition;
use serde::Serialize;

/// The Pod's `Ready` condition is `True`.
pub fn pod_ready() -> impl Condition<Pod> {
    |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
}

/// The Pod has terminated: phase `Succeeded` or `Failed`.
pub fn pod_terminated() -> impl Condition<Pod> {
    |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    }
}

/// The DaemonSet has rolled out: its controller saw the latest generation, schedules at
/// least one Pod, and every scheduled Pod is updated and Ready.
pub fn daemonset_ready() -> impl Condition<DaemonSet> {
    |ds: Option<&DaemonSet>| {
        let Some(ds) = ds else { return false };
        let Some(s) = ds.status.as_ref() else {
            return false;
        };
        s.observed_generation >= ds.metadata.generation
            && s.desired_number_scheduled > 0
            && s.number_ready == s.desired_number_scheduled
            && s.updated_number_scheduled.unwrap_or(0) == s.desired_number_scheduled
    }
}

/// The Deployment has rolled out: latest generation observed, all replicas updated,
/// available and ready.
pub fn deployment_ready() -> impl Condition<Deployment> {
    |d: Option<&Deployment>| {
        let Some(d) = d else { return false };
        let Some(s) = d.status.as_ref() else {
            return false;
        };
        let want = d.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1);
        s.observed_generation >= d.metadata.generation
            && s.updated_replicas.unwrap_or(0) == want
            && s.ready_replicas.unwrap_or(0) == want
            && s.available_replicas.unwrap_or(0) == want
    }
}

/// The Node's `Ready` condition is `True`.
pub fn node_ready() -> impl Condition<Node> {
    |n: Option<&Node>| {
        n.and_then(|n| n.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
}

/// `status.conditions` holds a condition of type `type_` with status `status` (`"True"`,
/// `"False"`, `"Unknown"`); for any object in `metav1.Condition` style, custom resources
/// included.
pub fn has_condition<K: Serialize>(type_: &str, status: &str) -> impl Condition<K> {
    let (type_, status) = (type_.to_string(), status.to_string());
    move |obj: Option<&K>| {
        let Some(v) = obj.and_then(|o| serde_json::to_value(o).ok()) else {
            return false;
        };
        v.pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(|t| t.as_str()) == Some(type_.as_str())
                        && c.get("status").and_then(|s| s.as_str()) == Some(status.as_str())
                })
            })
    }
}

/// `status.observedGeneration` has caught up with `metadata.generation` (the controller
/// has processed the latest spec), for any object with those fields.
pub fn generation_observed<K: Serialize>() -> impl Condition<K> {
    |obj: Option<&K>| {
        let Some(v) = obj.and_then(|o| serde_json::to_value(o).ok()) else {
            return false;
        };
        let generation = v.pointer("/metadata/generation").and_then(|g| g.as_i64());
        let observed = v
            .pointer("/status/observedGeneration")
            .and_then(|g| g.as_i64());
        matches!((generation, observed), (Some(g), Some(o)) if o >= g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetStatus;

    #[test]
    fn daemonset_ready_needs_all_pods() {
        let mut ds = DaemonSet::default();
        ds.metadata.generation = Some(2);
        ds.status = Some(DaemonSetStatus {
            observed_generation: Some(2),
            desired_number_scheduled: 3,
            number_ready: 2,
            updated_number_scheduled: Some(3),
            ..Default::default()
        });
        assert!(!daemonset_ready().matches_object(Some(&ds)));
        if let Some(s) = ds.status.as_mut() {
            s.number_ready = 3;
        }
        assert!(daemonset_ready().matches_object(Some(&ds)));
        assert!(!daemonset_ready().matches_object(None));
    }

    #[test]
    fn has_condition_reads_status_conditions() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "generation": 1},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .expect("valid pod");
        assert!(has_condition::<Pod>("Ready", "True").matches_object(Some(&pod)));
        assert!(!has_condition::<Pod>("Ready", "False").matches_object(Some(&pod)));
        assert!(pod_ready().matches_object(Some(&pod)));
        assert!(!generation_observed::<Pod>().matches_object(Some(&pod)));
    }
}
