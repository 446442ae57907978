//! A batch: the alerts of one group, delivered to one channel as one message.

use std::collections::BTreeMap;

use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind};
use fabricwatch_proto::{ObjectRef, Severity};

/// The alerts of one group (same source object, same values of the `groupBy` labels), as
/// one message to one channel. Alerts are in arrival order.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Channel name (Alertmanager's "receiver").
    pub receiver: String,
    /// Kind of the source object.
    pub source_kind: SourceKind,
    /// The source object.
    pub source: ObjectRef,
    /// The `groupBy` labels and their values in this group.
    pub group_labels: BTreeMap<String, String>,
    /// The alerts; never empty when built by the engine.
    pub alerts: Vec<NotificationRequest>,
}

impl Batch {
    /// Alertmanager-style group key: `{source}:{k="v",...}`, stable for the same group.
    pub fn group_key(&self) -> String {
        let labels: Vec<String> = self
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!(
            "{}/{}:{{{}}}",
            kind_name(self.source_kind),
            self.source,
            labels.join(",")
        )
    }

    /// `Firing` when any alert fires, else `Resolved` (Alertmanager's group status rule).
    pub fn status(&self) -> AlertStatus {
        if self.alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }

    /// Highest severity among the alerts.
    pub fn severity(&self) -> Severity {
        self.alerts
            .iter()
            .map(|a| a.severity)
            .max()
            .unwrap_or_default()
    }

    /// Number of firing alerts.
    pub fn firing(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .count()
    }

    /// Labels with the same value in every alert.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations with the same value in every alert.
    pub fn common_annotations(&self) -> BTreeMap<String, String> {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// The name shown in titles: the common `alertname`, else the source object's name.
    pub fn title_name(&self) -> String {
        self.common_labels()
            .remove("alertname")
            .unwrap_or_else(|| self.source.name.clone())
    }

    /// `[FIRING:2] name` or `[RESOLVED] name` (Alertmanager's default title shape).
    pub fn title(&self) -> String {
        match self.status() {
            AlertStatus::Firing => format!("[FIRING:{}] {}", self.firing(), self.title_name()),
            AlertStatus::Resolved => format!("[RESOLVED] {}", self.title_name()),
        }
    }

    /// The command that shows the source object and its status.
    pub fn describe_hint(&self) -> String {
        let kind = match self.source_kind {
            SourceKind::AlertRule => "alertrule",
            SourceKind::AIAnalysis => "aianalysis",
        };
        format!(
            "kubectl describe {kind} -n {} {}",
            self.source.namespace, self.source.name
        )
    }
}

/// Lower-case name of a source kind.
pub fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::AlertRule => "alertrule",
        SourceKind::AIAnalysis => "aianalysis",
    }
}

/// Lower-case severity name ([`Severity::as_str`]).
pub fn severity_name(s: Severity) -> &'static str {
    s.as_str()
}

/// Lower-case status name, as Alertmanager writes it.
pub fn status_name(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// A metric value for humans: up to 4 significant decimals, no trailing zeros.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let s = if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A firing alert for tests.
    pub(crate) fn alert(id: &str, node: &str) -> NotificationRequest {
        NotificationRequest {
            schema_version: 1,
            id: id.into(),
            source_kind: SourceKind::AlertRule,
            source: ObjectRef {
                namespace: "fabric".into(),
                name: "high-loss".into(),
            },
            fingerprint: format!("fp-{node}"),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            labels: [
                ("alertname", "HighLoss"),
                ("target", "gpu-fabric"),
                ("node", node),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            annotations: [("summary".to_owned(), format!("loss 12.5% on {node}"))]
                .into_iter()
                .collect(),
            value: Some(12.5),
            starts_at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            ends_at: None,
        }
    }

    pub(crate) fn batch(alerts: Vec<NotificationRequest>) -> Batch {
        Batch {
            receiver: "oncall".into(),
            source_kind: SourceKind::AlertRule,
            source: alerts[0].source.clone(),
            group_labels: [("alertname".to_owned(), "HighLoss".to_owned())]
                .into_iter()
                .collect(),
            alerts,
        }
    }

    #[test]
    fn common_labels_and_title() {
        let b = batch(vec![alert("1", "n1"), alert("2", "n2")]);
        let c = b.common_labels();
        assert_eq!(c.get("alertname").map(String::as_str), Some("HighLoss"));
        assert!(!c.contains_key("node"));
        assert_eq!(b.title(), "[FIRING:2] HighLoss");
        assert_eq!(
            b.group_key(),
            r#"alertrule/fabric/high-loss:{alertname="HighLoss"}"#
        );
        let mut r = alert("3", "n1");
        r.status = AlertStatus::Resolved;
        assert_eq!(batch(vec![r]).title(), "[RESOLVED] HighLoss");
    }

    #[test]
    fn values() {
        assert_eq!(format_value(12.5), "12.5");
        assert_eq!(format_value(0.00012345), "0.0001");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(123456.7), "123457");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
