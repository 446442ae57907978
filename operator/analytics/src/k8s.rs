//! Kubernetes edge: reflectors for MonitorTargets, AlertRules, Nodes and agent Pods, the [`Catalog`]
//! over them, and server-side apply of MonitorTarget and AlertRule status.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use fabricwatch_crds::{
    alert_rule::{AlertRuleStatus, AlertState},
    condition_types,
    monitor_target::{self as mt, MonitorTargetStatus},
    AlertRule, MonitorTarget, FIELD_MANAGER_ANALYTICS,
};
use fabricwatch_proto::ObjectRef;
use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Node, Pod},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    api::{Api, Patch, PatchParams},
    runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter},
    runtime::{
        reflector::{self, ObjectRef as KubeRef, Store},
        watcher, WatchStreamExt,
    },
    Client, Resource,
};
use serde_json::{json, Value};

use crate::{
    aianalysis::status::condition,
    alert::RuleState,
    evaluator::{RuleInput, RuleReport},
    fleet::{Problem, SuspectChange, TargetConfig, TargetView},
    health::Health,
    metrics::Metrics,
    rules::{
        accepted, firing_instance, object_ref, recorded_firing, rule_spec, target_config, to_time,
    },
    state::Catalog,
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
    /// Starts the three reflectors and waits until each has listed once.
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

/// Rounds to `digits` significant digits, so status does not churn on noise.
pub fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { 0.0 } else { x };
    }
    // Rust's float formatting rounds correctly in decimal; powers of ten in f64 do not.
    let d = digits.clamp(1, 17) as usize - 1;
    format!("{x:.d$e}").parse().unwrap_or(x)
}

/// Seconds for people with three significant digits in the unit that fits: `214µs`,
/// `1.25ms`, `2.5s` (SI prefixes; `µ` is U+00B5 as `kubectl` prints it back).
pub fn human_seconds(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return "-".into();
    }
    let (v, unit) = if x < 1e-3 {
        (x * 1e6, "µs")
    } else if x < 1.0 {
        (x * 1e3, "ms")
    } else {
        (x, "s")
    };
    let v = round_sig(v, 3);
    let mut s = format!("{v:.2}");
    while s.contains('.') && (s.ends_with('0') || s.ends_with('.')) {
        s.pop();
    }
    format!("{s}{unit}")
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

fn suspect_status(s: &crate::fleet::SuspectView) -> mt::Suspect {
    use crate::localize::{Cause, SuspectKind};
    let x = &s.suspect;
    mt::Suspect {
        name: s.name.chars().take(520).collect(),
        kind: match x.kind {
            SuspectKind::Node => mt::SuspectKind::Node,
            SuspectKind::Link => mt::SuspectKind::Link,
            SuspectKind::Domain => mt::SuspectKind::Domain,
        },
        node: x.node.clone(),
        nodes: x.nodes.iter().take(16).cloned().collect(),
        domain: x.domain.clone(),
        cause: match x.cause {
            Cause::Network => mt::SuspectCause::Network,
            Cause::Host => mt::SuspectCause::Host,
            Cause::Down => mt::SuspectCause::Down,
            Cause::Agent => mt::SuspectCause::Agent,
        },
        severity: severity(x.severity),
        confidence: round_sig(x.confidence, 2),
        evidence: x.evidence.chars().take(1024).collect(),
        problems: (s.problems > 0).then_some(s.problems as i32),
        since: Some(to_time(s.since)),
    }
}

fn severity(h: Health) -> fabricwatch_crds::Severity {
    match h {
        Health::Critical => fabricwatch_crds::Severity::Critical,
        Health::Warning => fabricwatch_crds::Severity::Warning,
        _ => fabricwatch_crds::Severity::Info,
    }
}

fn component(p: &Problem) -> mt::Component {
    match p.component.split('/').next() {
        Some("rdma") => mt::Component::Rdma,
        Some("ping") => mt::Component::Ping,
        Some("host") => mt::Component::Host,
        Some("endpoint") => mt::Component::Endpoint,
        _ => mt::Component::Agent,
    }
}

/// The analytics-owned part of a MonitorTarget's status for `view`; `prev` (the current
/// conditions) keeps transition times.
pub fn target_status(
    view: &TargetView,
    generation: Option<i64>,
    prev: &[Condition],
    now: DateTime<Utc>,
) -> MonitorTargetStatus {
    let h = view.health;
    let silent = view.nodes.known - view.nodes.reporting;
    let (reason, message) = match h {
        Health::Healthy => (
            "AllNodesHealthy".to_string(),
            format!(
                "{} nodes reporting, all within thresholds",
                view.nodes.reporting
            ),
        ),
        Health::Unknown => (
            "NoReports".to_string(),
            "no agent has reported recently".to_string(),
        ),
        _ if view.nodes.missing > 0 && view.problems.is_empty() && view.suspects.is_empty() => (
            "NodesNotReporting".to_string(),
            format!(
                "{} of {} desired agents have never reported",
                view.nodes.missing,
                view.nodes.desired.unwrap_or(0)
            ),
        ),
        _ => (
            if silent > 0 || view.nodes.missing > 0 {
                "NodesNotReporting"
            } else if h == Health::Critical {
                "CriticalThresholdExceeded"
            } else {
                "WarningThresholdExceeded"
            }
            .to_string(),
            view.suspects
                .first()
                .map(|s| format!("suspect {}: {}", s.name, s.suspect.evidence))
                .or_else(|| {
                    view.problems
                        .first()
                        .map(|p| format!("{}: {}", p.node, p.message))
                })
                .unwrap_or_default(),
        ),
    };
    let s = &view.summary;
    MonitorTargetStatus {
        conditions: vec![
            condition(
                condition_types::HEALTHY,
                h == Health::Healthy,
                &reason,
                &message,
                generation,
                prev,
                now,
            ),
            condition(
                condition_types::DEGRADED,
                matches!(h, Health::Warning | Health::Critical),
                &reason,
                &message,
                generation,
                prev,
                now,
            ),
        ],
        health: Some(match h {
            Health::Healthy => mt::Health::Healthy,
            Health::Warning => mt::Health::Warning,
            Health::Critical => mt::Health::Critical,
            Health::Unknown => mt::Health::Unknown,
        }),
        nodes: Some(mt::NodeCounts {
            reporting: Some(view.nodes.reporting as i32),
            warning: Some(view.nodes.warning as i32),
            critical: Some(view.nodes.critical as i32),
            ..Default::default()
        }),
        summary: Some(mt::Summary {
            worst_loss_percent: s.worst_loss_percent.map(|v| round_sig(v, 3)),
            rtt_p99_seconds: s.rtt_p99_seconds.map(|v| round_sig(v, 3)),
            rtt_p99: s.rtt_p99_seconds.map(human_seconds),
            rdma_ports_active: Some(s.rdma_ports_active as i32),
            rdma_ports_down: Some(s.rdma_ports_down as i32),
            rdma_errors_per_minute: s.rdma_errors_per_minute.map(|v| round_sig(v, 3)),
            anomalies: Some(s.anomalies as i32),
        }),
        suspects: view
            .suspects
            .iter()
            .take(mt::MAX_SUSPECTS)
            .map(suspect_status)
            .collect(),
        problems: view
            .problems
            .iter()
            .take(mt::MAX_PROBLEMS)
            .map(|p| mt::Problem {
                node: p.node.clone(),
                component: component(p),
                severity: severity(p.severity),
                message: p.message.chars().take(1024).collect(),
                since: Some(to_time(p.since)),
            })
            .collect(),
        last_report_time: view.last_report_time.map(to_time),
        ..Default::default()
    }
}

/// The analytics-owned part of an AlertRule's status.
pub fn rule_status(r: &RuleReport, prev: &[Condition], now: DateTime<Utc>) -> AlertRuleStatus {
    let ready = match &r.error {
        None => condition(
            condition_types::READY,
            true,
            "Evaluated",
            "evaluated by analytics",
            r.generation,
            prev,
            now,
        ),
        Some(e) => condition(
            condition_types::READY,
            false,
            "InvalidSpec",
            e,
            r.generation,
            prev,
            now,
        ),
    };
    AlertRuleStatus {
        conditions: vec![ready],
        state: r.state.map(|s| match s {
            RuleState::Inactive => AlertState::Inactive,
            RuleState::Pending => AlertState::Pending,
            RuleState::Firing => AlertState::Firing,
            RuleState::Suppressed => AlertState::Suppressed,
            RuleState::Silenced => AlertState::Silenced,
        }),
        active_since: r.active_since.map(to_time),
        last_evaluation_time: Some(to_time(r.evaluated_at)),
        last_value: r.last_value.map(|v| round_sig(v, 4)),
        firing: r
            .firing
            .iter()
            .take(fabricwatch_crds::alert_rule::MAX_FIRING)
            .map(firing_instance)
            .collect(),
        ..Default::default()
    }
}

/// What decides whether a status is worth writing: everything analytics owns except
/// timestamps that move on every cycle (`lastReportTime`, `lastEvaluationTime`, conditions'
/// `lastTransitionTime`) and values that drift (`lastValue`, firing values, summary figures
/// at more than two significant digits).
pub fn change_key(status: &Value) -> Value {
    let mut v = status.clone();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "lastReportTime",
            "lastEvaluationTime",
            "lastValue",
            "observedGeneration",
            "notifications",
        ] {
            o.remove(k);
        }
        if let Some(Value::Array(cs)) = o.get_mut("conditions") {
            cs.retain(|c| {
                let t = c.get("type").and_then(Value::as_str).unwrap_or("");
                [
                    condition_types::HEALTHY,
                    condition_types::DEGRADED,
                    condition_types::READY,
                ]
                .contains(&t)
            });
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("lastTransitionTime");
            }
            cs.sort_by(|a, b| {
                a.get("type")
                    .and_then(Value::as_str)
                    .cmp(&b.get("type").and_then(Value::as_str))
            });
        }
        if let Some(Value::Array(fs)) = o.get_mut("firing") {
            for f in fs.iter_mut().filter_map(Value::as_object_mut) {
                f.remove("value");
            }
        }
        if let Some(Value::Array(ss)) = o.get_mut("suspects") {
            // Evidence counts and confidence move every interval; who and how bad do not.
            for x in ss.iter_mut().filter_map(Value::as_object_mut) {
                for k in ["evidence", "confidence", "problems"] {
                    x.remove(k);
                }
            }
        }
        if let Some(Value::Object(s)) = o.get_mut("summary") {
            // The human RTT string follows rttP99Seconds, which is compared rounded.
            s.remove("rttP99");
            for (_, x) in s.iter_mut() {
                if let Some(f) = x.as_f64() {
                    *x = json!(round_sig(f, 2));
                }
            }
        }
        if let Some(Value::Object(n)) = o.get_mut("nodes") {
            n.remove("desired");
            n.remove("ready");
        }
    }
    v
}

struct Written {
    key: Value,
    at: Instant,
}

/// Applies status with server-side apply (field manager [`FIELD_MANAGER_ANALYTICS`]) only when
/// [`change_key`] differs from both what is in the cluster and what was last written, at most
/// once per object per `min_interval`, plus a refresh every `heartbeat` so moving timestamps
/// and values do not go stale forever.
pub struct StatusWriter {
    client: Client,
    stores: Stores,
    metrics: Metrics,
    min_interval: Duration,
    heartbeat: Duration,
    written: HashMap<(&'static str, ObjectRef), Written>,
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
            min_interval,
            heartbeat,
            written: HashMap::new(),
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

    fn due(
        &self,
        kind: &'static str,
        obj: &ObjectRef,
        key: &Value,
        current: Option<Value>,
    ) -> bool {
        let last = self.written.get(&(kind, obj.clone()));
        if last.is_some_and(|w| w.at.elapsed() < self.min_interval) {
            return false;
        }
        let changed = current.map(|c| change_key(&c)).as_ref() != Some(key)
            && last.is_none_or(|w| &w.key != key);
        changed || last.is_some_and(|w| w.at.elapsed() >= self.heartbeat)
    }

    async fn apply<K>(
        &mut self,
        kind: &'static str,
        obj: &ObjectRef,
        key: Value,
        patch: Value,
    ) -> bool
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &obj.namespace);
        let pp = PatchParams::apply(FIELD_MANAGER_ANALYTICS).force();
        match api
            .patch_status(&obj.name, &pp, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => {
                self.metrics
                    .status_writes
                    .with_label_values(&[kind, "applied"])
                    .inc();
                self.written.insert(
                    (kind, obj.clone()),
                    Written {
                        key,
                        at: Instant::now(),
                    },
                );
                true
            }
            Err(e) => {
                self.metrics
                    .status_writes
                    .with_label_values(&[kind, "failed"])
                    .inc();
                tracing::warn!(%obj, kind, "status apply failed: {e}");
                // Retry after min_interval, not on every cycle.
                self.written.insert(
                    (kind, obj.clone()),
                    Written {
                        key: Value::Null,
                        at: Instant::now(),
                    },
                );
                false
            }
        }
    }

    /// Writes the status of each target in `views` that is due.
    pub async fn write_targets(&mut self, views: &[TargetView], now: DateTime<Utc>) {
        for v in views {
            let Some(current) = self
                .stores
                .targets
                .get(&KubeRef::new(&v.target.name).within(&v.target.namespace))
            else {
                continue;
            };
            let prev = current
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let status = target_status(v, current.metadata.generation, &prev, now);
            let Ok(value) = serde_json::to_value(&status) else {
                continue;
            };
            let key = change_key(&value);
            let cur = current
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok());
            if self.due("MonitorTarget", &v.target, &key, cur) {
                let patch = json!({"apiVersion": fabricwatch_crds::API_VERSION, "kind": "MonitorTarget", "status": value});
                self.apply::<MonitorTarget>("MonitorTarget", &v.target, key, patch)
                    .await;
            }
        }
        let live: std::collections::HashSet<ObjectRef> =
            views.iter().map(|v| v.target.clone()).collect();
        self.written
            .retain(|(k, o), _| *k != "MonitorTarget" || live.contains(o));
    }

    /// Writes the status of each rule in `reports` that is due.
    pub async fn write_rules(&mut self, reports: &[RuleReport], now: DateTime<Utc>) {
        for r in reports {
            let Some(current) = self
                .stores
                .rules
                .get(&KubeRef::new(&r.rule.name).within(&r.rule.namespace))
            else {
                continue;
            };
            let prev = current
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let status = rule_status(r, &prev, now);
            let Ok(value) = serde_json::to_value(&status) else {
                continue;
            };
            let key = change_key(&value);
            let cur = current
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok());
            if self.due("AlertRule", &r.rule, &key, cur) {
                let patch = json!({"apiVersion": fabricwatch_crds::API_VERSION, "kind": "AlertRule", "status": value});
                self.apply::<AlertRule>("AlertRule", &r.rule, key, patch)
                    .await;
            }
        }
        let live: std::collections::HashSet<ObjectRef> =
            reports.iter().map(|r| r.rule.clone()).collect();
        self.written
            .retain(|(k, o), _| *k != "AlertRule" || live.contains(o));
    }
}

/// Shares the stores as the ingest catalog.
pub fn catalog(stores: &Stores) -> Arc<dyn Catalog> {
    Arc::new(stores.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        derive::tests::t,
        fleet::{NodeCounts, Summary},
    };

    fn view(loss: f64, last: i64) -> TargetView {
        TargetView {
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            health: Health::Warning,
            nodes: NodeCounts {
                known: 2,
                reporting: 2,
                warning: 1,
                critical: 0,
                ..Default::default()
            },
            summary: Summary {
                worst_loss_percent: Some(loss),
                rtt_p99_seconds: Some(0.000_123_4),
                ..Default::default()
            },
            problems: vec![Problem {
                node: "n1".into(),
                component: "ping/n2".into(),
                severity: Health::Warning,
                message: "2% loss".into(),
                since: t(0),
            }],
            suspects: vec![],
            last_report_time: Some(t(last)),
        }
    }

    #[test]
    fn rtt_for_people() {
        assert_eq!(human_seconds(0.000_214), "214µs");
        assert_eq!(human_seconds(0.001_254), "1.25ms");
        assert_eq!(human_seconds(0.0205), "20.5ms");
        assert_eq!(human_seconds(2.5), "2.5s");
        assert_eq!(human_seconds(0.0), "0µs");
        assert_eq!(human_seconds(f64::NAN), "-");
    }

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
    fn rounding_to_significant_digits() {
        assert_eq!(round_sig(0.000_123_456, 3), 0.000_123);
        assert_eq!(round_sig(1234.5, 2), 1200.0);
        assert_eq!(round_sig(0.0, 3), 0.0);
        assert_eq!(round_sig(-0.0156, 2), -0.016);
        assert_eq!(round_sig(1e-320, 3), 1e-320, "subnormals pass through");
        assert_eq!(round_sig(1e300, 3), 1e300);
    }

    #[test]
    fn timestamps_and_noise_do_not_count_as_changes() {
        let a = target_status(&view(2.01, 10), Some(1), &[], t(10));
        let b = target_status(&view(2.02, 20), Some(1), &a.conditions, t(20));
        let ka = change_key(&serde_json::to_value(&a).expect("json"));
        let kb = change_key(&serde_json::to_value(&b).expect("json"));
        assert_eq!(ka, kb, "only lastReportTime and loss noise differ");
        let c = target_status(&view(9.0, 30), Some(1), &a.conditions, t(30));
        assert_ne!(ka, change_key(&serde_json::to_value(&c).expect("json")));
    }

    #[test]
    fn target_status_shape() {
        let s = target_status(&view(2.0, 10), Some(3), &[], t(10));
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["health"], "Warning");
        assert_eq!(
            v["nodes"],
            json!({"reporting": 2, "warning": 1, "critical": 0})
        );
        assert_eq!(v["summary"]["rttP99Seconds"], json!(0.000123));
        assert_eq!(v["problems"][0]["component"], "ping");
        assert_eq!(v["problems"][0]["severity"], "warning");
        assert!(
            v.get("observedGeneration").is_none(),
            "the operator owns observedGeneration"
        );
        let healthy = &s.conditions[0];
        assert_eq!(
            (
                healthy.type_.as_str(),
                healthy.status.as_str(),
                healthy.observed_generation
            ),
            ("Healthy", "False", Some(3))
        );
        // Transition time is kept while the status does not flip.
        let later = target_status(&view(2.0, 99), Some(3), &s.conditions, t(99));
        assert_eq!(
            later.conditions[0].last_transition_time,
            s.conditions[0].last_transition_time
        );
    }
}
