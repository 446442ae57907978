//! AlertRule evaluation: a pure state machine per rule and series.
//!
//! A series is one instance of the metric ([`SeriesKey`]: a node, a node's port or a node's
//! peer for `perNode` rules; the whole target for `target` rules).
//! `Inactive → Pending` when the condition holds, `Pending → Firing` once it held for `for`,
//! `Firing → Inactive` once it has not held for `resolveFor` (flap damping in time).
//! A series that changed state `maxTransitions` times within `window` is *flapping*: its
//! notifications are held back and the rule shows `Suppressed` until it settles.
//! `cooldown` is the least time between two Firing notifications of the same series;
//! `repeatInterval` re-sends a still-firing series. During a maintenance window the rule is
//! `Suppressed`: evaluation goes on, but no Firing notification leaves; one that was held back
//! is sent when the window ends if the series still fires. A Resolved notification is sent
//! only for a series whose Firing was sent (also inside a window), so no channel is left with
//! an alert that never closes and none hears of an alert it never saw fire.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::{Metric, Operator, Scope};
use fabricwatch_proto::{
    notify::{AlertStatus, NotificationRequest, SourceKind, NOTIFY_SCHEMA_VERSION},
    ObjectRef, Severity,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A recurring maintenance window: starts at each `cron` occurrence (UTC), lasts `duration`.
#[derive(Clone, Debug)]
pub struct MaintenanceWindow {
    /// The schedule (5 or 6 fields, parsed by `croner`).
    pub cron: croner::Cron,
    /// Length of each window.
    pub duration: Duration,
}

impl MaintenanceWindow {
    /// Parses `cron` (standard 5-field syntax, optional seconds field) with `duration_seconds`.
    ///
    /// # Errors
    /// A message naming the bad pattern or duration.
    pub fn parse(cron: &str, duration_seconds: f64) -> Result<Self, String> {
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| format!("invalid maintenance window cron {cron:?}: {e}"))?;
        if !(duration_seconds.is_finite() && duration_seconds > 0.0) {
            return Err(format!(
                "maintenance window duration must be > 0 seconds, got {duration_seconds}"
            ));
        }
        Ok(Self {
            cron: parsed,
            duration: Duration::milliseconds((duration_seconds * 1000.0) as i64),
        })
    }

    /// Whether `now` lies in a window: the latest start at or before `now` plus `duration` is
    /// after `now` (with equal durations, an earlier start cannot end later).
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.cron
            .find_previous_occurrence(&now, true)
            // A duration reaching past the last representable date never ends.
            .map(|start| {
                start
                    .checked_add_signed(self.duration)
                    .is_none_or(|end| now < end)
            })
            .unwrap_or(false)
    }
}

/// An alert rule, as the engine needs it (built from an AlertRule spec at the edge).
#[derive(Clone, Debug)]
pub struct RuleSpec {
    /// The AlertRule object.
    pub rule: ObjectRef,
    /// The MonitorTarget it watches.
    pub target: ObjectRef,
    /// Metric.
    pub metric: Metric,
    /// Comparison.
    pub op: Operator,
    /// Threshold, in the metric's unit.
    pub threshold: f64,
    /// How long the condition must hold before firing.
    pub for_: Duration,
    /// Per node or per target.
    pub scope: Scope,
    /// Severity of the notification.
    pub severity: Severity,
    /// How long the condition must stay false before a firing series resolves.
    pub resolve_for: Duration,
    /// Flap suppression: (`maxTransitions`, `window`); `None` disables it.
    pub flap: Option<(u32, Duration)>,
    /// Least time between two Firing notifications of the same series.
    pub cooldown: Duration,
    /// Re-send a Firing notification this often while firing (`None` = once).
    pub repeat_interval: Option<Duration>,
    /// Recurring maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Ad-hoc silence (`spec.silence`).
    pub silence: Option<SilenceWindow>,
    /// Annotation templates; `{{ node }}`, `{{ device }}`, `{{ port }}`, `{{ peer }}`,
    /// `{{ value }}`, `{{ threshold }}`, `{{ target }}`, `{{ metric }}` are replaced.
    pub annotations: BTreeMap<String, String>,
    /// AIAnalysis to run when a series starts firing.
    pub analysis_ref: Option<ObjectRef>,
}

/// An ad-hoc silence: until `until`, no Firing notification of the rule, or of the series of
/// node `node` only, is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceWindow {
    /// End of the silence.
    pub until: DateTime<Utc>,
    /// Only this node's series; `None`: every series.
    pub node: Option<String>,
    /// Who silenced and why (free text).
    pub by: Option<String>,
}

impl SilenceWindow {
    /// Whether the silence covers series `key` at `now`.
    pub fn covers(&self, key: &SeriesKey, now: DateTime<Utc>) -> bool {
        now < self.until
            && self
                .node
                .as_ref()
                .is_none_or(|n| key.node.as_ref() == Some(n))
    }

    /// Whether the silence covers the whole rule at `now`.
    pub fn whole_rule(&self, now: DateTime<Utc>) -> bool {
        now < self.until && self.node.is_none()
    }
}

/// State of a rule as shown in AlertRule status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RuleState {
    /// No series pending or firing.
    #[default]
    Inactive,
    /// Some series holds the condition, waiting for `for` (or cooldown).
    Pending,
    /// Some series fires.
    Firing,
    /// A maintenance window is active (or the rule is flapping).
    Suppressed,
    /// `spec.silence` covers the whole rule, or every firing series.
    Silenced,
}

impl RuleState {
    /// Name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Inactive => "Inactive",
            RuleState::Pending => "Pending",
            RuleState::Firing => "Firing",
            RuleState::Suppressed => "Suppressed",
            RuleState::Silenced => "Silenced",
        }
    }
}

/// One instance of a rule's metric. All fields empty for a `target` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesKey {
    /// Node name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// RDMA device (or mount point for disk metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// RDMA port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Ping peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Endpoint probe (`spec.endpoints[].name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl SeriesKey {
    /// The key of a per-node series.
    pub fn node(node: &str) -> Self {
        Self {
            node: Some(node.to_string()),
            ..Self::default()
        }
    }

    /// Human-readable form: `node`, `node mlx5_0/1`, `node → peer`, or `target`.
    pub fn describe(&self) -> String {
        let mut out = self.node.clone().unwrap_or_else(|| "target".into());
        if let Some(d) = &self.device {
            out.push(' ');
            out.push_str(d);
            if let Some(p) = self.port {
                out.push_str(&format!("/{p}"));
            }
        }
        if let Some(p) = &self.peer {
            out.push_str(" → ");
            out.push_str(p);
        }
        if let Some(e) = &self.endpoint {
            out.push_str(" → endpoint ");
            out.push_str(e);
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Inactive,
    Pending {
        since: DateTime<Utc>,
    },
    Firing {
        since: DateTime<Utc>,
        clear_since: Option<DateTime<Utc>>,
    },
}

#[derive(Clone, Debug)]
struct Series {
    phase: Phase,
    /// Repeat index of the last Firing notification sent for the current firing episode.
    sent_index: Option<i64>,
    last_notified: Option<DateTime<Utc>>,
    transitions: std::collections::VecDeque<DateTime<Utc>>,
    value: Option<f64>,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            phase: Phase::Inactive,
            sent_index: None,
            last_notified: None,
            transitions: Default::default(),
            value: None,
        }
    }
}

/// A firing series, for AlertRule `status.firing`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringSeries {
    /// Which instance.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// When it started firing.
    pub since: DateTime<Utc>,
    /// Last value.
    pub value: Option<f64>,
}

/// Something to send because a series changed.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertEvent {
    /// Firing (first notification, or a repeat with `index ≥ 1`).
    Firing {
        /// Which instance.
        key: SeriesKey,
        /// Value that fired.
        value: Option<f64>,
        /// Start of the episode.
        starts_at: DateTime<Utc>,
        /// Repeat index: `⌊(now − startsAt) / repeatInterval⌋`, 0 without repeats.
        index: i64,
    },
    /// Resolved.
    Resolved {
        /// Which instance.
        key: SeriesKey,
        /// Last value.
        value: Option<f64>,
        /// Start of the episode.
        starts_at: DateTime<Utc>,
        /// When it resolved.
        ends_at: DateTime<Utc>,
    },
}

/// Result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Rule state.
    pub state: RuleState,
    /// Earliest start among firing (else pending) series.
    pub active_since: Option<DateTime<Utc>>,
    /// The value that decides the state: the worst value among series (max for `>`/`>=`,
    /// min for `<`/`<=`, else the first).
    pub last_value: Option<f64>,
    /// Firing series, by node.
    pub firing: Vec<FiringSeries>,
    /// Notifications to send.
    pub events: Vec<AlertEvent>,
}

/// The evaluation state of one rule.
#[derive(Clone, Debug)]
pub struct RuleEngine {
    spec: RuleSpec,
    series: BTreeMap<SeriesKey, Series>,
}

impl RuleEngine {
    /// A fresh engine for `spec`.
    pub fn new(spec: RuleSpec) -> Self {
        Self {
            spec,
            series: BTreeMap::new(),
        }
    }

    /// The rule.
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    /// Replaces the rule (spec edited) keeping the state of its series, so editing an
    /// annotation does not re-notify.
    pub fn update_spec(&mut self, spec: RuleSpec) {
        self.spec = spec;
    }

    /// Rebuilds firing series after a restart from what AlertRule status recorded. Their
    /// Firing notification is sent again on the next evaluation with the same id, which the
    /// notifier recognises as a duplicate; nothing already delivered is delivered twice, and
    /// a Firing that was lost in the crash is delivered.
    pub fn restore(&mut self, firing: &[FiringSeries]) {
        for f in firing {
            self.series.insert(
                f.key.clone(),
                Series {
                    phase: Phase::Firing {
                        since: f.since,
                        clear_since: None,
                    },
                    value: f.value,
                    ..Series::default()
                },
            );
        }
    }

    /// Whether a maintenance window is active at `now`.
    pub fn suppressed(&self, now: DateTime<Utc>) -> bool {
        self.spec.maintenance.iter().any(|m| m.active(now))
    }

    /// Evaluates the rule at `now` on `values` (one entry per series; a `target` rule has the
    /// single default key). A series absent from `values` has no data: its condition does not
    /// hold.
    pub fn evaluate(
        &mut self,
        values: &BTreeMap<SeriesKey, f64>,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let spec = &self.spec;
        let suppressed = spec.maintenance.iter().any(|m| m.active(now));
        let mut events = Vec::new();
        let mut flapping = false;
        for key in values.keys() {
            self.series.entry(key.clone()).or_default();
        }
        for (key, s) in self.series.iter_mut() {
            let value = values.get(key).copied().filter(|v| v.is_finite());
            s.value = value.or(s.value);
            let holds = value.is_some_and(|v| spec.op.holds(v, spec.threshold));
            let before = s.phase;
            s.phase = match s.phase {
                Phase::Inactive | Phase::Pending { .. } if !holds => Phase::Inactive,
                Phase::Inactive if spec.for_ <= Duration::zero() => Phase::Firing {
                    since: now,
                    clear_since: None,
                },
                Phase::Inactive => Phase::Pending { since: now },
                Phase::Pending { since } if now - since >= spec.for_ => Phase::Firing {
                    since: now,
                    clear_since: None,
                },
                p @ Phase::Pending { .. } => p,
                Phase::Firing { since, .. } if holds => Phase::Firing {
                    since,
                    clear_since: None,
                },
                Phase::Firing { since, clear_since } => {
                    let clear = clear_since.unwrap_or(now);
                    if now - clear >= spec.resolve_for {
                        Phase::Inactive
                    } else {
                        Phase::Firing {
                            since,
                            clear_since: Some(clear),
                        }
                    }
                }
            };
            let fired =
                matches!(s.phase, Phase::Firing { .. }) != matches!(before, Phase::Firing { .. });
            if fired {
                s.transitions.push_back(now);
            }
            let is_flapping = match spec.flap {
                Some((max, window)) => {
                    while s.transitions.front().is_some_and(|t| now - *t > window) {
                        s.transitions.pop_front();
                    }
                    s.transitions.len() >= max as usize
                }
                None => {
                    s.transitions.clear();
                    false
                }
            };
            flapping |= is_flapping;
            if let (Phase::Firing { since, .. }, Phase::Inactive) = (before, s.phase) {
                if s.sent_index.take().is_some() {
                    events.push(AlertEvent::Resolved {
                        key: key.clone(),
                        value: s.value,
                        starts_at: since,
                        ends_at: now,
                    });
                }
            }
            if let Phase::Firing { since, .. } = s.phase {
                let index = spec
                    .repeat_interval
                    .filter(|r| *r > Duration::zero())
                    .map(|r| (now - since).num_milliseconds() / r.num_milliseconds().max(1))
                    .unwrap_or(0);
                let cooled = s.last_notified.is_none_or(|t| now - t >= spec.cooldown);
                let silenced = spec.silence.as_ref().is_some_and(|w| w.covers(key, now));
                if !suppressed && !silenced && !is_flapping && cooled && s.sent_index != Some(index)
                {
                    events.push(AlertEvent::Firing {
                        key: key.clone(),
                        value: s.value,
                        starts_at: since,
                        index,
                    });
                    s.sent_index = Some(index);
                    s.last_notified = Some(now);
                }
            }
        }
        // Forget quiet series of instances that left, keeping those whose cooldown or flap
        // history still matters.
        let keep_for = spec
            .cooldown
            .max(spec.flap.map(|f| f.1).unwrap_or_else(Duration::zero));
        self.series.retain(|k, s| {
            values.contains_key(k)
                || s.phase != Phase::Inactive
                || s.last_notified.is_some_and(|t| now - t < keep_for)
        });
        self.summarize(suppressed || flapping, now, events)
    }

    fn summarize(
        &self,
        suppressed: bool,
        now: DateTime<Utc>,
        events: Vec<AlertEvent>,
    ) -> Evaluation {
        let firing: Vec<FiringSeries> = self
            .series
            .iter()
            .filter_map(|(k, s)| match s.phase {
                Phase::Firing { since, .. } => Some(FiringSeries {
                    key: k.clone(),
                    since,
                    value: s.value,
                }),
                _ => None,
            })
            .collect();
        let pending_since = self
            .series
            .values()
            .filter_map(|s| match s.phase {
                Phase::Pending { since } => Some(since),
                _ => None,
            })
            .min();
        let silence = self.spec.silence.as_ref();
        let all_firing_silenced = !firing.is_empty()
            && silence.is_some_and(|w| firing.iter().all(|f| w.covers(&f.key, now)));
        let state = if suppressed {
            RuleState::Suppressed
        } else if silence.is_some_and(|w| w.whole_rule(now)) || all_firing_silenced {
            RuleState::Silenced
        } else if !firing.is_empty() {
            RuleState::Firing
        } else if pending_since.is_some() {
            RuleState::Pending
        } else {
            RuleState::Inactive
        };
        let active_since = firing.iter().map(|f| f.since).min().or(pending_since);
        let values = self.series.values().filter_map(|s| s.value);
        let last_value = match self.spec.op {
            Operator::Gt | Operator::Gte => values.reduce(f64::max),
            Operator::Lt | Operator::Lte => values.reduce(f64::min),
            Operator::Eq | Operator::Ne => values.into_iter().next(),
        };
        Evaluation {
            state,
            active_since,
            last_value,
            firing,
            events,
        }
    }

    /// Labels identifying a series: `alertname` (the rule's name), `namespace`, `target`,
    /// `severity` and, when set, `node`, `device`, `port`, `peer`, `endpoint` (the label names the
    /// notifier's `groupBy` knows).
    pub fn labels(&self, key: &SeriesKey) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            ("alertname".to_string(), self.spec.rule.name.clone()),
            ("namespace".to_string(), self.spec.rule.namespace.clone()),
            ("target".to_string(), self.spec.target.name.clone()),
            (
                "severity".to_string(),
                format!("{:?}", self.spec.severity).to_ascii_lowercase(),
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
            ("threshold", format!("{}", self.spec.threshold)),
            ("target", self.spec.target.to_string()),
            ("metric", self.spec.metric.as_str().to_string()),
        ]);
        let mut annotations: BTreeMap<String, String> = self
            .spec
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), render(v, &vars)))
            .collect();
        annotations.entry("summary".into()).or_insert_with(|| {
            render(&format!("{{{{ metric }}}} {} {{{{ threshold }}}} on {{{{ node }}}} (value {{{{ value }}}})", self.spec.op.promql()), &vars)
        });
        NotificationRequest {
            schema_version: NOTIFY_SCHEMA_VERSION,
            id: notification_id(&fp, status, starts_at, index),
            source_kind: SourceKind::AlertRule,
            source: self.spec.rule.clone(),
            fingerprint: fp,
            status,
            severity: self.spec.severity,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::t;

    fn spec() -> RuleSpec {
        RuleSpec {
            rule: ObjectRef {
                namespace: "ns".into(),
                name: "high-loss".into(),
            },
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            metric: Metric::PingLossPercent,
            op: Operator::Gt,
            threshold: 5.0,
            for_: Duration::seconds(30),
            scope: Scope::PerNode,
            severity: Severity::Critical,
            resolve_for: Duration::zero(),
            flap: None,
            cooldown: Duration::zero(),
            repeat_interval: None,
            maintenance: vec![],
            silence: None,
            annotations: BTreeMap::from([(
                "summary".into(),
                "loss {{ value }}% on {{node}}".into(),
            )]),
            analysis_ref: None,
        }
    }

    fn k(node: &str) -> SeriesKey {
        SeriesKey::node(node)
    }

    fn vals(pairs: &[(&str, f64)]) -> BTreeMap<SeriesKey, f64> {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    if n.is_empty() {
                        SeriesKey::default()
                    } else {
                        k(n)
                    },
                    *v,
                )
            })
            .collect()
    }

    fn fire_now() -> RuleSpec {
        RuleSpec {
            for_: Duration::zero(),
            ..spec()
        }
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut e = RuleEngine::new(spec());
        let r = e.evaluate(&vals(&[("a", 10.0), ("b", 1.0)]), t(0));
        assert_eq!(r.state, RuleState::Pending);
        assert_eq!(r.active_since, Some(t(0)));
        assert!(r.events.is_empty());
        assert_eq!(
            e.evaluate(&vals(&[("a", 10.0), ("b", 1.0)]), t(29)).state,
            RuleState::Pending
        );
        let r = e.evaluate(&vals(&[("a", 11.0), ("b", 1.0)]), t(30));
        assert_eq!(r.state, RuleState::Firing);
        assert_eq!(
            r.firing,
            vec![FiringSeries {
                key: k("a"),
                since: t(30),
                value: Some(11.0)
            }]
        );
        assert_eq!(
            r.events,
            vec![AlertEvent::Firing {
                key: k("a"),
                value: Some(11.0),
                starts_at: t(30),
                index: 0
            }]
        );
        assert_eq!(r.last_value, Some(11.0));
        assert!(
            e.evaluate(&vals(&[("a", 12.0)]), t(40)).events.is_empty(),
            "no repeat without repeatInterval"
        );
        let r = e.evaluate(&vals(&[("a", 0.0)]), t(50));
        assert_eq!(r.state, RuleState::Inactive);
        assert_eq!(
            r.events,
            vec![AlertEvent::Resolved {
                key: k("a"),
                value: Some(0.0),
                starts_at: t(30),
                ends_at: t(50)
            }]
        );
    }

    #[test]
    fn pending_interrupted_starts_over() {
        let mut e = RuleEngine::new(spec());
        e.evaluate(&vals(&[("a", 10.0)]), t(0));
        e.evaluate(&vals(&[("a", 1.0)]), t(20));
        e.evaluate(&vals(&[("a", 10.0)]), t(25));
        assert_eq!(
            e.evaluate(&vals(&[("a", 10.0)]), t(50)).state,
            RuleState::Pending,
            "for counts from 25 s"
        );
        assert_eq!(
            e.evaluate(&vals(&[("a", 10.0)]), t(55)).state,
            RuleState::Firing
        );
    }

    #[test]
    fn threshold_edge_is_exclusive_for_gt() {
        let mut e = RuleEngine::new(fire_now());
        assert_eq!(
            e.evaluate(&vals(&[("a", 5.0)]), t(0)).state,
            RuleState::Inactive
        );
        assert_eq!(
            e.evaluate(&vals(&[("a", 5.000001)]), t(1)).state,
            RuleState::Firing
        );
    }

    #[test]
    fn resolve_for_keeps_a_dipping_series_firing() {
        let mut e = RuleEngine::new(RuleSpec {
            resolve_for: Duration::seconds(60),
            ..fire_now()
        });
        e.evaluate(&vals(&[("a", 9.0)]), t(0));
        assert_eq!(
            e.evaluate(&vals(&[("a", 1.0)]), t(10)).state,
            RuleState::Firing
        );
        assert_eq!(
            e.evaluate(&vals(&[("a", 9.0)]), t(20)).state,
            RuleState::Firing,
            "clear timer resets"
        );
        assert_eq!(
            e.evaluate(&vals(&[("a", 1.0)]), t(30)).state,
            RuleState::Firing
        );
        assert_eq!(
            e.evaluate(&vals(&[("a", 1.0)]), t(89)).state,
            RuleState::Firing
        );
        let r = e.evaluate(&vals(&[("a", 1.0)]), t(90));
        assert_eq!(r.state, RuleState::Inactive);
        assert!(
            matches!(r.events.as_slice(), [AlertEvent::Resolved { starts_at, .. }] if *starts_at == t(0))
        );
    }

    #[test]
    fn flapping_series_is_suppressed_until_it_settles() {
        let mut e = RuleEngine::new(RuleSpec {
            flap: Some((4, Duration::seconds(600))),
            ..fire_now()
        });
        let mut sent = 0;
        for (i, v) in [9.0, 0.0, 9.0, 0.0, 9.0, 0.0].iter().enumerate() {
            sent += e
                .evaluate(&vals(&[("a", *v)]), t(10 * i as i64))
                .events
                .len();
        }
        // Fire, resolve, fire, resolve are sent (4 events); the 4th transition marks flapping,
        // so the third Firing at 40 s is held back and its resolve is not sent either.
        assert_eq!(sent, 4);
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(60));
        assert_eq!(r.state, RuleState::Suppressed);
        assert!(r.events.is_empty());
        // Ten minutes later the old transitions left the window: it notifies again.
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(700));
        assert_eq!(r.state, RuleState::Firing);
        assert_eq!(r.events.len(), 1);
    }

    #[test]
    fn cooldown_spaces_firing_notifications() {
        let mut e = RuleEngine::new(RuleSpec {
            cooldown: Duration::seconds(300),
            ..fire_now()
        });
        assert_eq!(e.evaluate(&vals(&[("a", 9.0)]), t(0)).events.len(), 1);
        assert_eq!(
            e.evaluate(&vals(&[("a", 0.0)]), t(10)).events.len(),
            1,
            "resolve is sent"
        );
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(20));
        assert_eq!(r.state, RuleState::Firing);
        assert!(
            r.events.is_empty(),
            "within cooldown of the last firing notification"
        );
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(300));
        assert!(
            matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == t(20))
        );
    }

    #[test]
    fn repeat_interval_sends_numbered_repeats() {
        let mut e = RuleEngine::new(RuleSpec {
            repeat_interval: Some(Duration::seconds(60)),
            ..fire_now()
        });
        assert_eq!(e.evaluate(&vals(&[("a", 9.0)]), t(0)).events.len(), 1);
        assert!(e.evaluate(&vals(&[("a", 9.0)]), t(59)).events.is_empty());
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(61));
        assert!(matches!(
            r.events.as_slice(),
            [AlertEvent::Firing { index: 1, .. }]
        ));
        let ids: Vec<String> = [0, 1]
            .iter()
            .map(|i| notification_id("fp", AlertStatus::Firing, t(0), *i))
            .collect();
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn maintenance_window_suppresses_then_releases() {
        // Every day at 00:00 UTC for one hour.
        let mut e = RuleEngine::new(RuleSpec {
            maintenance: vec![MaintenanceWindow::parse("0 0 * * *", 3600.0).expect("cron")],
            ..fire_now()
        });
        let midnight = DateTime::parse_from_rfc3339("2023-11-15T00:10:00Z")
            .expect("t")
            .with_timezone(&Utc);
        let r = e.evaluate(&vals(&[("a", 9.0)]), midnight);
        assert_eq!(r.state, RuleState::Suppressed);
        assert!(r.events.is_empty());
        let r = e.evaluate(
            &vals(&[("a", 9.0)]),
            midnight + Duration::minutes(50) - Duration::seconds(1),
        );
        assert_eq!(r.state, RuleState::Suppressed, "window ends at 01:00");
        let r = e.evaluate(&vals(&[("a", 9.0)]), midnight + Duration::minutes(50));
        assert_eq!(r.state, RuleState::Firing);
        assert!(
            matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == midnight)
        );
        assert!(MaintenanceWindow::parse("61 * * * *", 60.0).is_err());
        assert!(MaintenanceWindow::parse("0 0 * * *", 0.0).is_err());
        // A window ending past the last representable date (`2500000000h` passes the CRD's
        // duration pattern) is active, not a panic.
        let endless = MaintenanceWindow::parse("0 0 * * *", 9.0e15).expect("cron");
        assert!(endless.active(midnight));
    }

    #[test]
    fn silence_holds_back_firing_until_it_ends() {
        let mut e = RuleEngine::new(RuleSpec {
            silence: Some(SilenceWindow {
                until: t(100),
                node: None,
                by: Some("alice".into()),
            }),
            ..fire_now()
        });
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(0));
        assert_eq!(r.state, RuleState::Silenced);
        assert!(r.events.is_empty(), "nothing leaves during the silence");
        assert_eq!(r.firing.len(), 1, "still evaluated");
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(99));
        assert!(r.events.is_empty());
        // The silence is over and the alert still fires: it is notified, with its real start.
        let r = e.evaluate(&vals(&[("a", 9.0)]), t(100));
        assert_eq!(r.state, RuleState::Firing);
        assert!(
            matches!(r.events.as_slice(), [AlertEvent::Firing { starts_at, .. }] if *starts_at == t(0))
        );
    }

    #[test]
    fn silence_of_one_node_leaves_the_others_notified() {
        let mut e = RuleEngine::new(RuleSpec {
            silence: Some(SilenceWindow {
                until: t(100),
                node: Some("a".into()),
                by: None,
            }),
            ..fire_now()
        });
        let r = e.evaluate(&vals(&[("a", 9.0), ("b", 9.0)]), t(0));
        assert_eq!(r.state, RuleState::Firing, "b fires unsilenced");
        let notified: Vec<_> = r
            .events
            .iter()
            .map(|ev| match ev {
                AlertEvent::Firing { key, .. } | AlertEvent::Resolved { key, .. } => {
                    key.node.clone()
                }
            })
            .collect();
        assert_eq!(notified, vec![Some("b".to_string())]);
        // Only the silenced node fires: the rule shows Silenced.
        let r = e.evaluate(&vals(&[("a", 9.0), ("b", 1.0)]), t(10));
        assert_eq!(r.state, RuleState::Silenced);
        // b was notified, so its resolve is too; a (never notified) resolves silently.
        assert!(
            matches!(r.events.as_slice(), [AlertEvent::Resolved { key, .. }] if key.node.as_deref() == Some("b"))
        );
        let r = e.evaluate(&vals(&[("a", 1.0), ("b", 1.0)]), t(20));
        assert!(r.events.is_empty(), "{:?}", r.events);
        assert_eq!(r.state, RuleState::Inactive);
    }

    #[test]
    fn restart_resends_same_id_and_resolves_once() {
        let mut before = RuleEngine::new(fire_now());
        let r = before.evaluate(&vals(&[("a", 9.0)]), t(0));
        let first = before.request(&r.events[0]);
        // Restart: a new engine restored from status.
        let mut after = RuleEngine::new(fire_now());
        after.restore(&r.firing);
        let r2 = after.evaluate(&vals(&[("a", 9.0)]), t(10));
        assert_eq!(r2.state, RuleState::Firing);
        assert_eq!(r2.firing[0].since, t(0), "the firing alert is not lost");
        assert_eq!(
            after.request(&r2.events[0]).id,
            first.id,
            "re-send is recognised by id"
        );
        assert!(after
            .evaluate(&vals(&[("a", 9.0)]), t(20))
            .events
            .is_empty());
        let r3 = after.evaluate(&vals(&[("a", 0.0)]), t(30));
        let resolved = after.request(&r3.events[0]);
        assert_eq!(resolved.status, AlertStatus::Resolved);
        assert_eq!(resolved.fingerprint, first.fingerprint);
        assert_ne!(resolved.id, first.id);
        assert_eq!(resolved.ends_at, Some(t(30)));
    }

    #[test]
    fn request_renders_annotations_and_labels() {
        let mut e = RuleEngine::new(fire_now());
        let key = SeriesKey {
            node: Some("node-7".into()),
            peer: Some("node-9".into()),
            ..Default::default()
        };
        let r = e.evaluate(&BTreeMap::from([(key, 12.5)]), t(0));
        let req = e.request(&r.events[0]);
        assert_eq!(
            req.annotations["summary"],
            "loss 12.5000% on node-7 → node-9"
        );
        assert_eq!(req.labels["node"], "node-7");
        assert_eq!(req.labels["peer"], "node-9");
        assert_eq!(req.labels["alertname"], "high-loss");
        assert!(!req.labels.contains_key("port"));
        assert_eq!(req.source_kind, SourceKind::AlertRule);
        assert_eq!(req.id.len(), 32);
        assert_eq!(req.fingerprint.len(), 16);
    }

    #[test]
    fn target_scope_and_missing_data() {
        let mut e = RuleEngine::new(RuleSpec {
            scope: Scope::Target,
            ..fire_now()
        });
        assert_eq!(
            e.evaluate(&vals(&[("", 9.0)]), t(0)).state,
            RuleState::Firing
        );
        let r = e.evaluate(&BTreeMap::new(), t(10));
        assert_eq!(r.state, RuleState::Inactive, "no data resolves");
        assert!(matches!(r.events.as_slice(), [AlertEvent::Resolved { .. }]));
    }

    #[test]
    fn render_keeps_unknown_placeholders() {
        let v = BTreeMap::from([("a", "1".to_string())]);
        assert_eq!(render("x{{a}}y{{ b }}z{{", &v), "x1y{{ b }}z{{");
    }
}
