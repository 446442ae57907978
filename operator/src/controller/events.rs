//! Kubernetes Events (`events.k8s.io/v1`) from the controller, with a bounded memory of what
//! it recently sent so that a repeat becomes a series update instead of a new Event.
//!
//! Why not kube's `Recorder`: it keeps every Event it sent, whole, for six minutes, in a map
//! that never shrinks; creating 1,000 MonitorTargets left ~7 MiB in it (a third of the
//! controller's heap, `BENCHMARKS.md`). This publisher keeps a fixed number of small entries.
//!
//! Series follow the Event API's rule (KEP-383, `events.k8s.io/v1` `EventSeries`): an Event
//! isomorphic to one sent less than [`SERIES_WINDOW`] ago updates that Event's
//! `series.count` and `series.lastObservedTime` with a merge patch.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

/// How long a sent Event can absorb repeats as a series (six minutes, as client-go's and
/// kube-rs' event recorders use).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Most Events remembered for series; the oldest are forgotten first (a forgotten repeat
/// only costs a new Event instead of a series update).
pub const RECENT_CAPACITY: usize = 256;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Progress.
    Normal,
    /// Something a user should look at.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// A sent Event that repeats can join.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

/// The last [`RECENT_CAPACITY`] Events sent, by [`series_key`].
#[derive(Debug, Default)]
struct Recent {
    by_key: HashMap<u64, Sent>,
    order: VecDeque<u64>,
}

impl Recent {
    /// The Event a repeat of `key` at `now` joins, if any (and counts the repeat).
    fn join(&mut self, key: u64, now: Instant) -> Option<Sent> {
        let sent = self.by_key.get_mut(&key)?;
        if now.saturating_duration_since(sent.at) >= SERIES_WINDOW {
            return None;
        }
        sent.count = sent.count.saturating_add(1);
        sent.at = now;
        Some(sent.clone())
    }

    fn remember(&mut self, key: u64, sent: Sent) {
        if self.by_key.insert(key, sent).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

/// What makes two Events the same series: the object, type, reason, action and note.
fn series_key(
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &reference.uid,
        &reference.kind,
        &reference.namespace,
        &reference.name,
        type_,
        reason,
        action,
        note,
    )
        .hash(&mut h);
    h.finish()
}

/// Publishes Events as `reporting_controller` / `reporting_instance`.
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
    recent: Mutex<Recent>,
}

impl Publisher {
    /// A publisher for `controller` (the field manager name) running as `instance`.
    pub fn new(client: Client, controller: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            client,
            controller: controller.into(),
            instance: instance.into(),
            recent: Mutex::new(Recent::default()),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        match self.recent.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Publishes one Event about `reference` in its namespace (`default` for cluster-scoped
    /// objects), or adds it to the series of an identical recent one.
    ///
    /// # Errors
    /// The API error of the create or patch.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), kube::Error> {
        let now = Instant::now();
        let stamp = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let key = series_key(reference, type_, reason, action, &note);
        let repeat = self.recent().join(key, now);
        if let Some(sent) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &sent.namespace);
            let patch =
                json!({"series": EventSeries { count: sent.count, last_observed_time: stamp }});
            api.patch(&sent.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(());
        }
        let namespace = reference
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            reference.name.as_deref().unwrap_or(&self.controller),
            stamp.0.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(stamp),
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(type_.as_str().into()),
            regarding: Some(reference.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.recent().remember(
            key,
            Sent {
                namespace,
                name,
                count: 1,
                at: now,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("MonitorTarget".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn sent(name: &str, at: Instant) -> Sent {
        Sent {
            namespace: "ns".into(),
            name: name.into(),
            count: 1,
            at,
        }
    }

    #[test]
    fn repeats_within_the_window_join_the_series() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        let k = series_key(
            &reference("a"),
            EventType::Warning,
            "ApplyFailed",
            "Reconcile",
            "boom",
        );
        assert_eq!(r.join(k, t0), None);
        r.remember(k, sent("a.1", t0));
        let second = r.join(k, t0 + Duration::from_secs(10)).expect("series");
        assert_eq!((second.name.as_str(), second.count), ("a.1", 2));
        let third = r.join(k, t0 + Duration::from_secs(20)).expect("series");
        assert_eq!(third.count, 3);
        // The window runs from the last repeat.
        assert!(r
            .join(k, t0 + Duration::from_secs(20) + SERIES_WINDOW)
            .is_none());
    }

    #[test]
    fn different_objects_reasons_or_notes_are_different_series() {
        let key = |name, type_, reason, note| {
            series_key(&reference(name), type_, reason, "Reconcile", note)
        };
        let a = key("a", EventType::Normal, "RollingOut", "x");
        assert_eq!(a, key("a", EventType::Normal, "RollingOut", "x"));
        for other in [
            key("b", EventType::Normal, "RollingOut", "x"),
            key("a", EventType::Normal, "AgentsReady", "x"),
            key("a", EventType::Normal, "RollingOut", "y"),
            key("a", EventType::Warning, "RollingOut", "x"),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        for k in 0..(RECENT_CAPACITY as u64 + 10) {
            r.remember(k, sent(&format!("e{k}"), t0));
        }
        assert_eq!(r.by_key.len(), RECENT_CAPACITY);
        assert_eq!(r.order.len(), RECENT_CAPACITY);
        assert!(r.join(0, t0).is_none(), "oldest forgotten");
        assert!(
            r.join(RECENT_CAPACITY as u64 + 9, t0).is_some(),
            "newest kept"
        );
    }
}
