//! What the controller knows of the children it applied, so that a reconcile whose desired
//! children are already in place sends no request at all.
//!
//! A server-side apply that changes nothing is not free: the API server decodes, merges and
//! compares the whole object, and every MonitorTarget has four children. Without this, a
//! target is re-applied on every trigger (its DaemonSet's status moving, a resync), which at
//! 1,000 targets is most of the controller's traffic.
//!
//! The rule ([`Ledger::is_current`]): a child is skipped when the last apply of this process
//! sent the same desired object (same hash), the child's watch ([`ChildIndex`]) shows it at the version
//! that apply produced, and that apply is younger than [`REAPPLY_AFTER`]. Otherwise it is
//! applied. The version is `metadata.generation` for DaemonSets (their status changes all
//! the time, their spec only when someone edits it) and `metadata.resourceVersion` for the
//! others. So: a spec change, a deleted child, an edited child (drift) or a restarted
//! controller (empty ledger) all lead to an apply; the periodic re-apply bounds what the
//! version cannot see (a label-only edit of a DaemonSet does not bump its generation).
//!
//! The indexes keep, per child, only that version and a DaemonSet's rollout counts: the
//! whole objects (kube's reflector caches) cost ~9 KiB per target, ~12 MiB at 1,000.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use kube::runtime::watcher;
use kube::Resource;
use serde::Serialize;

use super::slim::{Slim, SlimStatus};
use crate::controller::status::Rollout;

/// Longest time a child goes without being applied again while its target is reconciled
/// (the default resync period, `--resync-seconds`).
pub const REAPPLY_AFTER: Duration = Duration::from_secs(300);

/// Identity of a child: [`child_key`] of kind, namespace and name. Keys, versions and
/// objects are kept as 64-bit hashes (40 bytes an entry instead of ~230 with the strings); a
/// wrong skip would need the key, the object and the version hashes of two children to
/// collide at once.
pub type ChildKey = u64;

/// The [`ChildKey`] of a child.
pub fn child_key(kind: &str, namespace: &str, name: &str) -> ChildKey {
    let mut h = DefaultHasher::new();
    (kind, namespace, name).hash(&mut h);
    h.finish()
}

/// What the last apply of one child sent and got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// [`desired_hash`] of the object sent.
    pub hash: u64,
    /// [`version_hash`] of the version the API server returned (see the module doc).
    pub version: u64,
    /// When the apply returned.
    pub at: Instant,
}

/// Hash of an object version (`resourceVersion` is opaque: compared, never parsed).
pub fn version_hash(version: &str) -> u64 {
    let mut h = DefaultHasher::new();
    version.hash(&mut h);
    h.finish()
}

/// Last applies of this process, by child. Entries older than [`REAPPLY_AFTER`] are useless
/// and removed by [`Ledger::prune`].
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<HashMap<ChildKey, Applied>>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChildKey, Applied>> {
        match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether `key`, desired as `hash`, is already in place given the version the watch
    /// cache shows (`None`: not in the cache, e.g. deleted).
    pub fn is_current(
        &self,
        key: &ChildKey,
        hash: u64,
        observed: Option<u64>,
        now: Instant,
    ) -> bool {
        is_current(self.lock().get(key), hash, observed, now)
    }

    /// Records an apply of `key`.
    pub fn record(&self, key: ChildKey, applied: Applied) {
        self.lock().insert(key, applied);
    }

    /// Forgets entries that can no longer cause a skip.
    pub fn prune(&self, now: Instant) {
        self.lock()
            .retain(|_, a| now.saturating_duration_since(a.at) < REAPPLY_AFTER);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The skip rule on its own (see the module doc).
pub fn is_current(last: Option<&Applied>, hash: u64, observed: Option<u64>, now: Instant) -> bool {
    match (last, observed) {
        (Some(last), Some(observed)) => {
            last.hash == hash
                && last.version == observed
                && now.saturating_duration_since(last.at) < REAPPLY_AFTER
        }
        _ => false,
    }
}

/// Hash of the serialized desired object. Stable within one process, which is all the ledger
/// needs (it is not persisted). A serialization failure yields 0, which never matches a
/// recorded hash of a serializable object and so only costs an apply.
pub fn desired_hash<T: Serialize>(obj: &T) -> u64 {
    let mut h = DefaultHasher::new();
    match serde_json::to_vec(obj) {
        Ok(bytes) => bytes.hash(&mut h),
        Err(_) => return 0,
    }
    h.finish()
}

/// What the controller keeps of one watched child: its version (hashed, see
/// [`version_hash`]) and, for a DaemonSet, its rollout counts. Everything else in the object
/// (metadata, pod template, status details) is dropped as the watch delivers it; a full
/// reflector cache of four kinds cost ~9 KiB per MonitorTarget, this ~150 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// [`version_hash`] of `metadata.generation` (DaemonSets) or `metadata.resourceVersion`.
    pub version: u64,
    /// DaemonSet rollout counts (`None` for other kinds).
    pub rollout: Option<Rollout>,
}

/// An index of one child kind, by [`child_key`], fed by that kind's watch events
/// ([`ChildIndex::apply`]).
#[derive(Debug)]
pub struct ChildIndex {
    kind: &'static str,
    entries: RwLock<HashMap<ChildKey, Observed>>,
    /// Entries of a relist in progress (between `Init` and `InitDone`).
    relist: Mutex<Option<HashMap<ChildKey, Observed>>>,
}

impl ChildIndex {
    /// An empty index of `kind` (the kind name given to [`child_key`]).
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            entries: RwLock::new(HashMap::new()),
            relist: Mutex::new(None),
        }
    }

    /// What is known of `namespace/name`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Observed> {
        let key = child_key(self.kind, namespace, name);
        match self.entries.read() {
            Ok(m) => m.get(&key).copied(),
            Err(poisoned) => poisoned.into_inner().get(&key).copied(),
        }
    }

    /// Updates the index from one watch event; `observe` extracts what is kept. A relist
    /// (`Init` … `InitDone`) replaces the whole index at its end, so children deleted while
    /// the watch was down disappear too.
    ///
    /// Returns the event's object when the owner should look at it: deleted, or its
    /// observed view differs from what the index held (new, another version, other rollout
    /// counts). This replaces a per-object predicate cache beside the index.
    pub fn apply<K: Resource>(
        &self,
        event: watcher::Event<K>,
        observe: fn(&K) -> Observed,
    ) -> Option<K> {
        let key = |o: &K| {
            child_key(
                self.kind,
                o.meta().namespace.as_deref().unwrap_or_default(),
                o.meta().name.as_deref().unwrap_or_default(),
            )
        };
        let mut entries = match self.entries.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut relist = match self.relist.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match event {
            watcher::Event::Apply(o) => {
                let seen = observe(&o);
                let before = entries.insert(key(&o), seen);
                (before != Some(seen)).then_some(o)
            }
            watcher::Event::Delete(o) => {
                entries.remove(&key(&o));
                Some(o)
            }
            watcher::Event::Init => {
                *relist = Some(HashMap::new());
                None
            }
            watcher::Event::InitApply(o) => {
                let (k, seen) = (key(&o), observe(&o));
                let before = entries.get(&k).copied();
                relist.get_or_insert_with(HashMap::new).insert(k, seen);
                (before != Some(seen)).then_some(o)
            }
            watcher::Event::InitDone => {
                if let Some(fresh) = relist.take() {
                    *entries = fresh;
                }
                None
            }
        }
    }

    /// Number of children indexed.
    pub fn count(&self) -> usize {
        match self.entries.read() {
            Ok(m) => m.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }
}

/// `resourceVersion` as [`Observed`] (ServiceAccounts, ConfigMaps, Services).
pub fn observe_resource_version<K: Resource>(o: &K) -> Observed {
    Observed {
        version: version_hash(o.meta().resource_version.as_deref().unwrap_or_default()),
        rollout: None,
    }
}

/// `generation` and rollout counts as [`Observed`], from a DaemonSet an apply returned.
pub fn observe_daemon_set(ds: &DaemonSet) -> Observed {
    let status = ds
        .status
        .as_ref()
        .map(|s| SlimStatus {
            desired_number_scheduled: s.desired_number_scheduled,
            number_ready: s.number_ready,
            updated_number_scheduled: s.updated_number_scheduled,
            observed_generation: s.observed_generation,
        })
        .unwrap_or_default();
    observed_rollout(ds.metadata.generation, &status)
}

/// `generation` and rollout counts as [`Observed`], from the DaemonSet watch.
pub fn observe_watched_daemon_set(ds: &Slim<DaemonSet>) -> Observed {
    observed_rollout(
        ds.metadata.generation,
        ds.status.as_ref().unwrap_or(&SlimStatus::default()),
    )
}

// A DaemonSet's spec version is its generation: status updates (every Pod that turns
// Ready) change the resourceVersion but not what we applied.
fn observed_rollout(generation: Option<i64>, s: &SlimStatus) -> Observed {
    let generation = generation.unwrap_or_default();
    Observed {
        version: version_hash(&generation.to_string()),
        rollout: Some(Rollout {
            desired: s.desired_number_scheduled,
            ready: s.number_ready,
            updated: s.updated_number_scheduled.unwrap_or(0),
            // Counts are about the current spec only once its controller has seen it.
            observed: s.observed_generation.unwrap_or(0) >= generation,
        }),
    }
}

/// The indexes of the agent children (label `app.kubernetes.io/managed-by=fabricwatch-operator`).
#[derive(Debug)]
pub struct ChildIndexes {
    /// ServiceAccounts.
    pub service_accounts: ChildIndex,
    /// ConfigMaps.
    pub config_maps: ChildIndex,
    /// Services.
    pub services: ChildIndex,
    /// DaemonSets.
    pub daemon_sets: ChildIndex,
}

impl Default for ChildIndexes {
    fn default() -> Self {
        Self {
            service_accounts: ChildIndex::new("ServiceAccount"),
            config_maps: ChildIndex::new("ConfigMap"),
            services: ChildIndex::new("Service"),
            daemon_sets: ChildIndex::new("DaemonSet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(hash: u64, version: &str, at: Instant) -> Applied {
        Applied {
            hash,
            version: version_hash(version),
            at,
        }
    }

    #[test]
    fn skips_only_the_same_object_at_the_same_version_recently() {
        let t0 = Instant::now();
        let last = applied(7, "42", t0);
        let soon = t0 + Duration::from_secs(10);
        assert!(is_current(Some(&last), 7, Some(version_hash("42")), soon));
        // Desired object changed (spec edit, new operator settings).
        assert!(!is_current(Some(&last), 8, Some(version_hash("42")), soon));
        // Someone changed the child (drift) or it is mid-update.
        assert!(!is_current(Some(&last), 7, Some(version_hash("43")), soon));
        // Deleted (or not yet in the watch cache).
        assert!(!is_current(Some(&last), 7, None, soon));
        // Never applied by this process (fresh start).
        assert!(!is_current(None, 7, Some(version_hash("42")), soon));
        // Periodic re-apply.
        assert!(!is_current(
            Some(&last),
            7,
            Some(version_hash("42")),
            t0 + REAPPLY_AFTER
        ));
    }

    #[test]
    fn ledger_records_and_prunes() {
        let l = Ledger::default();
        let t0 = Instant::now();
        let k = child_key("ConfigMap", "ns", "a");
        assert_ne!(k, child_key("ConfigMap", "ns", "b"));
        assert_ne!(k, child_key("Service", "ns", "a"));
        assert!(!l.is_current(&k, 1, Some(version_hash("5")), t0));
        l.record(k, applied(1, "5", t0));
        assert!(l.is_current(&k, 1, Some(version_hash("5")), t0));
        l.record(
            child_key("ConfigMap", "ns", "b"),
            applied(1, "9", t0 + Duration::from_secs(200)),
        );
        l.prune(t0 + REAPPLY_AFTER);
        assert_eq!(l.len(), 1);
        assert!(!l.is_current(&k, 1, Some(version_hash("5")), t0 + REAPPLY_AFTER));
    }

    #[test]
    fn hash_follows_the_serialized_object() {
        let a = serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let b = serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "w"}});
        assert_eq!(desired_hash(&a), desired_hash(&a.clone()));
        assert_ne!(desired_hash(&a), desired_hash(&b));
    }

    fn ds(generation: i64, observed: i64, desired: i32, ready: i32) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "fabric-agent", "namespace": "ns", "generation": generation},
            "spec": {"selector": {}, "template": {}},
            "status": {"desiredNumberScheduled": desired, "numberReady": ready,
                       "updatedNumberScheduled": ready, "observedGeneration": observed,
                       "currentNumberScheduled": desired, "numberMisscheduled": 0}
        }))
        .expect("valid DaemonSet")
    }

    #[test]
    fn index_follows_watch_events_and_relists() {
        let idx = ChildIndex::new("DaemonSet");
        let touched = |e| idx.apply(e, observe_daemon_set).is_some();
        assert!(
            touched(watcher::Event::Apply(ds(2, 1, 3, 0))),
            "new: touched"
        );
        let o = idx.get("ns", "fabric-agent").expect("indexed");
        assert_eq!(o.version, version_hash("2"));
        assert_eq!(
            o.rollout,
            Some(Rollout {
                desired: 3,
                ready: 0,
                updated: 0,
                observed: false
            })
        );
        assert!(
            !touched(watcher::Event::Apply(ds(2, 1, 3, 0))),
            "same view: quiet"
        );
        // Status moves, generation does not: same version, new counts.
        assert!(touched(watcher::Event::Apply(ds(2, 2, 3, 3))));
        let o = idx.get("ns", "fabric-agent").expect("indexed");
        assert_eq!(o.version, version_hash("2"));
        assert!(o.rollout.is_some_and(|r| r.observed && r.ready == 3));
        assert!(idx.get("other", "fabric-agent").is_none());
        assert!(
            touched(watcher::Event::Delete(ds(2, 2, 3, 3))),
            "deleted: touched"
        );
        assert_eq!(idx.count(), 0);
        // A relist replaces everything at InitDone (a child deleted meanwhile is gone) and
        // touches only what differs from the index.
        assert!(touched(watcher::Event::Apply(ds(1, 1, 1, 1))));
        assert!(!touched(watcher::Event::<DaemonSet>::Init));
        assert_eq!(idx.count(), 1, "kept until the relist completes");
        assert!(!touched(watcher::Event::<DaemonSet>::InitDone));
        assert_eq!(idx.count(), 0);
        assert!(touched(watcher::Event::Apply(ds(1, 1, 1, 1))));
        assert!(!touched(watcher::Event::<DaemonSet>::Init));
        assert!(
            !touched(watcher::Event::InitApply(ds(1, 1, 1, 1))),
            "unchanged"
        );
        assert!(
            touched(watcher::Event::InitApply(ds(2, 1, 1, 1))),
            "changed"
        );
        assert!(!touched(watcher::Event::<DaemonSet>::InitDone));
        assert_eq!(
            idx.get("ns", "fabric-agent").map(|o| o.version),
            Some(version_hash("2"))
        );
    }

    #[test]
    fn watched_and_applied_daemon_sets_give_the_same_view() {
        let full = ds(4, 3, 5, 2);
        let slim: Slim<DaemonSet> =
            serde_json::from_value(serde_json::to_value(&full).expect("serializes"))
                .expect("parses");
        assert_eq!(observe_watched_daemon_set(&slim), observe_daemon_set(&full));
        assert!(observe_daemon_set(&full)
            .rollout
            .is_some_and(|r| !r.observed));
    }

    #[test]
    fn resource_version_is_the_version_of_other_kinds() {
        let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "77"}}),
        )
        .expect("valid ConfigMap");
        let idx = ChildIndex::new("ConfigMap");
        idx.apply(watcher::Event::InitApply(cm), observe_resource_version);
        assert!(idx.get("ns", "a").is_none(), "not before InitDone");
        idx.apply(
            watcher::Event::<k8s_openapi::api::core::v1::ConfigMap>::InitDone,
            observe_resource_version,
        );
        assert_eq!(
            idx.get("ns", "a"),
            Some(Observed {
                version: version_hash("77"),
                rollout: None
            })
        );
    }
}
