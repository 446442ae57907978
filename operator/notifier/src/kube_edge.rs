//! Kubernetes IO: reading source objects and Secrets, the ConfigMap outbox, and AlertRule
//! `status.notifications` through server-side apply.

use fabricwatch_common::status_patch::apply_status;
use fabricwatch_crds::{AIAnalysis, AlertRule, FIELD_MANAGER_NOTIFIER};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::channel::NotifyConfig;
use crate::crd_map;
use crate::outcome::{ChannelOutcome, StatusSink};
use crate::resolve::{ResolveError, Resolver};
use crate::secret::SecretValue;
use crate::store::{self, State, Store, StoreError};
use fabricwatch_proto::notify::SourceKind;
use fabricwatch_proto::ObjectRef;

/// Key of the outbox in the ConfigMap's `data`.
pub const STATE_KEY: &str = "state.json";

fn classify(what: &str, e: kube::Error) -> ResolveError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => {
            ResolveError::NotFound(format!("not allowed to read {what}: {}", s.message))
        }
        kube::Error::Api(s) if s.code == 404 => ResolveError::NotFound(format!("{what} not found")),
        _ => ResolveError::Unavailable(format!("reading {what}: {e}")),
    }
}

/// [`Resolver`] reading AlertRules, AIAnalyses and Secrets from the API server.
#[derive(Clone)]
pub struct KubeResolver {
    client: kube::Client,
}

impl KubeResolver {
    /// A resolver using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl Resolver for KubeResolver {
    async fn config(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
    ) -> Result<NotifyConfig, ResolveError> {
        let what = format!("{kind:?} {source}");
        let (cfg, warnings) = match kind {
            SourceKind::AlertRule => {
                let api: Api<AlertRule> = Api::namespaced(self.client.clone(), &source.namespace);
                let obj = api
                    .get_opt(&source.name)
                    .await
                    .map_err(|e| classify(&what, e))?
                    .ok_or_else(|| ResolveError::NotFound(format!("{what} not found")))?;
                crd_map::alert_rule(&obj.spec)
            }
            SourceKind::AIAnalysis => {
                let api: Api<AIAnalysis> = Api::namespaced(self.client.clone(), &source.namespace);
                let obj = api
                    .get_opt(&source.name)
                    .await
                    .map_err(|e| classify(&what, e))?
                    .ok_or_else(|| ResolveError::NotFound(format!("{what} not found")))?;
                crd_map::ai_analysis(&obj.spec)
            }
        };
        for w in warnings {
            tracing::warn!(source = %what, "ignoring part of spec.notify: {w}");
        }
        Ok(cfg)
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretValue, ResolveError> {
        let what = format!("Secret {namespace}/{name}");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let s = api
            .get_opt(name)
            .await
            .map_err(|e| classify(&what, e))?
            .ok_or_else(|| ResolveError::NotFound(format!("{what} not found")))?;
        // Only the referenced key is kept; the rest of the Secret is dropped here.
        let bytes = s
            .data
            .and_then(|mut d| d.remove(key))
            .ok_or_else(|| ResolveError::NotFound(format!("{what} has no key {key:?}")))?;
        let text = String::from_utf8(bytes.0)
            .map_err(|_| ResolveError::NotFound(format!("{what} key {key:?} is not UTF-8")))?;
        Ok(SecretValue::new(text))
    }
}

/// [`Store`] keeping the outbox in one ConfigMap (`data["state.json"]`), written with
/// server-side apply as `fabricwatch-notifier`.
#[derive(Clone)]
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    name: String,
}

impl ConfigMapStore {
    /// The ConfigMap `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: impl Into<String>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
        }
    }
}

impl Store for ConfigMapStore {
    async fn load(&self) -> Result<State, StoreError> {
        let cm = self.api.get_opt(&self.name).await.map_err(|e| {
            StoreError::Unavailable(format!("reading ConfigMap {}: {e}", self.name))
        })?;
        match cm
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove(STATE_KEY))
        {
            Some(text) => store::decode(&text),
            None => Ok(State::default()),
        }
    }

    async fn save(&self, state: &State) -> Result<(), StoreError> {
        let text = store::encode(state)?;
        let patch = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "labels": {
                    "app.kubernetes.io/name": "fabricwatch",
                    "app.kubernetes.io/component": "notifier",
                    "app.kubernetes.io/managed-by": FIELD_MANAGER_NOTIFIER,
                },
            },
            "data": { STATE_KEY: text },
        });
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER_NOTIFIER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("writing ConfigMap {}: {e}", self.name))
            })?;
        Ok(())
    }
}

/// [`StatusSink`] writing AlertRule `status.notifications` (only that field) with
/// server-side apply as `fabricwatch-notifier`. AIAnalysis has no such field; its outcomes
/// are logged and counted only.
#[derive(Clone)]
pub struct KubeStatus {
    client: kube::Client,
}

impl KubeStatus {
    /// A sink using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    async fn write(
        &self,
        source: &ObjectRef,
        outcomes: &[ChannelOutcome],
    ) -> Result<(), kube::Error> {
        let api: Api<AlertRule> = Api::namespaced(self.client.clone(), &source.namespace);
        let Some(rule) = api.get_opt(&source.name).await? else {
            return Ok(());
        };
        let names: Vec<String> = rule
            .spec
            .notify
            .as_ref()
            .map(|n| n.channels.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let previous = rule.status.map(|s| s.notifications).unwrap_or_default();
        let list = crd_map::merge_notifications(&previous, outcomes, &names);
        if list == previous {
            return Ok(());
        }
        apply_status(
            &api,
            &source.name,
            FIELD_MANAGER_NOTIFIER,
            &json!({ "notifications": list }),
        )
        .await?;
        Ok(())
    }
}

impl StatusSink for KubeStatus {
    async fn record(&self, kind: SourceKind, source: &ObjectRef, outcomes: &[ChannelOutcome]) {
        if kind != SourceKind::AlertRule {
            for o in outcomes {
                tracing::info!(%source, channel = %o.channel, result = o.result.as_str(), "AIAnalysis notification");
            }
            return;
        }
        if let Err(e) = self.write(source, outcomes).await {
            tracing::warn!(%source, error = %e, "writing AlertRule status.notifications failed");
        }
    }
}
