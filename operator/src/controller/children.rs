//! What the controller knows of the children it applied, so that a reconcile whose desired
//! children are already in place sends no request at all.
//!
//! A server-side apply that changes nothing is not free: the API server decodes, merges and
//! compares the whole object, and every MonitorTarget has four children. Without this, a
//! target is re-applied on every trigger (its DaemonSet's status moving, a resync), which at
//! 1,000 targets is most of the controller's traffic.
//!
//! The rule ([`Ledger::is_current`]): a child is skipped when the last apply of this process
//! sent the same desired object (same hash), the watch cache shows the object at the version
//! that apply produced, and that apply is younger than [`REAPPLY_AFTER`]. Otherwise it is
//! applied. The version is `metadata.generation` for DaemonSets (their status changes all
//! the time, their spec only when someone edits it) and `metadata.resourceVersion` for the
//! others. So: a spec change, a deleted child, an edited child (drift) or a restarted
//! controller (empty ledger) all lead to an apply; the periodic re-apply bounds what the
//! version cannot see (a label-only edit of a DaemonSet does not bump its generation).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{store, ObjectRef, Store};
use serde::Serialize;

/// Longest time a child goes without being applied again while its target is reconciled
/// (matches the converged target's resync period).
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
        observed: Option<&str>,
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
pub fn is_current(last: Option<&Applied>, hash: u64, observed: Option<&str>, now: Instant) -> bool {
    match (last, observed) {
        (Some(last), Some(observed)) => {
            last.hash == hash
                && last.version == version_hash(observed)
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

/// Watch caches of the agent children (label `app.kubernetes.io/managed-by=fabricwatch-operator`).
/// Metadata only, except the DaemonSet, whose status the Ready condition reads; its pod
/// template is dropped on the way in (see [`strip_daemon_set`]).
#[derive(Clone)]
pub struct ChildStores {
    /// ServiceAccounts (metadata).
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    /// ConfigMaps (metadata).
    pub config_maps: Store<PartialObjectMeta<ConfigMap>>,
    /// Services (metadata).
    pub services: Store<PartialObjectMeta<Service>>,
    /// DaemonSets without pod template and managed fields.
    pub daemon_sets: Store<DaemonSet>,
}

impl ChildStores {
    /// `resourceVersion` of a metadata-cached child.
    pub fn resource_version<K>(
        store: &Store<PartialObjectMeta<K>>,
        ns: &str,
        name: &str,
    ) -> Option<String>
    where
        K: kube::Resource<DynamicType = ()> + Clone,
        PartialObjectMeta<K>: kube::Resource<DynamicType = ()> + Clone,
    {
        store
            .get(&ObjectRef::new(name).within(ns))
            .and_then(|o| o.metadata.resource_version.clone())
    }

    /// The cached DaemonSet.
    pub fn daemon_set(&self, ns: &str, name: &str) -> Option<std::sync::Arc<DaemonSet>> {
        self.daemon_sets.get(&ObjectRef::new(name).within(ns))
    }
}

/// The writing halves of [`ChildStores`], fed by the controller's child watches.
pub struct ChildWriters {
    /// Feeds [`ChildStores::service_accounts`].
    pub service_accounts: Writer<PartialObjectMeta<ServiceAccount>>,
    /// Feeds [`ChildStores::config_maps`].
    pub config_maps: Writer<PartialObjectMeta<ConfigMap>>,
    /// Feeds [`ChildStores::services`].
    pub services: Writer<PartialObjectMeta<Service>>,
    /// Feeds [`ChildStores::daemon_sets`].
    pub daemon_sets: Writer<DaemonSet>,
}

impl ChildWriters {
    /// Empty stores and their writers.
    pub fn new() -> (ChildStores, Self) {
        let (sa, sa_w) = store();
        let (cm, cm_w) = store();
        let (svc, svc_w) = store();
        let (ds, ds_w) = store();
        (
            ChildStores {
                service_accounts: sa,
                config_maps: cm,
                services: svc,
                daemon_sets: ds,
            },
            Self {
                service_accounts: sa_w,
                config_maps: cm_w,
                services: svc_w,
                daemon_sets: ds_w,
            },
        )
    }
}

/// `metadata.generation` as the ledger's version string.
pub fn generation_version(generation: Option<i64>) -> Option<String> {
    generation.map(|g| g.to_string())
}

/// Drops what the controller never reads from a cached DaemonSet (the pod template is most
/// of its size; managed fields are the rest).
pub fn strip_daemon_set(ds: &mut DaemonSet) {
    ds.metadata.managed_fields = None;
    if let Some(spec) = ds.spec.as_mut() {
        spec.template = Default::default();
    }
}

/// Drops managed fields from a cached object's metadata.
pub fn strip_meta<K>(obj: &mut PartialObjectMeta<K>) {
    obj.metadata.managed_fields = None;
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
        assert!(is_current(Some(&last), 7, Some("42"), soon));
        // Desired object changed (spec edit, new operator settings).
        assert!(!is_current(Some(&last), 8, Some("42"), soon));
        // Someone changed the child (drift) or it is mid-update.
        assert!(!is_current(Some(&last), 7, Some("43"), soon));
        // Deleted (or not yet in the watch cache).
        assert!(!is_current(Some(&last), 7, None, soon));
        // Never applied by this process (fresh start).
        assert!(!is_current(None, 7, Some("42"), soon));
        // Periodic re-apply.
        assert!(!is_current(Some(&last), 7, Some("42"), t0 + REAPPLY_AFTER));
    }

    #[test]
    fn ledger_records_and_prunes() {
        let l = Ledger::default();
        let t0 = Instant::now();
        let k = child_key("ConfigMap", "ns", "a");
        assert_ne!(k, child_key("ConfigMap", "ns", "b"));
        assert_ne!(k, child_key("Service", "ns", "a"));
        assert!(!l.is_current(&k, 1, Some("5"), t0));
        l.record(k.clone(), applied(1, "5", t0));
        assert!(l.is_current(&k, 1, Some("5"), t0));
        l.record(
            child_key("ConfigMap", "ns", "b"),
            applied(1, "9", t0 + Duration::from_secs(200)),
        );
        l.prune(t0 + REAPPLY_AFTER);
        assert_eq!(l.len(), 1);
        assert!(!l.is_current(&k, 1, Some("5"), t0 + REAPPLY_AFTER));
    }

    #[test]
    fn hash_follows_the_serialized_object() {
        let a = serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let b = serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "w"}});
        assert_eq!(desired_hash(&a), desired_hash(&a.clone()));
        assert_ne!(desired_hash(&a), desired_hash(&b));
    }

    #[test]
    fn stripping_keeps_status_and_generation() {
        let mut ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 3, "managedFields": [{"manager": "m"}]},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "numberReady": 1, "currentNumberScheduled": 2, "numberMisscheduled": 0}
        }))
        .expect("valid DaemonSet");
        strip_daemon_set(&mut ds);
        assert!(ds.metadata.managed_fields.is_none());
        assert_eq!(ds.metadata.generation, Some(3));
        assert!(ds.spec.as_ref().is_some_and(|s| s.template.spec.is_none()));
        assert_eq!(
            ds.status.as_ref().map(|s| s.desired_number_scheduled),
            Some(2)
        );
    }
}
