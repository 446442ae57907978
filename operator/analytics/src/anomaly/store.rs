//! Where detector baselines live across restarts: ConfigMaps owned by their MonitorTarget.
//!
//! Why ConfigMaps: analytics is a Deployment without a volume and already writes each target's
//! status by server-side apply; a ConfigMap per target (split into `-0`, `-1`, … when one
//! would pass [`MAX_CHUNK_BYTES`], below the API server's 1 MiB object limit) is bounded,
//! namespaced with its target, deleted with it by garbage collection (owner reference), and
//! needs no storage class. Size: [`super::snapshot`] keeps 21 bytes per series, so 5,000
//! nodes × 13 series are 1.48 MB in two ConfigMaps; written every `--baseline-save-interval`.
//! Loaded once at start (one list call with a label selector) and handed to the fleet, which
//! gives each node its baselines when it reports again.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use fabricwatch_crds::{MonitorTarget, FIELD_MANAGER_ANALYTICS};
use fabricwatch_proto::ObjectRef;
use k8s_openapi::{
    api::core::v1::ConfigMap,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
    ByteString,
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams},
    runtime::reflector::Store,
    Client, Resource,
};

use super::{
    robust::DetectorSettings,
    snapshot::{decode, encode, Baselines},
};
use crate::state::{lock, Shared};

/// Label on the ConfigMaps; its value is the MonitorTarget's name.
pub const LABEL: &str = "fabricwatch.io/anomaly-baselines";
/// The `binaryData` key holding a snapshot chunk.
pub const KEY: &str = "baselines";
/// Largest chunk per ConfigMap (the API server refuses objects over 1 MiB).
pub const MAX_CHUNK_BYTES: usize = 900 * 1024;

/// Name of chunk `i` of `target`'s baselines.
pub fn configmap_name(target: &str, i: usize) -> String {
    format!("{target}-anomaly-baselines-{i}")
}

/// Every saved snapshot in the cluster, by target. Unreadable chunks are skipped with a warning.
///
/// # Errors
/// When the list call fails.
pub async fn load(client: &Client) -> anyhow::Result<Vec<(ObjectRef, Baselines)>> {
    let d = DetectorSettings::default();
    let list = Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default().labels(LABEL))
        .await?;
    let mut out = Vec::new();
    for cm in list {
        let (Some(ns), Some(name)) = (
            cm.metadata.namespace.clone(),
            cm.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL))
                .cloned(),
        ) else {
            continue;
        };
        let Some(bytes) = cm.binary_data.as_ref().and_then(|b| b.get(KEY)) else {
            continue;
        };
        match decode(&bytes.0, (d.warmup_points, d.warmup_seconds)) {
            Ok(b) => out.push((
                ObjectRef {
                    namespace: ns,
                    name,
                },
                b,
            )),
            Err(e) => tracing::warn!(
                configmap = cm.metadata.name.as_deref().unwrap_or_default(),
                "anomaly baselines not restored: {e:#}"
            ),
        }
    }
    Ok(out)
}

/// Writes `target`'s snapshot chunks (server-side apply) and deletes chunks it no longer needs.
///
/// # Errors
/// When an apply, list or delete fails.
pub async fn save(
    client: &Client,
    target: &MonitorTarget,
    chunks: &[Vec<u8>],
) -> anyhow::Result<()> {
    let (Some(ns), Some(name), Some(uid)) = (
        target.metadata.namespace.as_deref(),
        target.metadata.name.as_deref(),
        target.metadata.uid.as_deref(),
    ) else {
        return Ok(());
    };
    let api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let pp = PatchParams::apply(FIELD_MANAGER_ANALYTICS).force();
    let mut written = BTreeSet::new();
    for (i, c) in chunks.iter().enumerate() {
        let cm_name = configmap_name(name, i);
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(cm_name.clone()),
                namespace: Some(ns.to_string()),
                labels: Some([(LABEL.to_string(), name.to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: MonitorTarget::api_version(&()).into_owned(),
                    kind: MonitorTarget::kind(&()).into_owned(),
                    name: name.to_string(),
                    uid: uid.to_string(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            binary_data: Some([(KEY.to_string(), ByteString(c.clone()))].into()),
            ..ConfigMap::default()
        };
        let mut body = serde_json::to_value(&cm)?;
        body["apiVersion"] = "v1".into();
        body["kind"] = "ConfigMap".into();
        api.patch(&cm_name, &pp, &Patch::Apply(body)).await?;
        written.insert(cm_name);
    }
    let existing = api
        .list(&ListParams::default().labels(&format!("{LABEL}={name}")))
        .await?;
    for cm in existing {
        if let Some(n) = cm.metadata.name.filter(|n| !written.contains(n)) {
            api.delete(&n, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

/// Saves every target's baselines every `every`, until the process ends. Errors are logged
/// and retried at the next round.
pub async fn save_loop(
    client: Client,
    shared: Arc<Shared>,
    targets: Store<MonitorTarget>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for t in targets.state() {
            let key = ObjectRef {
                namespace: t.metadata.namespace.clone().unwrap_or_default(),
                name: t.metadata.name.clone().unwrap_or_default(),
            };
            let chunks = encode(
                &lock(&shared.fleet).anomaly_baselines(&key),
                MAX_CHUNK_BYTES,
            );
            if chunks.is_empty() {
                continue;
            }
            if let Err(e) = save(&client, &t, &chunks).await {
                tracing::warn!(namespace = %key.namespace, target = %key.name, "saving anomaly baselines: {e:#}");
            }
        }
    }
}
