//! Slack incoming webhook with a Block Kit message.
//!
//! Wire format: `POST <webhook URL>` with `{"text": <fallback>, "blocks": [...]}`
//! (<https://api.slack.com/messaging/webhooks>, <https://api.slack.com/block-kit>). Slack
//! answers `200 ok`, or 4xx with a reason in the body (`invalid_payload`, `no_service`, ...),
//! or 429 with `Retry-After`. Limits respected here: header text ≤ 150 characters, section
//! text ≤ 3000, at most 10 fields per section, at most 50 blocks.

use serde_json::{json, Value};

use super::{post_json, truncate, SendContext};
use crate::batch::{format_value, severity_name, Batch};
use crate::deliver::SendError;
use crate::secret::{Scrubber, SecretValue};
use fabricwatch_proto::notify::AlertStatus;
use fabricwatch_proto::Severity;

/// Alerts shown one by one; the rest are counted.
const MAX_ALERTS_SHOWN: usize = 10;

/// Escapes the three characters Slack's mrkdwn reserves (`&`, `<`, `>`).
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(status: AlertStatus, sev: Severity) -> &'static str {
    match (status, sev) {
        (AlertStatus::Resolved, _) => ":white_check_mark:",
        (_, Severity::Critical) => ":red_circle:",
        (_, Severity::Warning) => ":large_orange_circle:",
        (_, Severity::Info) => ":large_blue_circle:",
    }
}

/// The Block Kit payload of `batch`.
pub fn payload(batch: &Batch) -> Value {
    let title = batch.title();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&title, 150), "emoji": true},
    })];
    for a in batch.alerts.iter().take(MAX_ALERTS_SHOWN) {
        let label = |k: &str| a.labels.get(k).map(|v| escape_mrkdwn(v));
        let mut fields = vec![
            format!(
                "*Severity*\n{} {}",
                emoji(a.status, a.severity),
                severity_name(a.severity)
            ),
            format!(
                "*Status*\n{}",
                match a.status {
                    AlertStatus::Firing => "firing",
                    AlertStatus::Resolved => "resolved",
                }
            ),
        ];
        if let Some(t) = label("target") {
            fields.push(format!("*Target*\n{t}"));
        }
        if let Some(n) = label("node") {
            fields.push(format!("*Node*\n{n}"));
        }
        if let Some(v) = a.value {
            fields.push(format!("*Value*\n{}", format_value(v)));
        }
        fields.push(format!(
            "*Since*\n{}",
            a.starts_at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        let fields: Vec<Value> = fields
            .into_iter()
            .map(|t| json!({"type": "mrkdwn", "text": truncate(&t, 2000)}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"));
        if let Some(s) = summary {
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(&escape_mrkdwn(s), 3000)},
            }));
        }
    }
    if batch.alerts.len() > MAX_ALERTS_SHOWN {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("…and {} more", batch.alerts.len() - MAX_ALERTS_SHOWN)}],
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("`{}`", batch.describe_hint())}],
    }));
    json!({"text": title, "blocks": blocks})
}

/// Sends `batch` to the webhook once.
///
/// # Errors
/// Classified [`SendError`] (scrubbed of the URL).
pub async fn send(
    ctx: &SendContext,
    url: &SecretValue,
    batch: &Batch,
    scrub: &Scrubber,
) -> Result<(), SendError> {
    let body = serde_json::to_vec(&payload(batch))
        .map_err(|e| SendError::permanent(format!("encoding Slack payload: {e}")))?;
    post_json(ctx, url.expose(), body, &[], scrub, |_| false).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{alert, batch};

    #[test]
    fn blocks_carry_severity_target_node_value_summary_hint() {
        let mut a = alert("1", "node<1>");
        a.annotations
            .insert("summary".into(), "loss & jitter".into());
        let p = payload(&batch(vec![a]));
        let s = p.to_string();
        assert_eq!(p["text"], "[FIRING:1] HighLoss");
        assert_eq!(p["blocks"][0]["type"], "header");
        for needle in [
            "critical",
            "gpu-fabric",
            "node&lt;1&gt;",
            "12.5",
            "loss &amp; jitter",
            "kubectl describe alertrule -n fabric high-loss",
        ] {
            assert!(s.contains(needle), "{needle} missing in {s}");
        }
    }

    #[test]
    fn many_alerts_are_capped() {
        let alerts: Vec<_> = (0..25)
            .map(|i| alert(&i.to_string(), &format!("n{i}")))
            .collect();
        let p = payload(&batch(alerts));
        let blocks = p["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 50);
        assert!(p.to_string().contains("…and 15 more"));
    }
}
