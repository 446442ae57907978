//! Generic webhook in Alertmanager's webhook format, optionally HMAC-signed.
//!
//! Body (<https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>):
//! `{"version": "4", "groupKey", "truncatedAlerts": 0, "status", "receiver", "groupLabels",
//! "commonLabels", "commonAnnotations", "externalURL", "alerts": [{"status", "labels",
//! "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}]}`, so receivers
//! written for Alertmanager work unchanged. A firing alert's `endsAt` is
//! `0001-01-01T00:00:00Z`, as Alertmanager sends it.
//!
//! With an HMAC key the request carries `X-Fabricwatch-Signature: sha256=<hex>`, the
//! HMAC-SHA256 (RFC 2104) of the exact body bytes, the scheme GitHub webhooks use.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{post_json, SendContext};
use crate::batch::{severity_name, status_name, Batch};
use crate::deliver::SendError;
use crate::secret::{Scrubber, SecretValue};
use fabricwatch_proto::notify::AlertStatus;

/// Name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Fabricwatch-Signature";
/// `endsAt` of a firing alert in Alertmanager's payload (Go's zero time).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The webhook payload of `batch`.
pub fn payload(batch: &Batch, external_url: &str) -> Value {
    let alerts: Vec<Value> = batch
        .alerts
        .iter()
        .map(|a| {
            let mut labels = a.labels.clone();
            labels
                .entry("severity".into())
                .or_insert_with(|| severity_name(a.severity).into());
            let ends_at = match (a.status, a.ends_at) {
                (AlertStatus::Resolved, Some(t)) => {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }
                (AlertStatus::Resolved, None) => {
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }
                (AlertStatus::Firing, _) => ZERO_TIME.into(),
            };
            json!({
                "status": status_name(a.status),
                "labels": labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "endsAt": ends_at,
                "generatorURL": external_url,
                "fingerprint": a.fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": batch.group_key(),
        "truncatedAlerts": 0,
        "status": status_name(batch.status()),
        "receiver": batch.receiver,
        "groupLabels": batch.group_labels,
        "commonLabels": batch.common_labels(),
        "commonAnnotations": batch.common_annotations(),
        "externalURL": external_url,
        "alerts": alerts,
    })
}

/// `sha256=<hex HMAC-SHA256(key, body)>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length (RFC 2104 §3), so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `batch` once.
///
/// # Errors
/// Classified [`SendError`] (scrubbed of the URL and key).
pub async fn send(
    ctx: &SendContext,
    url: &SecretValue,
    hmac_key: Option<&SecretValue>,
    batch: &Batch,
    scrub: &Scrubber,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(&payload(batch, &ctx.external_url))
        .map_err(|e| SendError::permanent(format!("encoding webhook payload: {e}")))?;
    let mut headers = Vec::new();
    if let Some(k) = hmac_key {
        headers.push((SIGNATURE_HEADER, signature(k.expose().as_bytes(), &body)));
    }
    post_json(ctx, url.expose(), body, &headers, scrub, |_| false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{alert, batch};

    #[test]
    fn alertmanager_webhook_shape() {
        let mut r = alert("2", "n2");
        r.status = AlertStatus::Resolved;
        r.ends_at = Some(r.starts_at + chrono::Duration::minutes(5));
        let p = payload(&batch(vec![alert("1", "n1"), r]), "http://fw");
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], "oncall");
        assert_eq!(p["groupLabels"]["alertname"], "HighLoss");
        assert_eq!(p["commonLabels"]["target"], "gpu-fabric");
        assert!(p["commonLabels"].get("node").is_none());
        assert_eq!(p["externalURL"], "http://fw");
        let a = &p["alerts"];
        assert_eq!(a[0]["status"], "firing");
        assert_eq!(a[0]["endsAt"], ZERO_TIME);
        assert_eq!(a[0]["startsAt"], "2026-01-02T03:04:05Z");
        assert_eq!(a[0]["fingerprint"], "fp-n1");
        assert_eq!(a[0]["labels"]["severity"], "critical");
        assert_eq!(a[1]["status"], "resolved");
        assert_eq!(a[1]["endsAt"], "2026-01-02T03:09:05Z");
    }

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 §4.3, test case 2 (HMAC-SHA-256).
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
