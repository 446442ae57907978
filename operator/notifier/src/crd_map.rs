//! Mapping between the `fabricwatch.io/v1alpha1` API types and the notifier's own types.
//! Pure: no API calls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fabricwatch_crds::alert_rule::{ChannelNotification, DeliveryResult as CrdResult};
use fabricwatch_crds::notify::{Channel, NotifySpec, SmtpTls as CrdTls};
use fabricwatch_crds::{AIAnalysisSpec, AlertRuleSpec, Time};

use crate::channel::{
    ChannelSpec, NamedChannel, NotifyConfig, SecretKey, SmtpTls, DEFAULT_REPEAT_INTERVAL,
};
use crate::outcome::{ChannelOutcome, DeliveryResult};

/// One channel of the CRD as the notifier's [`NamedChannel`].
///
/// # Errors
/// When not exactly one kind is set, or an Alertmanager has neither or both URLs (the
/// operator rejects such objects too, but the notifier must not trust that).
pub fn channel(c: &Channel) -> Result<NamedChannel, String> {
    let key = |r: &fabricwatch_crds::common::SecretKeyRef| SecretKey {
        name: r.name.clone(),
        key: r.key.clone(),
    };
    if c.kind().is_none() {
        return Err(format!(
            "channel {:?}: set exactly one of slack, telegram, email, webhook, alertmanager",
            c.name
        ));
    }
    let spec = if let Some(s) = &c.slack {
        ChannelSpec::Slack {
            webhook_url: key(&s.webhook_url_secret_ref),
        }
    } else if let Some(t) = &c.telegram {
        ChannelSpec::Telegram {
            bot_token: key(&t.bot_token_secret_ref),
            chat_id: t.chat_id.clone(),
        }
    } else if let Some(e) = &c.email {
        ChannelSpec::Email {
            to: e.to.clone(),
            from: e.from.clone(),
            smtp_host: e.smtp_host.clone(),
            smtp_port: e.smtp_port,
            tls: match e.tls {
                CrdTls::Starttls => SmtpTls::StartTls,
                CrdTls::Tls => SmtpTls::Tls,
                CrdTls::None => SmtpTls::None,
            },
            credentials_secret: e.credentials_secret_ref.as_ref().map(|r| r.name.clone()),
        }
    } else if let Some(w) = &c.webhook {
        ChannelSpec::Webhook {
            url: key(&w.url_secret_ref),
            hmac_key: w.hmac_secret_ref.as_ref().map(key),
        }
    } else if let Some(a) = &c.alertmanager {
        let url = match (&a.url, &a.url_secret_ref) {
            (Some(u), None) => crate::channel::UrlSource::Inline(u.clone()),
            (None, Some(r)) => crate::channel::UrlSource::Secret(key(r)),
            _ => {
                return Err(format!(
                "channel {:?}: set exactly one of alertmanager.url and alertmanager.urlSecretRef",
                c.name
            ))
            }
        };
        ChannelSpec::Alertmanager { url }
    } else {
        return Err(format!("channel {:?} has no kind", c.name));
    };
    Ok(NamedChannel {
        name: c.name.clone(),
        spec,
    })
}

fn duration(d: &fabricwatch_crds::Duration, field: &str) -> Result<Duration, String> {
    d.to_std().map_err(|e| format!("{field}: {e}"))
}

/// The notify part of a spec (shared by both kinds). Invalid channels are skipped with a
/// warning in the returned list rather than failing the whole object: one typo must not
/// silence the other channels.
pub fn notify(spec: Option<&NotifySpec>) -> (NotifyConfig, Vec<String>) {
    let mut cfg = NotifyConfig::default();
    let mut warnings = Vec::new();
    if let Some(n) = spec {
        for c in &n.channels {
            match channel(c) {
                Ok(ch) => cfg.channels.push(ch),
                Err(e) => warnings.push(e),
            }
        }
        cfg.group_by = n.group_by.clone();
        if let Some(w) = &n.group_wait {
            match duration(w, "spec.notify.groupWait") {
                Ok(d) => cfg.group_wait = d,
                Err(e) => warnings.push(e),
            }
        }
    }
    (cfg, warnings)
}

/// The notify configuration of an AlertRule (channels plus its cooldown and repeat interval).
pub fn alert_rule(spec: &AlertRuleSpec) -> (NotifyConfig, Vec<String>) {
    let (mut cfg, mut warnings) = notify(spec.notify.as_ref());
    match duration(&spec.cooldown, "spec.cooldown") {
        Ok(d) => cfg.cooldown = d,
        Err(e) => warnings.push(e),
    }
    match duration(&spec.repeat_interval, "spec.repeatInterval") {
        Ok(d) => cfg.repeat_interval = d,
        Err(e) => {
            cfg.repeat_interval = DEFAULT_REPEAT_INTERVAL;
            warnings.push(e);
        }
    }
    (cfg, warnings)
}

/// The notify configuration of an AIAnalysis (no cooldown; default repeat interval).
pub fn ai_analysis(spec: &AIAnalysisSpec) -> (NotifyConfig, Vec<String>) {
    notify(spec.notify.as_ref())
}

/// A chrono time as `metav1.Time`.
pub fn time(t: DateTime<Utc>) -> Option<Time> {
    let nanos = t.timestamp_subsec_nanos();
    k8s_openapi::jiff::Timestamp::new(t.timestamp(), i32::try_from(nanos).unwrap_or(0))
        .ok()
        .map(Time)
}

fn result(r: DeliveryResult) -> CrdResult {
    match r {
        DeliveryResult::Sent => CrdResult::Sent,
        DeliveryResult::Failed => CrdResult::Failed,
        DeliveryResult::Deduplicated => CrdResult::Deduplicated,
        DeliveryResult::Suppressed => CrdResult::Suppressed,
    }
}

/// Longest `message` in the status (the CRD's `maxLength`).
const MAX_MESSAGE: usize = 1024;

/// The full `status.notifications` list after `outcomes`: one entry per channel still in
/// `channels`, in that order; channels without a new outcome keep their previous entry.
/// The notifier applies the whole list each time, because under server-side apply an entry
/// left out of the notifier's patch would be deleted.
pub fn merge_notifications(
    previous: &[ChannelNotification],
    outcomes: &[ChannelOutcome],
    channels: &[String],
) -> Vec<ChannelNotification> {
    channels
        .iter()
        .filter_map(|name| {
            let prev = previous.iter().find(|p| &p.channel == name);
            match outcomes.iter().rev().find(|o| &o.channel == name) {
                Some(o) => {
                    let failures = prev.and_then(|p| p.consecutive_failures).unwrap_or(0);
                    let message: String = o.message.chars().take(MAX_MESSAGE).collect();
                    Some(ChannelNotification {
                        channel: name.clone(),
                        last_attempt_time: time(o.time),
                        last_sent_time: if o.result == DeliveryResult::Sent {
                            time(o.time)
                        } else {
                            prev.and_then(|p| p.last_sent_time.clone())
                        },
                        result: Some(result(o.result)),
                        message: (!message.is_empty()).then_some(message),
                        consecutive_failures: Some(if o.result == DeliveryResult::Failed {
                            failures.saturating_add(1)
                        } else {
                            0
                        }),
                    })
                }
                None => prev.cloned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    #[test]
    fn maps_every_channel_kind() {
        let spec: NotifySpec = serde_json::from_value(serde_json::json!({
            "groupBy": ["alertname"],
            "groupWait": "30s",
            "channels": [
                {"name": "s", "slack": {"webhookUrlSecretRef": {"name": "sl", "key": "url"}}},
                {"name": "t", "telegram": {"botTokenSecretRef": {"name": "tg", "key": "token"}, "chatId": "-1001"}},
                {"name": "e", "email": {"to": ["a@b.c"], "from": "f@b.c", "smtpHost": "smtp", "tls": "tls", "smtpPort": 465, "credentialsSecretRef": {"name": "smtp"}}},
                {"name": "w", "webhook": {"urlSecretRef": {"name": "wh", "key": "url"}, "hmacSecretRef": {"name": "wh", "key": "hmac"}}},
                {"name": "a", "alertmanager": {"url": "http://am:9093"}},
                {"name": "bad", "alertmanager": {}},
                {"name": "none"}
            ]
        }))
        .expect("spec");
        let (cfg, warnings) = notify(Some(&spec));
        let kinds: Vec<ChannelKind> = cfg.channels.iter().map(|c| c.spec.kind()).collect();
        assert_eq!(
            kinds,
            vec![
                ChannelKind::Slack,
                ChannelKind::Telegram,
                ChannelKind::Email,
                ChannelKind::Webhook,
                ChannelKind::Alertmanager
            ]
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(cfg.group_wait, Duration::from_secs(30));
        assert_eq!(cfg.group_by, vec!["alertname".to_string()]);
        match &cfg.channels[2].spec {
            ChannelSpec::Email {
                tls,
                smtp_port,
                credentials_secret,
                ..
            } => {
                assert_eq!(*tls, SmtpTls::Tls);
                assert_eq!(*smtp_port, 465);
                assert_eq!(credentials_secret.as_deref(), Some("smtp"));
            }
            other => panic!("not email: {other:?}"),
        }
    }

    fn outcome(channel: &str, r: DeliveryResult, secs: i64) -> ChannelOutcome {
        ChannelOutcome {
            channel: channel.into(),
            kind: ChannelKind::Slack,
            result: r,
            attempts: 1,
            time: DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("t"),
            message: "HTTP 500".into(),
            last_request_id: "id".into(),
            alerts: 1,
        }
    }

    #[test]
    fn merge_keeps_other_channels_counts_failures_and_drops_removed() {
        let names = vec!["a".to_string(), "b".to_string()];
        let s1 = merge_notifications(&[], &[outcome("a", DeliveryResult::Sent, 0)], &names);
        assert_eq!(s1.len(), 1);
        assert_eq!(s1[0].consecutive_failures, Some(0));
        assert!(s1[0].last_sent_time.is_some());
        let s2 = merge_notifications(
            &s1,
            &[
                outcome("a", DeliveryResult::Failed, 10),
                outcome("b", DeliveryResult::Failed, 10),
            ],
            &names,
        );
        let s3 = merge_notifications(&s2, &[outcome("a", DeliveryResult::Failed, 20)], &names);
        assert_eq!(s3[0].consecutive_failures, Some(2));
        assert_eq!(s3[0].last_sent_time, s1[0].last_sent_time, "last sent kept");
        assert_eq!(s3[1].channel, "b");
        assert_eq!(s3[1].consecutive_failures, Some(1));
        let only_b = merge_notifications(&s3, &[], &["b".to_string()]);
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].channel, "b");
    }
}
