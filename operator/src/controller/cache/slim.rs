//! Watched objects reduced to what the controller reads.
//!
//! Child watches (and the AlertRule/AIAnalysis controllers' watches of the objects they
//! reference) only need names, owners, versions and — for DaemonSets — rollout counts.
//! Deserializing the full objects costs most in `metadata.managedFields`, a tree of
//! `serde_json::Value` maps per object: listing 1,000 agent DaemonSets at start-up peaked
//! at 55 MiB of heap, 29 MiB of it those maps, and the allocator kept much of it
//! (BENCHMARKS.md). [`Slim<K>`] reads the same JSON, keeps the fields below and lets
//! serde skip the rest without allocating. kube's `PartialObjectMeta` (metadata-only
//! watches) would still parse the managed fields.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::Deserialize;

/// An object of kind `K` as the API server sends it, reduced to: `metadata.name`,
/// `namespace`, `uid`, `resourceVersion`, `generation`, `ownerReferences`, and the
/// rollout counts of [`SlimStatus`] (present for kinds whose status has them, i.e.
/// DaemonSets). Its API path and kind are `K`'s.
#[derive(Debug, Deserialize)]
#[serde(from = "Wire", bound = "")]
pub struct Slim<K> {
    /// The kept metadata fields; everything else is `None`.
    pub metadata: ObjectMeta,
    /// The rollout counts, when the object has a `status`.
    pub status: Option<SlimStatus>,
    kind: PhantomData<fn() -> K>,
}

// Manual: a derive would ask for `K: Clone`, which the marker does not need.
impl<K> Clone for Slim<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            status: self.status.clone(),
            kind: PhantomData,
        }
    }
}

/// The DaemonSet status counts the Ready condition is built from (`apps/v1`
/// `DaemonSetStatus`); all zero/`None` for kinds without them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SlimStatus {
    /// `desiredNumberScheduled`: nodes that should run the Pod.
    pub desired_number_scheduled: i32,
    /// `numberReady`: nodes whose Pod is Ready.
    pub number_ready: i32,
    /// `updatedNumberScheduled`: nodes running the current template.
    pub updated_number_scheduled: Option<i32>,
    /// `observedGeneration`: the spec generation the DaemonSet controller has seen.
    pub observed_generation: Option<i64>,
}

#[derive(Deserialize)]
struct Wire {
    metadata: WireMeta,
    #[serde(default)]
    status: Option<SlimStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    owner_references: Option<Vec<OwnerReference>>,
}

impl<K> From<Wire> for Slim<K> {
    fn from(w: Wire) -> Self {
        let m = w.metadata;
        Self {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                generation: m.generation,
                owner_references: m.owner_references,
                ..ObjectMeta::default()
            },
            status: w.status,
            kind: PhantomData,
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Slim<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn keeps_identity_owners_and_counts_and_drops_the_rest() {
        let json = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {
                "name": "fabric-agent", "namespace": "ns", "uid": "u1",
                "resourceVersion": "42", "generation": 3,
                "labels": {"a": "b"},
                "ownerReferences": [{"apiVersion": "fabricwatch.io/v1alpha1",
                    "kind": "MonitorTarget", "name": "fabric", "uid": "u0", "controller": true}],
                "managedFields": [{"manager": "fabricwatch-operator", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {}}}}]
            },
            "spec": {"selector": {}, "template": {}},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "observedGeneration": 3,
                       "currentNumberScheduled": 3, "numberMisscheduled": 0}
        });
        let ds: Slim<DaemonSet> = serde_json::from_value(json).expect("parses");
        assert_eq!(ds.metadata.name.as_deref(), Some("fabric-agent"));
        assert_eq!(ds.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(ds.metadata.generation, Some(3));
        assert!(ds.metadata.managed_fields.is_none());
        assert!(ds.metadata.labels.is_none());
        let owner = &ds.metadata.owner_references.as_ref().expect("owners")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("MonitorTarget", Some(true))
        );
        assert_eq!(
            ds.status,
            Some(SlimStatus {
                desired_number_scheduled: 3,
                number_ready: 2,
                updated_number_scheduled: Some(3),
                observed_generation: Some(3)
            })
        );
    }

    #[test]
    fn api_path_and_kind_are_the_wrapped_kinds() {
        assert_eq!(Slim::<DaemonSet>::kind(&()), "DaemonSet");
        assert_eq!(Slim::<DaemonSet>::api_version(&()), "apps/v1");
        assert_eq!(Slim::<DaemonSet>::plural(&()), "daemonsets");
        assert_eq!(
            Slim::<ConfigMap>::url_path(&(), Some("ns")),
            ConfigMap::url_path(&(), Some("ns"))
        );
        let cm: Slim<ConfigMap> = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
        )
        .expect("parses");
        assert!(cm.status.is_none());
    }

    #[test]
    fn missing_metadata_is_an_error_not_a_default() {
        assert!(
            serde_json::from_value::<Slim<ConfigMap>>(serde_json::json!({"data": {}})).is_err()
        );
    }
}
