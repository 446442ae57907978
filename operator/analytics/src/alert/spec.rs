//! What one AlertRule asks for, as evaluation needs it: [`RuleSpec`], its recurring
//! [`MaintenanceWindow`]s and its one-off [`SilenceWindow`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::{Metric, Operator, Scope};
use fabricwatch_proto::{ObjectRef, Severity};

use super::SeriesKey;

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
    /// Acknowledgement of the current alerts (`spec.acknowledge`).
    pub acknowledge: Option<Acknowledgement>,
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

/// An acknowledgement: firing episodes that began at or before `at` send no further Firing
/// notification while it holds (until `until`, when given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    /// When it was acknowledged.
    pub at: DateTime<Utc>,
    /// When it expires; `None`: when the acknowledged episodes resolve.
    pub until: Option<DateTime<Utc>>,
    /// Who acknowledged and why (free text).
    pub by: Option<String>,
    /// Whether the resolve of an acknowledged episode is notified.
    pub notify_resolved: bool,
}

impl Acknowledgement {
    /// Whether it covers a firing episode that began at `since`, at `now`. An episode that
    /// began after `at` is new to whoever acknowledged, so it is never covered.
    pub fn covers(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        since <= self.at && self.until.is_none_or(|u| now < u)
    }
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
