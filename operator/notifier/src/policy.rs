//! Delivery policy, pure: dedup, cooldown, resolved handling, grouping and rate limits.
//!
//! Per channel and alert (fingerprint), following Alertmanager where it has an equivalent:
//! * the same alert with the same status already delivered within 90 % of the repeat
//!   interval is `Deduplicated` (Alertmanager's `repeat_interval`). The 10 % slack keeps the
//!   sender's own repeat, timed from its evaluation rather than from this delivery, from
//!   being mistaken for a duplicate;
//! * a firing notification less than the rule's `cooldown` after the previous firing
//!   notification of the same alert is `Suppressed` (the AlertRule API defines `cooldown`
//!   as the least time between two notifications of the same alert; it stops an alert that
//!   resolves and fires again from paging every time);
//! * a resolved alert is sent only to channels that were told it fired (`send_resolved` with
//!   notification state), otherwise `Suppressed`;
//! * the Alertmanager channel is exempt from the first two rules: Alertmanager itself
//!   de-duplicates and groups, and needs firing alerts re-posted to keep them active.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::{ChannelKind, NotifyConfig};
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest};

/// What to do with one alert on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Deliver it.
    Send,
    /// Already delivered; the reason says when.
    Deduplicated(String),
    /// Not delivered on purpose (cooldown, rate limit, resolved without firing).
    Suppressed(String),
}

/// The last notification of one alert to one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMark {
    /// Status sent last.
    pub status: AlertStatus,
    /// When.
    pub at: DateTime<Utc>,
    /// When a firing notification was last sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<DateTime<Utc>>,
}

/// What was delivered, per channel and alert; persisted with the outbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Key: [`alert_key`].
    #[serde(default)]
    pub last_sent: BTreeMap<String, SentMark>,
}

/// Key of one alert on one channel: `{channel key}#{fingerprint}`.
pub fn alert_key(channel_key: &str, fingerprint: &str) -> String {
    format!("{channel_key}#{fingerprint}")
}

/// The dedup window: 90 % of the repeat interval.
pub fn dedup_window(repeat_interval: Duration) -> Duration {
    repeat_interval.mul_f64(0.9)
}

/// Decides whether `alert` goes to the channel `channel_key` of kind `kind` at `now`.
pub fn decide(
    history: &History,
    channel_key: &str,
    kind: ChannelKind,
    alert: &NotificationRequest,
    cfg: &NotifyConfig,
    now: DateTime<Utc>,
) -> Decision {
    if kind == ChannelKind::Alertmanager {
        return Decision::Send;
    }
    let last = history
        .last_sent
        .get(&alert_key(channel_key, &alert.fingerprint));
    if let Some(m) = last {
        if m.status == alert.status && elapsed(m.at, now) < dedup_window(cfg.repeat_interval) {
            return Decision::Deduplicated(format!(
                "already notified as {} at {} (repeat interval {})",
                status_word(m.status),
                m.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                humantime::format_duration(cfg.repeat_interval)
            ));
        }
    }
    match alert.status {
        AlertStatus::Resolved => match last {
            Some(m) if m.status == AlertStatus::Firing => Decision::Send,
            _ => Decision::Suppressed("resolved alert was not notified as firing".into()),
        },
        AlertStatus::Firing => match last.and_then(|m| m.fired_at) {
            Some(at) if !cfg.cooldown.is_zero() && elapsed(at, now) < cfg.cooldown => {
                Decision::Suppressed(format!(
                    "alert in cooldown ({}) since {}",
                    humantime::format_duration(cfg.cooldown),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ))
            }
            _ => Decision::Send,
        },
    }
}

/// Records that `alert` was delivered to the channel.
pub fn record_sent(
    history: &mut History,
    channel_key: &str,
    alert: &NotificationRequest,
    now: DateTime<Utc>,
) {
    let key = alert_key(channel_key, &alert.fingerprint);
    let fired_at = match alert.status {
        AlertStatus::Firing => Some(now),
        AlertStatus::Resolved => history.last_sent.get(&key).and_then(|m| m.fired_at),
    };
    history.last_sent.insert(
        key,
        SentMark {
            status: alert.status,
            at: now,
            fired_at,
        },
    );
}

/// Drops marks older than `retention`, then the oldest beyond `max_entries`.
pub fn prune(history: &mut History, now: DateTime<Utc>, retention: Duration, max_entries: usize) {
    history
        .last_sent
        .retain(|_, m| elapsed(m.at, now) < retention);
    if history.last_sent.len() > max_entries {
        let mut times: Vec<DateTime<Utc>> = history.last_sent.values().map(|m| m.at).collect();
        times.sort_unstable();
        let cut = times[history.last_sent.len() - max_entries];
        history.last_sent.retain(|_, m| m.at >= cut);
    }
}

fn elapsed(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - at).to_std().unwrap_or(Duration::ZERO)
}

fn status_word(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// Values of the `group_by` labels of `alert` (missing labels are empty, as in Alertmanager).
pub fn group_labels(alert: &NotificationRequest, group_by: &[String]) -> BTreeMap<String, String> {
    group_by
        .iter()
        .map(|k| (k.clone(), alert.labels.get(k).cloned().unwrap_or_default()))
        .collect()
}

/// Token-bucket rate limit per channel: `burst` messages at once, refilled at
/// `per_minute / 60` per second. In memory: after a restart every bucket starts full.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    burst: f64,
    buckets: HashMap<String, (f64, DateTime<Utc>)>,
}

impl RateLimiter {
    /// A limiter; `per_minute == 0` disables it.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_minute: f64::from(per_minute),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`; `false` when the channel is over its limit.
    pub fn try_take(&mut self, key: &str, now: DateTime<Utc>) -> bool {
        if self.per_minute <= 0.0 {
            return true;
        }
        let (tokens, last) = self
            .buckets
            .entry(key.to_owned())
            .or_insert((self.burst, now));
        let refill = elapsed(*last, now).as_secs_f64() * self.per_minute / 60.0;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::alert;

    fn cfg() -> NotifyConfig {
        NotifyConfig {
            repeat_interval: Duration::from_secs(3600),
            cooldown: Duration::from_secs(600),
            ..NotifyConfig::default()
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("time")
    }

    #[test]
    fn dedup_within_repeat_interval_then_repeat() {
        let mut h = History::default();
        let a = alert("1", "n1");
        assert_eq!(
            decide(&h, "c", ChannelKind::Slack, &a, &cfg(), t(0)),
            Decision::Send
        );
        record_sent(&mut h, "c", &a, t(0));
        assert!(matches!(
            decide(&h, "c", ChannelKind::Slack, &a, &cfg(), t(60)),
            Decision::Deduplicated(_)
        ));
        // Another channel has its own history.
        assert_eq!(
            decide(&h, "d", ChannelKind::Slack, &a, &cfg(), t(60)),
            Decision::Send
        );
        // The sender's repeat, a little under one interval after this delivery, goes out.
        assert_eq!(
            decide(&h, "c", ChannelKind::Slack, &a, &cfg(), t(3590)),
            Decision::Send
        );
        assert!(matches!(
            decide(&h, "c", ChannelKind::Slack, &a, &cfg(), t(3200)),
            Decision::Deduplicated(_)
        ));
        // Alertmanager is never deduplicated here.
        assert_eq!(
            decide(&h, "c", ChannelKind::Alertmanager, &a, &cfg(), t(60)),
            Decision::Send
        );
    }

    #[test]
    fn resolved_only_after_firing() {
        let mut h = History::default();
        let mut r = alert("2", "n1");
        r.status = AlertStatus::Resolved;
        assert!(matches!(
            decide(&h, "c", ChannelKind::Slack, &r, &cfg(), t(0)),
            Decision::Suppressed(_)
        ));
        record_sent(&mut h, "c", &alert("1", "n1"), t(0));
        assert_eq!(
            decide(&h, "c", ChannelKind::Slack, &r, &cfg(), t(5)),
            Decision::Send
        );
        record_sent(&mut h, "c", &r, t(5));
        assert!(matches!(
            decide(&h, "c", ChannelKind::Slack, &r, &cfg(), t(6)),
            Decision::Deduplicated(_)
        ));
    }

    #[test]
    fn cooldown_between_firings_of_the_same_alert() {
        let mut h = History::default();
        let a = alert("1", "n1");
        record_sent(&mut h, "c", &a, t(0));
        let mut r = alert("2", "n1");
        r.status = AlertStatus::Resolved;
        record_sent(&mut h, "c", &r, t(30));
        // Fires again 100 s after the first firing notification: inside the 600 s cooldown.
        let again = alert("3", "n1");
        assert!(matches!(
            decide(&h, "c", ChannelKind::Telegram, &again, &cfg(), t(100)),
            Decision::Suppressed(_)
        ));
        assert_eq!(
            decide(&h, "c", ChannelKind::Telegram, &again, &cfg(), t(601)),
            Decision::Send
        );
        // Other alerts of the rule are not affected.
        assert_eq!(
            decide(
                &h,
                "c",
                ChannelKind::Telegram,
                &alert("4", "n2"),
                &cfg(),
                t(100)
            ),
            Decision::Send
        );
        let no_cooldown = NotifyConfig {
            cooldown: Duration::ZERO,
            ..cfg()
        };
        assert_eq!(
            decide(&h, "c", ChannelKind::Telegram, &again, &no_cooldown, t(100)),
            Decision::Send
        );
    }

    #[test]
    fn prune_bounds_history() {
        let mut h = History::default();
        for i in 0..10 {
            record_sent(&mut h, "c", &alert(&i.to_string(), &format!("n{i}")), t(i));
        }
        prune(&mut h, t(10), Duration::from_secs(3600), 4);
        assert_eq!(h.last_sent.len(), 4);
        assert!(h.last_sent.contains_key(&alert_key("c", "fp-n9")));
        prune(&mut h, t(10_000), Duration::from_secs(3600), 4);
        assert!(h.last_sent.is_empty());
    }

    #[test]
    fn token_bucket() {
        let mut l = RateLimiter::new(60, 2);
        assert!(l.try_take("c", t(0)));
        assert!(l.try_take("c", t(0)));
        assert!(!l.try_take("c", t(0)));
        assert!(l.try_take("other", t(0)));
        assert!(l.try_take("c", t(1)));
        assert!(RateLimiter::new(0, 1).try_take("c", t(0)));
    }

    #[test]
    fn grouping_labels() {
        let a = alert("1", "n1");
        let g = group_labels(&a, &["alertname".into(), "missing".into()]);
        assert_eq!(g["alertname"], "HighLoss");
        assert_eq!(g["missing"], "");
    }
}
