//! The watches that feed the controllers: what each kind's cache keeps, which changes
//! trigger a reconcile, and which owners or referrers a change of another object maps to.

use std::sync::Arc;

use fabricwatch_crds::ai_analysis::AnalysisTargetKind;
use fabricwatch_crds::{AIAnalysis, AlertRule};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{predicates, watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};

use super::cache::children::{self, ChildIndex, ChildIndexes, Observed};
use super::cache::slim::Slim;
use super::context::Context;

/// The cache and trigger of a reconciled kind. Objects are cached as `trim` leaves them
/// (see [`trim`](super::cache::trim): no managed fields, annotations or other components'
/// status), and trigger a reconcile only when their generation changes: status writes (the
/// controller's own, analytics', the notifier's) change nothing the reconcilers read.
pub(super) fn primary<K>(
    client: &Client,
    ns: Option<&str>,
    trim: fn(&mut K),
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = kube::runtime::reflector::store();
    let trigger = watcher(scoped::<K>(client, ns), watcher::Config::default())
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    (store, trigger)
}

/// A child watch that keeps its kind's index ([`ChildIndex`]) up to date (with backoff on
/// watch errors) and yields the children whose indexed view changed, deletions included:
/// the owners to reconcile.
pub(super) fn indexed<K, S>(
    events: S,
    ctx: Arc<Context>,
    index: fn(&ChildIndexes) -> &ChildIndex,
    observe: fn(&K) -> Observed,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.default_backoff().filter_map(move |e| {
        let touched = match e {
            Ok(event) => index(&ctx.children).apply(event, observe).map(Ok),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(touched)
    })
}

/// A watch of an owned child kind reduced to its metadata ([`Slim`]), feeding its index
/// (only the `resourceVersion` is kept) and triggering the owners.
pub(super) fn metadata_child<K>(
    client: &Client,
    ns: Option<&str>,
    owned: &watcher::Config,
    ctx: &Arc<Context>,
    index: fn(&ChildIndexes) -> &ChildIndex,
) -> impl futures::Stream<Item = Result<Slim<K>, watcher::Error>> + Send + 'static
where
    // Only `K`'s API path and kind are used: the objects are `Slim<K>`.
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + std::fmt::Debug
        + 'static,
{
    indexed(
        watcher(scoped::<Slim<K>>(client, ns), owned.clone()),
        ctx.clone(),
        index,
        children::observe_resource_version,
    )
}

/// An `Api` over all namespaces, or over `ns` only.
pub(super) fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The AlertRules in `ns` whose `spec.targetRef` names the MonitorTarget `name`.
pub(super) fn targeting(
    store: &Store<AlertRule>,
    ns: Option<String>,
    name: &str,
) -> Vec<ObjectRef<AlertRule>> {
    store
        .state()
        .into_iter()
        .filter(|r| r.namespace() == ns && r.spec.target_ref.name == name)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The AIAnalyses in `ns` with a `spec.targetRefs` entry naming the `kind` object `name`.
pub(super) fn referencing(
    store: &Store<AIAnalysis>,
    ns: Option<String>,
    kind: AnalysisTargetKind,
    name: &str,
) -> Vec<ObjectRef<AIAnalysis>> {
    store
        .state()
        .into_iter()
        .filter(|a| {
            a.namespace() == ns
                && a.spec
                    .target_refs
                    .iter()
                    .any(|r| r.kind == kind && r.name == name)
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;

    fn analysis(ns: &str, name: &str, kind: &str, target: &str) -> AIAnalysis {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fabricwatch.io/v1alpha1", "kind": "AIAnalysis",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "targetRefs": [{"kind": kind, "name": target}],
                "trigger": {"onAlert": true, "minInterval": "10m"},
                "provider": {"type": "bedrock", "model": "m", "region": "us-east-1",
                    "maxTokens": 1024, "timeout": "30s"},
                "budget": {"dailyUsd": 5, "maxTokensPerRun": 20000,
                    "prices": {"inputPer1kTokens": 0.003, "outputPer1kTokens": 0.015}}
            }
        }))
        .expect("valid AIAnalysis")
    }

    fn rule(ns: &str, name: &str, target: &str) -> AlertRule {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fabricwatch.io/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"targetRef": {"name": target},
                     "metric": "ping_loss_percent", "operator": "gt", "threshold": 5}
        }))
        .expect("valid AlertRule")
    }

    fn names<K: Resource>(refs: Vec<ObjectRef<K>>) -> Vec<String>
    where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn analyses_are_found_by_kind_name_and_namespace() {
        let (reader, mut writer) = store::<AIAnalysis>();
        for a in [
            analysis("ns", "on-rule", "AlertRule", "fabric"),
            analysis("ns", "on-target", "MonitorTarget", "fabric"),
            analysis("other", "elsewhere", "MonitorTarget", "fabric"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(a));
        }
        let ns = || Some("ns".to_string());
        let found = |kind, name| names(referencing(&reader, ns(), kind, name));
        assert_eq!(
            found(AnalysisTargetKind::MonitorTarget, "fabric"),
            ["on-target"]
        );
        assert_eq!(found(AnalysisTargetKind::AlertRule, "fabric"), ["on-rule"]);
        assert!(found(AnalysisTargetKind::MonitorTarget, "other").is_empty());
    }

    #[test]
    fn rules_are_found_by_target_and_namespace() {
        let (reader, mut writer) = store::<AlertRule>();
        for r in [
            rule("ns", "a", "fabric"),
            rule("ns", "b", "fabric"),
            rule("ns", "c", "other"),
            rule("other", "d", "fabric"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(r));
        }
        assert_eq!(
            names(targeting(&reader, Some("ns".into()), "fabric")),
            ["a", "b"]
        );
    }
}
