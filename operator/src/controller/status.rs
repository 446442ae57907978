//! Pure status logic: the conditions the controller owns (`Accepted`, `Ready`) and the Event
//! a status write announces. Building, comparing and cutting conditions is
//! [`fabricwatch_crds::conditions`], shared with analytics.

use fabricwatch_crds::condition_types::{ACCEPTED, READY};
use fabricwatch_crds::{Condition, Errors};

/// The condition builder shared with analytics: what a writer wants ([`Cond`]), message
/// cut ([`truncate`], [`MAX_MESSAGE`]); `set_all` and `differ` turn wants into conditions.
pub use fabricwatch_crds::conditions::{truncate, Cond, MAX_MESSAGE};

/// `Accepted` from a validation result.
pub fn accepted(result: &Result<(), Errors>) -> Cond {
    match result {
        Ok(()) => Cond::yes(ACCEPTED, "Valid", "the spec is valid"),
        Err(e) => Cond::no(ACCEPTED, "InvalidSpec", format!("fix the spec: {e}")),
    }
}

/// Rollout counts of a DaemonSet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// `status.desiredNumberScheduled`.
    pub desired: i32,
    /// `status.numberReady`.
    pub ready: i32,
    /// `status.updatedNumberScheduled`.
    pub updated: i32,
    /// `status.observedGeneration >= metadata.generation`.
    pub observed: bool,
}

impl Rollout {
    /// Every selected node runs a ready agent of the current spec (false when no node is
    /// selected).
    pub fn complete(&self) -> bool {
        self.observed
            && self.desired > 0
            && self.ready >= self.desired
            && self.updated >= self.desired
    }

    /// Agents of the current spec are still starting: the spec is not yet seen, or some
    /// selected node lacks a ready, updated agent (never with no node selected).
    pub fn rolling_out(&self) -> bool {
        !self.observed || (self.desired > 0 && !self.complete())
    }
}

/// Pod Security admission levels that reject the agents' host access (hostNetwork, hostPath,
/// NET_RAW are all beyond `baseline`; see the Pod Security Standards).
pub fn pod_security_blocks(enforce_level: Option<&str>) -> bool {
    matches!(enforce_level, Some("baseline" | "restricted"))
}

/// `Ready` of a MonitorTarget from its DaemonSet's rollout and what blocks it.
pub fn ready(
    rollout: Rollout,
    namespace: &str,
    pod_security_level: Option<&str>,
    pod_monitor_problem: Option<&str>,
) -> Cond {
    let Rollout {
        desired,
        ready,
        updated,
        observed,
    } = rollout;
    if let Some(p) = pod_monitor_problem {
        return Cond::no(READY, "PodMonitorUnavailable", p);
    }
    if !observed {
        return Cond::no(
            READY,
            "RollingOut",
            "waiting for the DaemonSet controller to pick up the new agent spec",
        );
    }
    if desired == 0 {
        return Cond::no(
            READY,
            "NoNodesSelected",
            "no node matches spec.nodeSelector and spec.tolerations; check node labels and taints",
        );
    }
    if ready < desired || updated < desired {
        if pod_security_blocks(pod_security_level) {
            return Cond::no(
                READY,
                "PodSecurityForbidden",
                format!(
                    "namespace {namespace} enforces Pod Security level {:?}, which forbids the agents' hostNetwork, hostPath and NET_RAW; label the namespace pod-security.kubernetes.io/enforce=privileged or create the MonitorTarget in a namespace that allows it ({ready}/{desired} agents ready)",
                    pod_security_level.unwrap_or_default()
                ),
            );
        }
        return Cond::no(
            READY,
            "RollingOut",
            format!("{ready}/{desired} agents ready, {updated}/{desired} updated; `kubectl get pods -l app.kubernetes.io/name=fabricwatch-agent` shows why"),
        );
    }
    Cond::yes(
        READY,
        "AgentsReady",
        format!("{ready}/{desired} agents ready"),
    )
}

/// The one Event a status write announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// `Warning` (else `Normal`).
    pub warning: bool,
    /// The Event's reason.
    pub reason: String,
    /// The Event's note: each changed condition as `Type=Status (Reason): message`.
    pub note: String,
}

/// What a status write that turns `existing` into `desired` tells the user as one Event, or
/// `None` when no condition changed its status or reason (a new message alone is not news).
/// The reason is `Ready`'s when it changed (what users watch), else the first changed
/// condition's. A Warning when any changed condition is `False` for a reason other than
/// `RollingOut` (a rollout in progress is normal).
pub fn announcement(existing: &[Condition], desired: &[Cond]) -> Option<Announcement> {
    let changed: Vec<&Cond> = desired
        .iter()
        .filter(|d| {
            !existing
                .iter()
                .any(|e| e.type_ == d.type_ && e.status == d.status && e.reason == d.reason)
        })
        .collect();
    let headline = changed
        .iter()
        .find(|c| c.type_ == READY)
        .or_else(|| changed.first())?;
    let note = changed
        .iter()
        .map(|c| format!("{}={} ({}): {}", c.type_, c.status, c.reason, c.message))
        .collect::<Vec<_>>()
        .join("; ");
    Some(Announcement {
        warning: changed
            .iter()
            .any(|c| c.status == "False" && c.reason != "RollingOut"),
        reason: headline.reason.clone(),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_crds::conditions::{differ, set_all};
    use fabricwatch_crds::Time;

    #[test]
    fn one_announcement_per_write_led_by_ready() {
        let accepted = Cond::yes(ACCEPTED, "Valid", "the spec is valid");
        let rolling = Cond::no(READY, "RollingOut", "waiting");
        let none = Cond::no(READY, "NoNodesSelected", "no node matches");
        // Creation: both conditions new, one Normal Event named after Ready.
        let a = announcement(&[], &[accepted.clone(), rolling.clone()]).expect("news");
        assert_eq!(a.reason, "RollingOut");
        assert!(!a.warning);
        assert_eq!(
            a.note,
            "Accepted=True (Valid): the spec is valid; Ready=False (RollingOut): waiting"
        );
        // Only Ready changes, to a problem: a Warning about Ready alone.
        let existing = set_all(&[], &[accepted.clone(), rolling], Some(1), &now());
        let b = announcement(&existing, &[accepted.clone(), none.clone()]).expect("news");
        assert_eq!((b.reason.as_str(), b.warning), ("NoNodesSelected", true));
        assert!(!b.note.contains("Accepted"), "{}", b.note);
        // Same status and reason, new message: no Event.
        let existing = set_all(&[], &[accepted.clone(), none], Some(1), &now());
        let c = Cond::no(READY, "NoNodesSelected", "other words");
        assert_eq!(announcement(&existing, &[accepted, c]), None);
        // Only Accepted changes: named after it.
        let bad = Cond::no(ACCEPTED, "InvalidSpec", "fix it");
        let existing = set_all(&[], &[Cond::yes(ACCEPTED, "Valid", "ok")], Some(1), &now());
        let d = announcement(&existing, &[bad]).expect("news");
        assert_eq!((d.reason.as_str(), d.warning), ("InvalidSpec", true));
    }

    fn now() -> Time {
        Time("2026-01-01T00:00:00Z".parse().expect("ts"))
    }

    #[test]
    fn unchanged_conditions_are_not_rewritten() {
        let desired = vec![
            accepted(&Ok(())),
            ready(
                Rollout {
                    desired: 3,
                    ready: 3,
                    updated: 3,
                    observed: true,
                },
                "ns",
                None,
                None,
            ),
        ];
        let written = set_all(&[], &desired, Some(2), &now());
        assert!(!differ(&written, &desired, Some(2)));
        // A new generation or a new message is a change.
        assert!(differ(&written, &desired, Some(3)));
        let rolling = vec![
            desired[0].clone(),
            ready(
                Rollout {
                    desired: 3,
                    ready: 2,
                    updated: 3,
                    observed: true,
                },
                "ns",
                None,
                None,
            ),
        ];
        assert!(differ(&written, &rolling, Some(2)));
        // Conditions of other writers are ignored.
        let mut with_other = written.clone();
        with_other.push(Condition {
            type_: "Healthy".into(),
            status: "True".into(),
            reason: "AllNodesHealthy".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: now(),
        });
        assert!(!differ(&with_other, &desired, Some(2)));
    }

    #[test]
    fn ready_reasons() {
        let r = |desired, ready, updated, observed| Rollout {
            desired,
            ready,
            updated,
            observed,
        };
        assert_eq!(
            super::ready(r(3, 3, 3, true), "ns", None, None).reason,
            "AgentsReady"
        );
        assert_eq!(
            super::ready(r(3, 1, 3, true), "ns", None, None).reason,
            "RollingOut"
        );
        assert_eq!(
            super::ready(r(3, 3, 3, false), "ns", None, None).reason,
            "RollingOut"
        );
        assert_eq!(
            super::ready(r(0, 0, 0, true), "ns", None, None).reason,
            "NoNodesSelected"
        );
        let c = super::ready(r(3, 0, 0, true), "team-a", Some("baseline"), None);
        assert_eq!(c.reason, "PodSecurityForbidden");
        assert!(
            c.message
                .contains("pod-security.kubernetes.io/enforce=privileged"),
            "{}",
            c.message
        );
        assert_eq!(
            super::ready(r(3, 0, 0, true), "ns", Some("privileged"), None).reason,
            "RollingOut"
        );
        assert_eq!(
            super::ready(r(3, 3, 3, true), "ns", None, Some("no API")).reason,
            "PodMonitorUnavailable"
        );
    }

    #[test]
    fn accepted_lists_field_errors() {
        let mut e = Errors::default();
        e.push("spec.interval", "must be at least 1s, got 500ms");
        let c = accepted(&Err(e));
        assert_eq!((c.status, c.reason.as_str()), ("False", "InvalidSpec"));
        assert_eq!(
            c.message,
            "fix the spec: spec.interval: must be at least 1s, got 500ms"
        );
    }
}
