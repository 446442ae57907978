//! Server-side apply of children with the operator's field manager.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use std::time::Instant;

use super::cache::children;
use super::context::Context;
use super::error::Error;
use fabricwatch_crds::FIELD_MANAGER_OPERATOR;

/// Patch parameters of every write: apply with the operator's field manager, forcing
/// ownership of the fields it sets (it is the only writer of its children).
pub fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER_OPERATOR).force()
}

/// Applies `obj` (which carries its name) through `api` and returns the object as stored.
///
/// # Errors
/// [`Error::Apply`] with the API error.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    apply_patch(api, &name, obj).await
}

/// Applies `patch`, an apply configuration of a `K` named `name` that is not a `K` itself
/// (e.g. one with explicit `null`s, which the typed object cannot carry), and returns the
/// object as stored.
///
/// # Errors
/// [`Error::Apply`] with the API error.
pub async fn apply_patch<K, P>(api: &Api<K>, name: &str, patch: &P) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    P: Serialize + Debug,
{
    api.patch(name, &params(), &Patch::Apply(patch))
        .await
        .map_err(|source| Error::Apply {
            kind: static_kind::<K>(),
            name: name.into(),
            source,
        })
}

/// Applies a child of a MonitorTarget unless [`children::Ledger`] says the same object is
/// already in place at `observed` (its version in the child's watch index; see
/// [`children`]). `observe` is the index's view of an object, applied to what the API server
/// returns so that the ledger records the version the watch will show. Returns that view
/// of the stored object when it applied, `None` when it skipped.
///
/// # Errors
/// [`Error::Apply`] with the API error.
pub async fn apply_child<K>(
    api: &Api<K>,
    obj: &K,
    ctx: &Context,
    observed: Option<u64>,
    observe: fn(&K) -> children::Observed,
) -> Result<Option<children::Observed>, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let kind = static_kind::<K>();
    let key = children::child_key(
        kind,
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default(),
    );
    let hash = children::desired_hash(obj);
    if ctx.ledger.is_current(&key, hash, observed, Instant::now()) {
        ctx.metrics
            .child_applies
            .with_label_values(&[kind, "skipped"])
            .inc();
        return Ok(None);
    }
    let stored = observe(&apply(api, obj).await?);
    ctx.metrics
        .child_applies
        .with_label_values(&[kind, "applied"])
        .inc();
    ctx.ledger.record(
        key,
        children::Applied {
            hash,
            version: stored.version,
            at: Instant::now(),
        },
    );
    Ok(Some(stored))
}

fn static_kind<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "ConfigMap" => "ConfigMap",
        "DaemonSet" => "DaemonSet",
        "Service" => "Service",
        "ServiceAccount" => "ServiceAccount",
        "Deployment" => "Deployment",
        _ => "object",
    }
}

/// `monitoring.coreos.com/v1` PodMonitor.
pub fn pod_monitor_resource() -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "PodMonitor".into(),
        plural: "podmonitors".into(),
    }
}

/// `monitoring.coreos.com/v1` PrometheusRule.
pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "PrometheusRule".into(),
        plural: "prometheusrules".into(),
    }
}

/// Applies an untyped object (`metadata.name` inside `obj`).
///
/// # Errors
/// [`Error::Apply`] with the API error.
pub async fn apply_dynamic(
    api: &Api<DynamicObject>,
    kind: &'static str,
    obj: &Value,
) -> Result<(), Error> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    api.patch(&name, &params(), &Patch::Apply(obj))
        .await
        .map(|_| ())
        .map_err(|source| Error::Apply { kind, name, source })
}

/// Deletes `name` if it exists.
///
/// # Errors
/// [`Error::Apply`] for any API error but "not found".
pub async fn delete_if_present(
    api: &Api<DynamicObject>,
    kind: &'static str,
    name: &str,
) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Apply {
            kind,
            name: name.into(),
            source,
        }),
    }
}
