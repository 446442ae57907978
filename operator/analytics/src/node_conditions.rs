//! Kubernetes Node conditions as node findings and suspect evidence.
//!
//! The kubelet's conditions (`Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`) and the
//! network plugin's `NetworkUnavailable` (Kubernetes docs, "Nodes: Condition"), plus
//! `spec.unschedulable` (cordoned). Pure: the `k8s` module reads them from the Node objects.

use crate::health::{Finding, Health};

/// The conditions of one Node that matter for its health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConditions {
    /// `Ready` is `False` or `Unknown` (the kubelet stopped posting status).
    pub not_ready: bool,
    /// `NetworkUnavailable` is `True`.
    pub network_unavailable: bool,
    /// `MemoryPressure` is `True`.
    pub memory_pressure: bool,
    /// `DiskPressure` is `True`.
    pub disk_pressure: bool,
    /// `PIDPressure` is `True`.
    pub pid_pressure: bool,
    /// `spec.unschedulable` (cordoned).
    pub cordoned: bool,
}

impl NodeConditions {
    /// Findings: NotReady and NetworkUnavailable are Critical, pressure conditions and a
    /// cordon Warning. Components start with `host/` (the CRD's `host` component).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |on: bool, component: &str, severity: Health, message: &str| {
            if on {
                out.push(Finding {
                    component: component.into(),
                    severity,
                    message: message.into(),
                });
            }
        };
        add(
            self.not_ready,
            "host/condition/Ready",
            Health::Critical,
            "Node is not Ready (kubelet reports Ready=False or stopped reporting)",
        );
        add(
            self.network_unavailable,
            "host/condition/NetworkUnavailable",
            Health::Critical,
            "Node condition NetworkUnavailable=True",
        );
        add(
            self.memory_pressure,
            "host/condition/MemoryPressure",
            Health::Warning,
            "Node condition MemoryPressure=True",
        );
        add(
            self.disk_pressure,
            "host/condition/DiskPressure",
            Health::Warning,
            "Node condition DiskPressure=True",
        );
        add(
            self.pid_pressure,
            "host/condition/PIDPressure",
            Health::Warning,
            "Node condition PIDPressure=True",
        );
        add(
            self.cordoned,
            "host/cordoned",
            Health::Warning,
            "Node is cordoned (spec.unschedulable)",
        );
        out
    }

    /// Host-side evidence lines for a suspect, and whether they are a fault on their own
    /// (NotReady, NetworkUnavailable). A cordon is an administrative state, not evidence.
    pub fn evidence(&self) -> (Vec<String>, bool) {
        let lines = [
            (self.not_ready, "Node NotReady"),
            (self.network_unavailable, "Node NetworkUnavailable"),
            (self.memory_pressure, "Node MemoryPressure"),
            (self.disk_pressure, "Node DiskPressure"),
            (self.pid_pressure, "Node PIDPressure"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| s.to_string())
        .collect();
        (lines, self.not_ready || self.network_unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_grade_and_explain() {
        let c = NodeConditions {
            not_ready: true,
            memory_pressure: true,
            cordoned: true,
            ..Default::default()
        };
        let f = c.findings();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].severity, Health::Critical);
        let (lines, fault) = c.evidence();
        assert_eq!(lines, vec!["Node NotReady", "Node MemoryPressure"]);
        assert!(fault);
        let p = NodeConditions {
            pid_pressure: true,
            ..Default::default()
        };
        assert!(!p.evidence().1);
        assert!(NodeConditions::default().findings().is_empty());
    }
}
