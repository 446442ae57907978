//! From an [`AlertEvent`] to the notifier's [`NotificationRequest`]: the series' labels,
//! annotations rendered from templates, the Alertmanager-style [`fingerprint`] and the
//! idempotency key ([`notification_id`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use fabricwatch_proto::notify::{
    AlertStatus, NotificationRequest, SourceKind, NOTIFY_SCHEMA_VERSION,
};
use sha2::{Digest, Sha256};

use super::{AlertEvent, RuleEngine, SeriesKey};

impl RuleEngine {
    /// Labels identifying a series: `alertname` (the rule's name), `namespace`, `target`,
    /// `severity` and, when set, `node`, `device`, `port`, `peer`, `endpoint` (the label names the
    /// notifier's `groupBy` knows).
    pub fn labels(&self, key: &SeriesKey) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            ("alertname".to_string(), self.spec().rule.name.clone()),
            ("namespace".to_string(), self.spec().rule.namespace.clone()),
            ("target".to_string(), self.spec().target.name.clone()),
            (
                "severity".to_string(),
                format!("{:?}", self.spec().severity).to_ascii_lowercase(),
            ),
        ]);
        let opt = [
            ("node", key.node.clone()),
            ("device", key.device.clone()),
            ("port", key.port.map(|p| p.to_string())),
            ("peer", key.peer.clone()),
            ("endpoint", key.endpoint.clone()),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                l.insert(k.to_string(), v);
            }
        }
        l
    }

    /// The notification request for `event`.
    pub fn request(&self, event: &AlertEvent) -> NotificationRequest {
        let (key, value, starts_at, ends_at, status, index) = match event {
            AlertEvent::Firing {
                key,
                value,
                starts_at,
                index,
            } => (key, *value, *starts_at, None, AlertStatus::Firing, *index),
            AlertEvent::Resolved {
                key,
                value,
                starts_at,
                ends_at,
            } => (
                key,
                *value,
                *starts_at,
                Some(*ends_at),
                AlertStatus::Resolved,
                0,
            ),
        };
        let labels = self.labels(key);
        let fp = fingerprint(&labels);
        let vars = BTreeMap::from([
            ("node", key.describe()),
            ("device", key.device.clone().unwrap_or_default()),
            ("port", key.port.map(|p| p.to_string()).unwrap_or_default()),
            ("peer", key.peer.clone().unwrap_or_default()),
            (
                "value",
                value
                    .map(|v| format!("{v:.4}"))
                    .unwrap_or_else(|| "n/a".into()),
            ),
            ("threshold", format!("{}", self.spec().threshold)),
            ("target", self.spec().target.to_string()),
            ("metric", self.spec().metric.as_str().to_string()),
        ]);
        let mut annotations: BTreeMap<String, String> = self
            .spec()
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), render(v, &vars)))
            .collect();
        annotations.entry("summary".into()).or_insert_with(|| {
            render(&format!("{{{{ metric }}}} {} {{{{ threshold }}}} on {{{{ node }}}} (value {{{{ value }}}})", self.spec().op.promql()), &vars)
        });
        NotificationRequest {
            schema_version: NOTIFY_SCHEMA_VERSION,
            id: notification_id(&fp, status, starts_at, index),
            source_kind: SourceKind::AlertRule,
            source: self.spec().rule.clone(),
            fingerprint: fp,
            status,
            severity: self.spec().severity,
            labels,
            annotations,
            value,
            starts_at,
            ends_at,
        }
    }
}

/// Alertmanager-style fingerprint: the first 16 hex digits of SHA-256 over the sorted
/// `name=value` pairs, each terminated by a 0 byte (so `a=bc` ≠ `ab=c`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Idempotency key of a notification: SHA-256 over fingerprint, status, `startsAt` (RFC 3339,
/// seconds) and repeat index; 32 hex digits. The same episode and repeat always give the
/// same id, so a re-send after a restart is deduplicated by the notifier.
pub fn notification_id(
    fingerprint: &str,
    status: AlertStatus,
    starts_at: DateTime<Utc>,
    index: i64,
) -> String {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update([0u8]);
    h.update(format!("{status:?}").as_bytes());
    h.update([0u8]);
    h.update(
        starts_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .as_bytes(),
    );
    h.update([0u8]);
    h.update(index.to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Replaces `{{ name }}` (spaces optional) with `vars[name]`; unknown names stay as written.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
