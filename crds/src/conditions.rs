//! Building `status.conditions` (`metav1.Condition`) the same way in every status writer.
//!
//! A writer states the conditions it owns as [`Cond`]s (type, status, reason, message);
//! [`set`] / [`set_all`] turn them into full [`Condition`]s: `lastTransitionTime` is kept
//! from the existing condition of the same type while its status stays the same, and moves
//! to `now` when the status flips or the condition is new (the metav1.Condition convention);
//! `observedGeneration` is the writer's generation; the message is cut to [`MAX_MESSAGE`].
//! [`differ`] says whether writing would change anything, so unchanged status is not
//! rewritten. [`merge`] replaces or adds one condition in a list that also holds other
//! writers' types.
//!
//! Each writer applies only its own condition types; the list is merged by `type` on the
//! server (`x-kubernetes-list-type: map`, see [`crate::common::conditions_schema`]).

use crate::common::{Condition, Time};

/// Longest condition message written, in bytes (the schema allows 32768; shorter reads
/// better in `kubectl describe`).
pub const MAX_MESSAGE: usize = 1024;

/// `status` of a condition that holds.
pub const TRUE: &str = "True";
/// `status` of a condition that does not hold.
pub const FALSE: &str = "False";

/// A condition as its writer wants it: everything but `lastTransitionTime` and
/// `observedGeneration`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// Condition type, e.g. [`crate::condition_types::READY`].
    pub type_: String,
    /// [`TRUE`] or [`FALSE`].
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: String,
    /// Human message saying what to do (cut to [`MAX_MESSAGE`] when written).
    pub message: String,
}

impl Cond {
    /// A condition that holds when `holds`, else does not.
    pub fn new(
        type_: impl Into<String>,
        holds: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_: type_.into(),
            status: if holds { TRUE } else { FALSE },
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A `True` condition.
    pub fn yes(
        type_: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, true, reason, message)
    }

    /// A `False` condition.
    pub fn no(
        type_: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, false, reason, message)
    }

    /// Whether the status is [`TRUE`].
    pub fn holds(&self) -> bool {
        self.status == TRUE
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `desired` as a full condition. Its `lastTransitionTime` is that of the condition of the
/// same type in `existing` when the status is unchanged, else `now`.
pub fn set(
    existing: &[Condition],
    desired: &Cond,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let last_transition_time = match existing.iter().find(|c| c.type_ == desired.type_) {
        Some(p) if p.status == desired.status => p.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: desired.type_.clone(),
        status: desired.status.into(),
        reason: desired.reason.clone(),
        message: truncate(&desired.message, MAX_MESSAGE),
        observed_generation: generation,
        last_transition_time,
    }
}

/// [`set`] for each of `desired`, in order: the conditions a writer applies.
pub fn set_all(
    existing: &[Condition],
    desired: &[Cond],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| set(existing, d, generation, now))
        .collect()
}

/// Replaces the condition of `c`'s type in `list` (in place) or appends `c`.
pub fn merge(list: &mut Vec<Condition>, c: Condition) {
    match list.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) => *x = c,
        None => list.push(c),
    }
}

/// Whether writing `desired` would change `existing`: a type missing, or a different
/// status, reason, (cut) message or generation. Transition times and condition types of
/// other writers are ignored.
pub fn differ(existing: &[Condition], desired: &[Cond], generation: Option<i64>) -> bool {
    desired
        .iter()
        .any(|d| match existing.iter().find(|c| c.type_ == d.type_) {
            None => true,
            Some(c) => {
                c.status != d.status
                    || c.reason != d.reason
                    || c.message != truncate(&d.message, MAX_MESSAGE)
                    || c.observed_generation != generation
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hour: u8) -> Time {
        Time(
            format!("2026-01-01T{hour:02}:00:00Z")
                .parse()
                .expect("timestamp"),
        )
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = set(&[], &Cond::no("Ready", "RollingOut", "1/3"), Some(1), &t(0));
        assert_eq!(first.last_transition_time, t(0));
        assert_eq!(first.status, "False");
        let same = set(
            std::slice::from_ref(&first),
            &Cond::no("Ready", "Other", "2/3"),
            Some(2),
            &t(1),
        );
        assert_eq!(same.last_transition_time, t(0));
        assert_eq!(
            (same.reason.as_str(), same.observed_generation),
            ("Other", Some(2))
        );
        let flipped = set(
            &[first],
            &Cond::yes("Ready", "AgentsReady", "3/3"),
            Some(1),
            &t(1),
        );
        assert_eq!(flipped.last_transition_time, t(1));
    }

    #[test]
    fn other_types_do_not_lend_their_time() {
        let other = set(&[], &Cond::yes("Accepted", "Valid", ""), None, &t(0));
        let ready = set(&[other], &Cond::yes("Ready", "Ok", ""), None, &t(1));
        assert_eq!(ready.last_transition_time, t(1));
    }

    #[test]
    fn differ_ignores_times_and_foreign_types() {
        let desired = vec![
            Cond::yes("Accepted", "Valid", "ok"),
            Cond::no("Ready", "RollingOut", "1/3"),
        ];
        let mut written = set_all(&[], &desired, Some(2), &t(0));
        assert!(!differ(&written, &desired, Some(2)));
        assert!(differ(&written, &desired, Some(3)));
        assert!(differ(
            &written,
            &[Cond::no("Ready", "RollingOut", "2/3")],
            Some(2)
        ));
        assert!(differ(
            &written,
            &[Cond::yes("Healthy", "AllNodesHealthy", "")],
            Some(2)
        ));
        written.push(set(
            &[],
            &Cond::yes("Healthy", "AllNodesHealthy", ""),
            None,
            &t(0),
        ));
        assert!(!differ(&written, &desired, Some(2)));
        // A long message compares by its cut form, as written.
        let long = [Cond::yes("Accepted", "Valid", "x".repeat(5000))];
        let written = set_all(&[], &long, None, &t(0));
        assert!(written[0].message.len() <= MAX_MESSAGE);
        assert!(!differ(&written, &long, None));
    }

    #[test]
    fn merge_replaces_by_type_or_appends() {
        let mut list = set_all(
            &[],
            &[
                Cond::yes("Accepted", "Valid", ""),
                Cond::yes("Ready", "Ok", ""),
            ],
            None,
            &t(0),
        );
        merge(
            &mut list,
            set(&[], &Cond::no("Ready", "Broken", ""), None, &t(1)),
        );
        merge(
            &mut list,
            set(&[], &Cond::yes("Extra", "Yes", ""), None, &t(1)),
        );
        let summary: Vec<_> = list
            .iter()
            .map(|c| (c.type_.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            summary,
            [("Accepted", "Valid"), ("Ready", "Broken"), ("Extra", "Yes")]
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        let t = truncate(&"é".repeat(100), 11);
        assert!(t.len() <= 11 && t.ends_with('…'), "{t}");
        assert_eq!(truncate(&"a".repeat(20), 10), format!("{}…", "a".repeat(7)));
    }
}
