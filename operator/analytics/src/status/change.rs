//! When a projected status is worth writing: typed change keys of MonitorTarget and
//! AlertRule status, and the per-object [`WriteSchedule`] (minimum interval, heartbeat).
//!
//! A key holds what a reader would notice changing. It is built field by field, so what
//! moves on every cycle is left out by construction: `lastReportTime`,
//! `lastEvaluationTime`, `lastValue`, firing values, conditions' `lastTransitionTime`, and
//! suspects' evidence, confidence and problem counts (evidence counts move every interval;
//! who and how bad do not). Summary figures are compared at two significant digits, and
//! the human RTT string not at all (it follows `rttP99Seconds`). Fields other writers own
//! (`observedGeneration`, `nodes.desired`, `nodes.ready`, `notifications`, conditions other
//! than Healthy, Degraded and Ready) are left out too, so the key of the status in the
//! cluster and of the status analytics would write compare equal when nothing changed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fabricwatch_crds::{
    alert_rule::{AlertRuleStatus, AlertState, FiringInstance},
    condition_types,
    monitor_target::{self as mt, MonitorTargetStatus},
};
use fabricwatch_proto::ObjectRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::round_sig;

/// A status with a change key: two statuses with equal keys need no write between them.
pub trait ChangeKey {
    /// The key: the status without the fields that move on every cycle.
    type Key: Clone + std::fmt::Debug + PartialEq;
    /// This status's key.
    fn change_key(&self) -> Self::Key;
}

/// Condition types whose changes count. One list for both kinds: Healthy and Degraded
/// are analytics' on a MonitorTarget, Ready on an AlertRule; the operator's Ready on a
/// MonitorTarget counts as well, so a status read back from the cluster that differs only
/// in it is written once more.
const COMPARED_CONDITIONS: [&str; 3] = [
    condition_types::HEALTHY,
    condition_types::DEGRADED,
    condition_types::READY,
];

/// A condition without `lastTransitionTime`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionKey {
    type_: String,
    status: String,
    reason: String,
    message: String,
    observed_generation: Option<i64>,
}

/// The compared conditions, in type order (a status read back may order them otherwise).
fn condition_keys(conditions: &[Condition]) -> Vec<ConditionKey> {
    let mut keys: Vec<ConditionKey> = conditions
        .iter()
        .filter(|c| COMPARED_CONDITIONS.contains(&c.type_.as_str()))
        .map(|c| ConditionKey {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            observed_generation: c.observed_generation,
        })
        .collect();
    keys.sort_by(|a, b| a.type_.cmp(&b.type_));
    keys
}

/// A summary figure at two significant digits. Non-finite values are all one value, as
/// they are all `null` in the JSON a status is written as.
#[derive(Clone, Copy, Debug)]
pub struct Figure(f64);

impl Figure {
    fn of(x: f64) -> Self {
        Self(round_sig(x, 2))
    }
}

impl PartialEq for Figure {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || (!self.0.is_finite() && !other.0.is_finite())
    }
}

/// `nodes` without `desired` and `ready` (the operator's, from the DaemonSet).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCountsKey {
    reporting: Option<i32>,
    warning: Option<i32>,
    critical: Option<i32>,
}

/// `summary` at two significant digits (counts included), without the `rttP99` text.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryKey {
    worst_loss_percent: Option<Figure>,
    rtt_p99_seconds: Option<Figure>,
    rdma_ports_active: Option<Figure>,
    rdma_ports_down: Option<Figure>,
    rdma_errors_per_minute: Option<Figure>,
    anomalies: Option<Figure>,
}

/// A suspect without `evidence`, `confidence` and `problems`.
#[derive(Clone, Debug, PartialEq)]
pub struct SuspectKey {
    name: String,
    kind: mt::SuspectKind,
    node: Option<String>,
    nodes: Vec<String>,
    domain: Option<String>,
    cause: mt::SuspectCause,
    severity: fabricwatch_crds::Severity,
    since: Option<Time>,
}

/// What decides whether a MonitorTarget status is worth writing.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetKey {
    conditions: Vec<ConditionKey>,
    health: Option<mt::Health>,
    nodes: Option<NodeCountsKey>,
    summary: Option<SummaryKey>,
    suspects: Vec<SuspectKey>,
    problems: Vec<mt::Problem>,
}

impl ChangeKey for MonitorTargetStatus {
    type Key = TargetKey;

    fn change_key(&self) -> TargetKey {
        let figure = |x: Option<f64>| x.map(Figure::of);
        let count = |x: Option<i32>| x.map(|n| Figure::of(f64::from(n)));
        TargetKey {
            conditions: condition_keys(&self.conditions),
            health: self.health,
            nodes: self.nodes.as_ref().map(|n| NodeCountsKey {
                reporting: n.reporting,
                warning: n.warning,
                critical: n.critical,
            }),
            summary: self.summary.as_ref().map(|s| SummaryKey {
                worst_loss_percent: figure(s.worst_loss_percent),
                rtt_p99_seconds: figure(s.rtt_p99_seconds),
                rdma_ports_active: count(s.rdma_ports_active),
                rdma_ports_down: count(s.rdma_ports_down),
                rdma_errors_per_minute: figure(s.rdma_errors_per_minute),
                anomalies: count(s.anomalies),
            }),
            suspects: self
                .suspects
                .iter()
                .map(|s| SuspectKey {
                    name: s.name.clone(),
                    kind: s.kind,
                    node: s.node.clone(),
                    nodes: s.nodes.clone(),
                    domain: s.domain.clone(),
                    cause: s.cause,
                    severity: s.severity,
                    since: s.since.clone(),
                })
                .collect(),
            problems: self.problems.clone(),
        }
    }
}

/// A firing instance without its `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct FiringKey {
    node: Option<String>,
    device: Option<String>,
    port: Option<u32>,
    peer: Option<String>,
    endpoint: Option<String>,
    state: AlertState,
    since: Option<Time>,
}

impl From<&FiringInstance> for FiringKey {
    fn from(f: &FiringInstance) -> Self {
        Self {
            node: f.node.clone(),
            device: f.device.clone(),
            port: f.port,
            peer: f.peer.clone(),
            endpoint: f.endpoint.clone(),
            state: f.state,
            since: f.since.clone(),
        }
    }
}

/// What decides whether an AlertRule status is worth writing.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleKey {
    conditions: Vec<ConditionKey>,
    state: Option<AlertState>,
    active_since: Option<Time>,
    firing: Vec<FiringKey>,
    silenced_by: Option<String>,
    silenced_until: Option<Time>,
    acknowledged_by: Option<String>,
    acknowledged_until: Option<Time>,
}

impl ChangeKey for AlertRuleStatus {
    type Key = RuleKey;

    fn change_key(&self) -> RuleKey {
        RuleKey {
            conditions: condition_keys(&self.conditions),
            state: self.state,
            active_since: self.active_since.clone(),
            firing: self.firing.iter().map(FiringKey::from).collect(),
            silenced_by: self.silenced_by.clone(),
            silenced_until: self.silenced_until.clone(),
            acknowledged_by: self.acknowledged_by.clone(),
            acknowledged_until: self.acknowledged_until.clone(),
        }
    }
}

#[derive(Debug)]
struct Written<K> {
    /// `None` after a failed write: no key equals it, so the next due check retries.
    key: Option<K>,
    at: Instant,
}

/// When each object of one kind was last written, and with which key.
///
/// A write is due when the key differs from both the cluster's and the last written one,
/// at most once per object per `min_interval`, plus a refresh every `heartbeat` so moving
/// timestamps and values do not go stale forever.
#[derive(Debug)]
pub struct WriteSchedule<K> {
    min_interval: Duration,
    heartbeat: Duration,
    written: HashMap<ObjectRef, Written<K>>,
}

impl<K: PartialEq> WriteSchedule<K> {
    /// An empty schedule.
    pub fn new(min_interval: Duration, heartbeat: Duration) -> Self {
        Self {
            min_interval,
            heartbeat,
            written: HashMap::new(),
        }
    }

    /// Whether `obj`'s status with `key` should be written at `now`; `in_cluster` is the
    /// key of the status the object has now (`None` when it has none).
    pub fn due(&self, obj: &ObjectRef, key: &K, in_cluster: Option<&K>, now: Instant) -> bool {
        let last = self.written.get(obj);
        let age = |w: &Written<K>| now.saturating_duration_since(w.at);
        if last.is_some_and(|w| age(w) < self.min_interval) {
            return false;
        }
        let changed = in_cluster != Some(key) && last.is_none_or(|w| w.key.as_ref() != Some(key));
        changed || last.is_some_and(|w| age(w) >= self.heartbeat)
    }

    /// Records a successful write of `key` to `obj` at `now`.
    pub fn written(&mut self, obj: ObjectRef, key: K, now: Instant) {
        self.written.insert(
            obj,
            Written {
                key: Some(key),
                at: now,
            },
        );
    }

    /// Records a failed write to `obj` at `now`: it is retried after `min_interval`, not on
    /// every cycle.
    pub fn failed(&mut self, obj: ObjectRef, now: Instant) {
        self.written.insert(obj, Written { key: None, at: now });
    }

    /// Forgets every object not in `live` (deleted objects).
    pub fn retain<'a>(&mut self, live: impl IntoIterator<Item = &'a ObjectRef>) {
        let live: HashSet<&ObjectRef> = live.into_iter().collect();
        self.written.retain(|o, _| live.contains(o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::t;
    use crate::evaluator::RuleReport;
    use crate::status::{rule_status, target_status, tests::view};

    #[test]
    fn timestamps_and_noise_do_not_count_as_changes() {
        let a = target_status(&view(2.01, 10), Some(1), &[], t(10));
        let b = target_status(&view(2.02, 20), Some(1), &a.conditions, t(20));
        assert_eq!(
            a.change_key(),
            b.change_key(),
            "only lastReportTime and loss noise differ"
        );
        let c = target_status(&view(9.0, 30), Some(1), &a.conditions, t(30));
        assert_ne!(a.change_key(), c.change_key());
    }

    #[test]
    fn other_writers_fields_do_not_count() {
        let ours = target_status(&view(2.0, 10), Some(1), &[], t(10));
        let mut stored = ours.clone();
        stored.observed_generation = Some(7);
        if let Some(n) = stored.nodes.as_mut() {
            n.desired = Some(3);
            n.ready = Some(2);
        }
        stored.conditions.reverse();
        stored.conditions.push(Condition {
            type_: condition_types::ACCEPTED.into(),
            status: "True".into(),
            ..stored.conditions[0].clone()
        });
        assert_eq!(ours.change_key(), stored.change_key());
        // The operator's Ready on a MonitorTarget counts.
        stored.conditions.push(Condition {
            type_: condition_types::READY.into(),
            ..stored.conditions[0].clone()
        });
        assert_ne!(ours.change_key(), stored.change_key());
    }

    #[test]
    fn summary_counts_compare_at_two_digits_and_non_finite_figures_are_one() {
        let mut a = target_status(&view(2.0, 10), Some(1), &[], t(10));
        let mut b = a.clone();
        let (sa, sb) = (
            a.summary.as_mut().expect("summary"),
            b.summary.as_mut().expect("summary"),
        );
        sa.anomalies = Some(123);
        sb.anomalies = Some(124);
        sa.rdma_errors_per_minute = Some(f64::NAN);
        sb.rdma_errors_per_minute = Some(f64::INFINITY);
        sb.rtt_p99 = Some("other".into());
        assert_eq!(a.change_key(), b.change_key());
        b.summary.as_mut().expect("summary").anomalies = Some(130);
        assert_ne!(a.change_key(), b.change_key());
    }

    #[test]
    fn rule_key_leaves_out_times_and_values() {
        let report = |at: i64, v: f64| RuleReport {
            rule: obj(),
            generation: Some(1),
            state: Some(crate::alert::RuleState::Firing),
            active_since: Some(t(0)),
            last_value: Some(v),
            firing: vec![],
            silenced: None,
            acknowledged: None,
            evaluated_at: t(at),
            error: None,
        };
        let a = rule_status(&report(10, 1.0), &[], t(10));
        let b = rule_status(&report(20, 2.0), &a.conditions, t(20));
        assert_eq!(a.change_key(), b.change_key());
        let invalid = rule_status(
            &RuleReport {
                error: Some("bad".into()),
                ..report(30, 2.0)
            },
            &a.conditions,
            t(30),
        );
        assert_ne!(a.change_key(), invalid.change_key());
        let acknowledged = rule_status(
            &RuleReport {
                acknowledged: Some(crate::alert::Handling {
                    by: Some("alice".into()),
                    until: None,
                }),
                ..report(40, 2.0)
            },
            &a.conditions,
            t(40),
        );
        assert_ne!(
            a.change_key(),
            acknowledged.change_key(),
            "who acknowledged counts"
        );
    }

    fn obj() -> ObjectRef {
        ObjectRef {
            namespace: "ns".into(),
            name: "fabric".into(),
        }
    }

    #[test]
    fn schedule_writes_changes_at_most_every_min_interval_and_heartbeats() {
        let s0 = Instant::now();
        let at = |secs: u64| s0 + Duration::from_secs(secs);
        let mut s = WriteSchedule::new(Duration::from_secs(10), Duration::from_secs(300));
        assert!(s.due(&obj(), &1, None, at(0)), "no status yet");
        assert!(!s.due(&obj(), &1, Some(&1), at(0)), "the cluster has it");
        s.written(obj(), 1, at(0));
        assert!(!s.due(&obj(), &2, Some(&1), at(5)), "within min_interval");
        assert!(s.due(&obj(), &2, Some(&1), at(10)));
        assert!(!s.due(&obj(), &1, None, at(10)), "written already");
        assert!(!s.due(&obj(), &1, Some(&1), at(299)));
        assert!(s.due(&obj(), &1, Some(&1), at(300)), "heartbeat");
        s.failed(obj(), at(300));
        assert!(
            !s.due(&obj(), &1, Some(&1), at(305)),
            "retried after min_interval"
        );
        assert!(s.due(&obj(), &1, None, at(310)));
        s.retain(std::iter::empty());
        assert!(
            !s.due(&obj(), &1, Some(&1), at(311)),
            "forgotten: no heartbeat"
        );
    }
}
