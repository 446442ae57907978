//! Server-side apply of YAML manifests.

use crate::FIELD_MANAGER;
use anyhow::{anyhow, bail, Context, Result};
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use kube::{Api, Client};
use serde::Deserialize;

/// Split a multi-document YAML string into JSON values, skipping empty documents.
pub fn parse_yaml_documents(yaml: &str) -> Result<Vec<serde_json::Value>> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = serde_json::Value::deserialize(doc)
            .with_context(|| format!("YAML document {} is not valid", i + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Server-side apply (field manager `fabricwatch-tests`, forced) every object in `yaml`
/// (one or more documents). Namespaced objects without `metadata.namespace` go to
/// `namespace`. Kinds are resolved through discovery, so custom resources work once their
/// CRD is Established. Returns the applied objects as the server returned them.
pub async fn apply_yaml(
    client: &Client,
    namespace: Option<&str>,
    yaml: &str,
) -> Result<Vec<DynamicObject>> {
    let mut applied = Vec::new();
    for doc in parse_yaml_documents(yaml)? {
        let api_version = doc
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("a document has no apiVersion"))?;
        let kind = doc
            .get("kind")
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("a document has no kind"))?;
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("a {kind} has no metadata.name"))?;
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("the cluster does not serve {api_version} {kind}"))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = doc
                    .pointer("/metadata/namespace")
                    .and_then(|v| v.as_str())
                    .or(namespace)
                    .ok_or_else(|| anyhow!("{kind} {name} needs a namespace"))?;
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let obj = api
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&doc),
            )
            .await
            .with_context(|| format!("applying {kind} {name}"))?;
        applied.push(obj);
    }
    if applied.is_empty() {
        bail!("no objects in the YAML");
    }
    Ok(applied)
}
