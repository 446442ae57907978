//! Names and labels of the objects the controller creates.

use std::collections::BTreeMap;

/// `app.kubernetes.io/managed-by` of everything the controller creates.
pub const MANAGED_BY: &str = "fabricwatch-operator";
/// Annotation on the agent Pod template holding a hash of the agent config, so that a config
/// change rolls the agents.
pub const CONFIG_HASH_ANNOTATION: &str = "fabricwatch.io/config-hash";
/// Label on children naming the MonitorTarget they belong to (full name, when it fits a label
/// value; the owner reference is authoritative).
pub const TARGET_LABEL: &str = "fabricwatch.io/monitortarget";

pub use fabricwatch_crds::names::{agent_name, child_name, fnv1a64, label_value, AGENT_APP};

/// Selector labels of a target's agent Pods (immutable once the DaemonSet exists).
pub fn agent_selector(target: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), AGENT_APP.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            label_value(target),
        ),
    ])
}

/// Full label set of a target's agent objects.
pub fn agent_labels(target: &str) -> BTreeMap<String, String> {
    let mut l = agent_selector(target);
    l.insert("app.kubernetes.io/component".into(), "agent".into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    l.insert(TARGET_LABEL.into(), label_value(target));
    l
}

/// Labels of a central workload (`analytics` or `notifier`).
pub fn central_labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "fabricwatch".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            format!("fabricwatch-{component}"),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ])
}

/// Selector labels of a central workload.
pub fn central_selector(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "fabricwatch".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(agent_name("fabric"), "fabric-agent");
        assert_eq!(label_value("fabric"), "fabric");
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let a = "a".repeat(200);
        let b = format!("{}b", "a".repeat(199));
        let (na, nb) = (agent_name(&a), agent_name(&b));
        assert!(na.len() <= 63 && nb.len() <= 63, "{na} {nb}");
        assert_ne!(na, nb);
        assert!(na.ends_with("-agent"));
        assert!(label_value(&a).len() <= 63);
        assert_ne!(label_value(&a), label_value(&b));
        // Cutting before a dash must not leave "--" or a trailing dash.
        let dashy = format!("{}-{}", "x".repeat(47), "y".repeat(30));
        let n = agent_name(&dashy);
        assert!(!n.contains("--"), "{n}");
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Test vectors from the FNV reference (fnv_test.c): "" and "a".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
