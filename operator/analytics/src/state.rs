//! Process state shared by the HTTP handlers and the background loops.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::{DateTime, Utc};
use fabricwatch_common::auth::Authenticator;
use fabricwatch_proto::ObjectRef;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{
    evaluator::Evaluator,
    fleet::{Fleet, TargetConfig},
    metrics::Metrics,
    policy::AgentPolicy,
    trigger::Trigger,
};

/// What analytics knows about the cluster: which MonitorTargets exist (with their settings)
/// and node labels. Backed by kube reflectors in a cluster, by [`OpenCatalog`] locally.
pub trait Catalog: Send + Sync {
    /// The target's settings; `None` when no such MonitorTarget exists.
    fn target(&self, target: &ObjectRef) -> Option<TargetConfig>;
    /// Value of label `key` on node `node`, when known.
    fn node_label(&self, node: &str, key: &str) -> Option<String>;
    /// Node of the agent Pod `namespace/pod` (with UID `uid`, when given), when that Pod is
    /// known as a fabricwatch agent. Used to bind a report to the node of the Pod its token
    /// was issued to on clusters whose tokens do not name the node (before Kubernetes 1.30).
    fn pod_node(&self, _namespace: &str, _pod: &str, _uid: Option<&str>) -> Option<String> {
        None
    }
}

/// A catalog for runs without Kubernetes: every target exists with default settings.
#[derive(Clone, Debug, Default)]
pub struct OpenCatalog;

impl Catalog for OpenCatalog {
    fn target(&self, _: &ObjectRef) -> Option<TargetConfig> {
        Some(TargetConfig::default())
    }
    fn node_label(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// One entry of the event log served at `/api/v1/events`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// `AlertFiring`, `AlertResolved`, `Anomaly`, `AgentRestarted`, `StatusWriteFailed`, ...
    pub kind: String,
    /// The object concerned (MonitorTarget or AlertRule).
    pub object: ObjectRef,
    /// Node, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Human text.
    pub message: String,
}

/// Ring buffer of the latest events.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    events: VecDeque<Event>,
}

impl EventLog {
    /// Keeps at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: VecDeque::new(),
        }
    }
    /// Appends, dropping the oldest when full.
    pub fn push(&mut self, e: Event) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }
    /// Newest first, optionally only of `object`, at most `limit`.
    pub fn latest(&self, object: Option<&ObjectRef>, limit: usize) -> Vec<Event> {
        self.events
            .iter()
            .rev()
            .filter(|e| object.is_none_or(|o| &e.object == o))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Everything the handlers and loops share.
pub struct Shared {
    /// Node state of every target.
    pub fleet: Mutex<Fleet>,
    /// Alert engines.
    pub evaluator: Mutex<Evaluator>,
    /// Event log.
    pub events: Mutex<EventLog>,
    /// Metrics.
    pub metrics: Metrics,
    /// Token check; `None` only with `--insecure-skip-auth`.
    pub auth: Option<Arc<dyn Authenticator>>,
    /// Who may report.
    pub policy: AgentPolicy,
    /// Cluster knowledge.
    pub catalog: Arc<dyn Catalog>,
    /// Largest accepted report body, bytes.
    pub max_body_bytes: usize,
    /// Where AI triggers go (dropped with a counted metric when full).
    pub triggers: Option<mpsc::Sender<Trigger>>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (state stays usable;
/// each critical section leaves it consistent before it can panic).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Default largest report body, bytes (`--max-body-bytes`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

impl Shared {
    /// State for `catalog` with defaults for the rest: an empty fleet with default settings,
    /// no rules, an event log of 100, no token check, the default agent policy, bodies up to
    /// [`DEFAULT_MAX_BODY_BYTES`], no AI triggers. Callers override fields with
    /// `Shared { auth, ..Shared::new(metrics, catalog) }`.
    pub fn new(metrics: Metrics, catalog: Arc<dyn Catalog>) -> Shared {
        Shared {
            fleet: Mutex::new(Fleet::new(crate::fleet::Settings::default())),
            evaluator: Mutex::new(Evaluator::default()),
            events: Mutex::new(EventLog::new(100)),
            metrics,
            auth: None,
            policy: AgentPolicy::default(),
            catalog,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            triggers: None,
        }
    }

    /// Records an event.
    pub fn event(&self, kind: &str, object: &ObjectRef, node: Option<&str>, message: String) {
        lock(&self.events).push(Event {
            at: Utc::now(),
            kind: kind.into(),
            object: object.clone(),
            node: node.map(str::to_string),
            message,
        });
    }

    /// Hands a trigger to the AI consumer without waiting.
    pub fn trigger(&self, t: Trigger) {
        let reason = match &t {
            Trigger::Alert { .. } => "alert",
            Trigger::Anomaly { .. } => "anomaly",
        };
        if let Some(tx) = &self.triggers {
            match tx.try_send(t) {
                Ok(()) => self.metrics.triggers.with_label_values(&[reason]).inc(),
                Err(e) => tracing::warn!(reason, "AI trigger dropped: {e}"),
            }
        }
    }
}
