//! Kubernetes edge: reflectors for MonitorTargets, AlertRules, Nodes and agent Pods, the
//! [`Catalog`] over them, and the [`StatusWriter`] that server-side applies MonitorTarget
//! and AlertRule status (projected and change-keyed in [`crate::status`]) and publishes
//! suspect Events.

use std::{sync::Arc, time::Duration, time::Instant};

use chrono::{DateTime, Utc};
use fabricwatch_common::status_patch::apply_status;
use fabricwatch_crds::{
    alert_rule::AlertRuleStatus, monitor_target::MonitorTargetStatus, AlertRule, MonitorTarget,
    FIELD_MANAGER_ANALYTICS,
};
use fabricwatch_proto::ObjectRef;
use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Node, Pod},
    NamespaceResourceScope,
};
use kube::{
    api::Api,
    runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter},
    runtime::{
        reflector::{self, ObjectRef as KubeRef, Store},
        watcher, WatchStreamExt,
    },
    Client, Resource,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    evaluator::{RuleInput, RuleReport},
    fleet::{SuspectChange, TargetConfig, TargetView},
    metrics::Metrics,
    rules::{accepted, object_ref, recorded_firing, rule_spec, target_config},
    state::Catalog,
    status::{rule_status, target_status, ChangeKey, WriteSchedule},
};

/// Caches of the watched objects.
#[derive(Clone)]
pub struct Stores {
    /// MonitorTargets, all namespaces.
    pub targets: Store<MonitorTarget>,
    /// AlertRules, all namespaces.
    pub rules: Store<AlertRule>,
    /// Nodes (for `topologyKey` labels).
    pub nodes: Store<Node>,
    /// Agent Pods of every target (label `app.kubernetes.io/name=fabricwatch-agent`), to bind
    /// a report to the node of the Pod its token was issued to.
    pub agent_pods: Store<Pod>,
}

fn spawn_reflector<K>(api: Api<K>, what: &'static str, config: watcher::Config) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(what, "watch error (retrying): {e}");
            }
        }
    });
    reader
}

impl Stores {
    /// Starts the four reflectors and waits until each has listed once.
    ///
    /// # Errors
    /// When a reflector stops before its first list.
    pub async fn start(client: Client) -> anyhow::Result<Self> {
        let all = watcher::Config::default;
        let s = Self {
            targets: spawn_reflector(
                Api::<MonitorTarget>::all(client.clone()),
                "monitortargets",
                all(),
            ),
            rules: spawn_reflector(Api::<AlertRule>::all(client.clone()), "alertrules", all()),
            nodes: spawn_reflector(Api::<Node>::all(client.clone()), "nodes", all()),
            // Only the agents' Pods: a label-selected watch stays small in big clusters.
            agent_pods: spawn_reflector(
                Api::<Pod>::all(client),
                "agent pods",
                all().labels(&format!(
                    "app.kubernetes.io/name={}",
                    fabricwatch_crds::names::AGENT_APP
                )),
            ),
        };
        for (what, ready) in [
            ("monitortargets", s.targets.wait_until_ready().await.is_ok()),
            ("alertrules", s.rules.wait_until_ready().await.is_ok()),
            ("nodes", s.nodes.wait_until_ready().await.is_ok()),
            ("agent pods", s.agent_pods.wait_until_ready().await.is_ok()),
        ] {
            if !ready {
                anyhow::bail!("the {what} watch stopped before listing");
            }
        }
        Ok(s)
    }

    /// Every MonitorTarget with its settings.
    pub fn target_configs(&self) -> Vec<(ObjectRef, TargetConfig)> {
        self.targets
            .state()
            .iter()
            .map(|t| (object_ref(&t.metadata), target_config(t)))
            .collect()
    }

    /// The graded Node conditions of every Node.
    pub fn node_conditions(
        &self,
    ) -> std::collections::BTreeMap<String, crate::node_conditions::NodeConditions> {
        self.nodes
            .state()
            .iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, node_conditions(n))))
            .collect()
    }

    /// Every AlertRule the operator has not refused, parsed.
    pub fn rule_inputs(&self) -> Vec<RuleInput> {
        self.rules
            .state()
            .iter()
            .filter(|r| accepted(r))
            .map(|r| RuleInput {
                rule: object_ref(&r.metadata),
                spec: rule_spec(r),
                recorded_firing: recorded_firing(r),
                generation: r.metadata.generation,
            })
            .collect()
    }
}

impl Catalog for Stores {
    fn target(&self, t: &ObjectRef) -> Option<TargetConfig> {
        self.targets
            .get(&KubeRef::new(&t.name).within(&t.namespace))
            .map(|m| target_config(&m))
    }
    fn node_label(&self, node: &str, key: &str) -> Option<String> {
        self.nodes
            .get(&KubeRef::new(node))?
            .metadata
            .labels
            .as_ref()?
            .get(key)
            .cloned()
    }
    fn pod_node(&self, namespace: &str, pod: &str, uid: Option<&str>) -> Option<String> {
        let p = self.agent_pods.get(&KubeRef::new(pod).within(namespace))?;
        if uid.is_some() && p.metadata.uid.as_deref() != uid {
            return None; // a new Pod under the old name: the token belongs to the old one
        }
        p.spec.as_ref()?.node_name.clone()
    }
}

/// The Node conditions analytics grades, from a Node object.
pub fn node_conditions(n: &Node) -> crate::node_conditions::NodeConditions {
    let cond = |t: &str| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .map(|c| c.status.as_str())
    };
    crate::node_conditions::NodeConditions {
        // Absent Ready (a Node just registered) is not NotReady.
        not_ready: matches!(cond("Ready"), Some("False") | Some("Unknown")),
        network_unavailable: cond("NetworkUnavailable") == Some("True"),
        memory_pressure: cond("MemoryPressure") == Some("True"),
        disk_pressure: cond("DiskPressure") == Some("True"),
        pid_pressure: cond("PIDPressure") == Some("True"),
        cordoned: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
    }
}

/// A kind whose status analytics writes, and where that status sits in its objects.
trait WithStatus:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
{
    /// The status type.
    type Status: ChangeKey + Serialize;
    /// The object's status, when it has one.
    fn status(&self) -> Option<&Self::Status>;
}

impl WithStatus for MonitorTarget {
    type Status = MonitorTargetStatus;
    fn status(&self) -> Option<&MonitorTargetStatus> {
        self.status.as_ref()
    }
}

impl WithStatus for AlertRule {
    type Status = AlertRuleStatus;
    fn status(&self) -> Option<&AlertRuleStatus> {
        self.status.as_ref()
    }
}

/// The change key of `K`'s status.
type KeyOf<K> = <<K as WithStatus>::Status as ChangeKey>::Key;

/// Applies status with server-side apply (field manager [`FIELD_MANAGER_ANALYTICS`]) when a
/// [`WriteSchedule`] says it is due: the typed change key differs from both what is in the
/// cluster and what was last written, at most once per object per `min_interval`, plus a
/// refresh every `heartbeat` so moving timestamps and values do not go stale forever.
pub struct StatusWriter {
    client: Client,
    stores: Stores,
    metrics: Metrics,
    targets: WriteSchedule<KeyOf<MonitorTarget>>,
    rules: WriteSchedule<KeyOf<AlertRule>>,
    recorder: Recorder,
}

impl StatusWriter {
    /// A writer.
    pub fn new(
        client: Client,
        stores: Stores,
        metrics: Metrics,
        min_interval: Duration,
        heartbeat: Duration,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER_ANALYTICS.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Self {
            client,
            stores,
            metrics,
            targets: WriteSchedule::new(min_interval, heartbeat),
            rules: WriteSchedule::new(min_interval, heartbeat),
            recorder,
        }
    }

    /// Publishes a Kubernetes Event on the MonitorTarget for every suspect that appeared
    /// (Warning `SuspectAppeared`) or cleared (Normal `SuspectCleared`).
    pub async fn suspect_events(&self, changes: &[SuspectChange]) {
        for c in changes {
            let (target, type_, reason, note) = match c {
                SuspectChange::Appeared(t, s) => (
                    t,
                    EventType::Warning,
                    "SuspectAppeared",
                    format!("{} ({:?}): {}", s.name, s.suspect.cause, s.suspect.evidence),
                ),
                SuspectChange::Cleared(t, name) => (
                    t,
                    EventType::Normal,
                    "SuspectCleared",
                    format!("{name} is no longer a suspect"),
                ),
            };
            let Some(obj) = self
                .stores
                .targets
                .get(&KubeRef::new(&target.name).within(&target.namespace))
            else {
                continue;
            };
            let ev = KubeEvent {
                type_,
                reason: reason.into(),
                note: Some(note.chars().take(1000).collect()),
                action: "Localize".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
                tracing::warn!(target = %target, "publishing Event failed: {e}");
            }
        }
    }

    /// Publishes a Kubernetes Event `AlertStateChanged` on the AlertRule for every change:
    /// Warning when an alert fires, Normal when it resolves or someone silences or
    /// acknowledges it (`kubectl describe alertrule` then shows who and when).
    pub async fn rule_events(&self, changes: &[crate::evaluator::StateChange]) {
        for c in changes {
            let Some(obj) = self
                .stores
                .rules
                .get(&KubeRef::new(&c.rule.name).within(&c.rule.namespace))
            else {
                continue;
            };
            let ev = KubeEvent {
                type_: if c.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: "AlertStateChanged".into(),
                note: Some(c.text.chars().take(1000).collect()),
                action: "Evaluate".into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
                tracing::warn!(rule = %c.rule, "publishing Event failed: {e}");
            }
        }
    }

    /// Writes the status of each target in `views` that is due.
    pub async fn write_targets(&mut self, views: &[TargetView], now: DateTime<Utc>) {
        let out = StatusApi {
            client: &self.client,
            metrics: &self.metrics,
        };
        let project = |v: &TargetView, t: &MonitorTarget| {
            let prev = t.status.as_ref().map(|s| s.conditions.as_slice());
            target_status(v, t.metadata.generation, prev.unwrap_or_default(), now)
        };
        out.write_due(
            &self.stores.targets,
            &mut self.targets,
            views,
            |v| &v.target,
            project,
        )
        .await;
    }

    /// Writes the status of each rule in `reports` that is due.
    pub async fn write_rules(&mut self, reports: &[RuleReport], now: DateTime<Utc>) {
        let out = StatusApi {
            client: &self.client,
            metrics: &self.metrics,
        };
        let project = |r: &RuleReport, a: &AlertRule| {
            let prev = a.status.as_ref().map(|s| s.conditions.as_slice());
            rule_status(r, prev.unwrap_or_default(), now)
        };
        out.write_due(
            &self.stores.rules,
            &mut self.rules,
            reports,
            |r| &r.rule,
            project,
        )
        .await;
    }
}

/// Where status goes: the API server, counted in `status_writes`.
struct StatusApi<'a> {
    client: &'a Client,
    metrics: &'a Metrics,
}

impl StatusApi<'_> {
    /// The one write path of both kinds: for each of `items` whose object (`object(item)`)
    /// is still in `store`, projects its status (`project(item, current object)`), applies
    /// it when `schedule` says it is due, and then forgets objects no longer listed.
    async fn write_due<K: WithStatus, T>(
        &self,
        store: &Store<K>,
        schedule: &mut WriteSchedule<KeyOf<K>>,
        items: &[T],
        object: impl Fn(&T) -> &ObjectRef,
        project: impl Fn(&T, &K) -> K::Status,
    ) {
        for item in items {
            let obj = object(item);
            let Some(current) = store.get(&KubeRef::new(&obj.name).within(&obj.namespace)) else {
                continue;
            };
            let status = project(item, &current);
            let key = status.change_key();
            let in_cluster = current.status().map(ChangeKey::change_key);
            if !schedule.due(obj, &key, in_cluster.as_ref(), Instant::now()) {
                continue;
            }
            if self.apply::<K>(obj, &status).await {
                schedule.written(obj.clone(), key, Instant::now());
            } else {
                schedule.failed(obj.clone(), Instant::now());
            }
        }
        schedule.retain(items.iter().map(object));
    }

    /// Applies `status` to `obj`; counts and logs the outcome. `true` when applied.
    async fn apply<K: WithStatus>(&self, obj: &ObjectRef, status: &K::Status) -> bool {
        let kind = K::kind(&());
        let kind: &str = &kind;
        let api: Api<K> = Api::namespaced(self.client.clone(), &obj.namespace);
        match apply_status(&api, &obj.name, FIELD_MANAGER_ANALYTICS, status).await {
            Ok(_) => {
                self.metrics
                    .status_writes
                    .with_label_values(&[kind, "applied"])
                    .inc();
                true
            }
            Err(e) => {
                self.metrics
                    .status_writes
                    .with_label_values(&[kind, "failed"])
                    .inc();
                tracing::warn!(%obj, kind, "status apply failed: {e}");
                false
            }
        }
    }
}

/// Shares the stores as the ingest catalog.
pub fn catalog(stores: &Stores) -> Arc<dyn Catalog> {
    Arc::new(stores.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_conditions_from_a_node() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "fw-n2"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "PIDPressure", "status": "True"}
            ]}
        }))
        .expect("node");
        let c = node_conditions(&n);
        assert!(c.not_ready && c.pid_pressure && c.cordoned);
        assert!(!c.memory_pressure && !c.network_unavailable);
    }

    #[test]
    fn status_bodies_carry_the_crd_api_version_and_kind() {
        use fabricwatch_common::status_patch::body;
        let t = body::<MonitorTarget>(&MonitorTargetStatus::default());
        let r = body::<AlertRule>(&AlertRuleStatus::default());
        assert_eq!(
            (&t["apiVersion"], &t["kind"]),
            (
                &json!(fabricwatch_crds::API_VERSION),
                &json!("MonitorTarget")
            )
        );
        assert_eq!(
            (&r["apiVersion"], &r["kind"]),
            (&json!(fabricwatch_crds::API_VERSION), &json!("AlertRule"))
        );
    }
}
