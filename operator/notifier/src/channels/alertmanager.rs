//! Alertmanager API v2: `POST <base>/api/v2/alerts`.
//!
//! Body (<https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml>,
//! `postableAlerts`): `[{"labels", "annotations", "startsAt", "endsAt"?, "generatorURL"?}]`.
//! A firing alert is sent without `endsAt` (Alertmanager then resolves it after its
//! `resolve_timeout` unless it is posted again); a resolved one with its `endsAt`, which
//! resolves it at once. Alertmanager de-duplicates by label set, so posting the same alert
//! again is safe; it answers 200 with an empty body, 400 on a malformed alert.

use serde_json::{json, Value};

use super::{join_url, post_json, SendContext};
use crate::batch::{severity_name, Batch};
use crate::deliver::SendError;
use crate::secret::{Scrubber, SecretValue};
use fabricwatch_proto::notify::AlertStatus;

/// The `postableAlerts` body of `batch`.
pub fn payload(batch: &Batch, external_url: &str) -> Value {
    let alerts: Vec<Value> = batch
        .alerts
        .iter()
        .map(|a| {
            let mut labels = a.labels.clone();
            labels
                .entry("severity".into())
                .or_insert_with(|| severity_name(a.severity).into());
            labels.retain(|_, v| !v.is_empty());
            let mut v = json!({
                "labels": labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
            if a.status == AlertStatus::Resolved {
                let end = a.ends_at.unwrap_or_else(chrono::Utc::now);
                v["endsAt"] = json!(end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            }
            if !external_url.is_empty() {
                v["generatorURL"] = json!(external_url);
            }
            v
        })
        .collect();
    Value::Array(alerts)
}

/// Posts `batch` once.
///
/// # Errors
/// Classified [`SendError`] (scrubbed of the URL).
pub async fn send(
    ctx: &SendContext,
    base: &SecretValue,
    batch: &Batch,
    scrub: &Scrubber,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(&payload(batch, &ctx.external_url))
        .map_err(|e| SendError::permanent(format!("encoding Alertmanager alerts: {e}")))?;
    let url = join_url(base.expose(), "api/v2/alerts");
    post_json(ctx, &url, body, &[], scrub, |_| false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{alert, batch};

    #[test]
    fn postable_alerts() {
        let mut r = alert("2", "n2");
        r.status = AlertStatus::Resolved;
        r.ends_at = Some(r.starts_at);
        let p = payload(&batch(vec![alert("1", "n1"), r]), "");
        assert_eq!(p[0]["labels"]["alertname"], "HighLoss");
        assert_eq!(p[0]["labels"]["severity"], "critical");
        assert_eq!(p[0]["startsAt"], "2026-01-02T03:04:05.000Z");
        assert!(p[0].get("endsAt").is_none());
        assert!(p[0].get("generatorURL").is_none());
        assert_eq!(p[1]["endsAt"], "2026-01-02T03:04:05.000Z");
    }
}
