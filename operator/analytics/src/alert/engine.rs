//! [`RuleEngine`]: the per-series state machine of one rule (pending, firing, flap damping,
//! cooldown, repeats, maintenance, silence and acknowledgement) and its evaluation.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fabricwatch_crds::alert_rule::Operator;

use super::{AlertEvent, Evaluation, FiringSeries, Handling, RuleSpec, RuleState, SeriesKey};

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
    /// The current firing episode was covered by `spec.acknowledge` at the last evaluation.
    acknowledged: bool,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            phase: Phase::Inactive,
            sent_index: None,
            last_notified: None,
            transitions: Default::default(),
            value: None,
            acknowledged: false,
        }
    }
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
                s.acknowledged = false;
                let quiet = spec
                    .acknowledge
                    .as_ref()
                    .is_some_and(|a| !a.notify_resolved && a.covers(since, now));
                if s.sent_index.take().is_some() && !quiet {
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
                let acknowledged = spec
                    .acknowledge
                    .as_ref()
                    .is_some_and(|a| a.covers(since, now));
                if acknowledged {
                    s.acknowledged = true;
                } else if std::mem::take(&mut s.acknowledged) {
                    // The acknowledgement expired (or was lifted) while the alert still
                    // fires: notify it again, as its first notification was already sent.
                    s.sent_index = None;
                }
                if !suppressed
                    && !silenced
                    && !acknowledged
                    && !is_flapping
                    && cooled
                    && s.sent_index != Some(index)
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
        let all_firing_acknowledged = !firing.is_empty()
            && self.spec.acknowledge.as_ref().is_some_and(|a| {
                firing.iter().all(|f| {
                    a.covers(f.since, now) || silence.is_some_and(|w| w.covers(&f.key, now))
                })
            });
        // Who handled the rule, for status: a silence until it ends (a whole-rule silence
        // shows Silenced with nothing firing too), an acknowledgement while it holds
        // something back.
        let silenced = silence.filter(|w| now < w.until).map(|w| Handling {
            by: w.by.clone(),
            until: Some(w.until),
        });
        let acknowledged = self
            .spec
            .acknowledge
            .as_ref()
            .filter(|a| firing.iter().any(|f| a.covers(f.since, now)))
            .map(|a| Handling {
                by: a.by.clone(),
                until: a.until,
            });
        let state = if suppressed {
            RuleState::Suppressed
        } else if silence.is_some_and(|w| w.whole_rule(now)) || all_firing_silenced {
            RuleState::Silenced
        } else if all_firing_acknowledged {
            RuleState::Acknowledged
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
            silenced,
            acknowledged,
        }
    }
}
