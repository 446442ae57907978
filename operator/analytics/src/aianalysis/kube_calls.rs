//! The runner's single API calls: the provider Secret read, the status apply (server-side
//! apply as `fabricwatch-analytics` through `fabricwatch_common::status_patch`) and the
//! removal of the run-now annotation. Failures are logged or returned as text naming the
//! object, never a Secret value.

use fabricwatch_ai::{ProviderCredentials, SecretString};
use fabricwatch_common::status_patch::apply_status;
use fabricwatch_crds::{
    ai_analysis::{AIAnalysisStatus, RUN_NOW_ANNOTATION},
    AIAnalysis, FIELD_MANAGER_ANALYTICS,
};
use fabricwatch_proto::ObjectRef;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    api::{Api, Patch, PatchParams},
    Client,
};
use serde_json::json;

use super::settings::{
    aws_credentials, credential_keys, CredentialKeys, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
};

/// Reads the provider credentials of `a` from its Secret. Errors name the Secret and key,
/// never a value.
pub(super) async fn credentials(
    client: &Client,
    a: &AIAnalysis,
) -> Result<ProviderCredentials, String> {
    let ns = a.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let get = |secret: String| {
        let api = api.clone();
        async move {
            api.get(&secret)
                .await
                .map_err(|e| format!("cannot read Secret {ns}/{secret}: {}", kube_reason(&e)))
        }
    };
    let value = |s: &Secret, key: &str| -> Option<String> {
        let v = s.data.as_ref()?.get(key)?;
        String::from_utf8(v.0.clone()).ok()
    };
    match credential_keys(&a.spec) {
        CredentialKeys::None => Ok(ProviderCredentials::Default),
        CredentialKeys::Aws { secret } => {
            let s = get(secret.clone()).await?;
            aws_credentials(|k| value(&s, k)).ok_or_else(|| {
                format!("Secret {secret} lacks a non-empty {AWS_ACCESS_KEY_ID} or {AWS_SECRET_ACCESS_KEY}")
            })
        }
        CredentialKeys::ApiKey { secret, key } => {
            let s = get(secret.clone()).await?;
            match value(&s, &key).map(|v| v.trim().to_string()) {
                Some(v) if !v.is_empty() => Ok(ProviderCredentials::ApiKey(SecretString::new(v))),
                _ => Err(format!("Secret {secret} has no non-empty key {key}")),
            }
        }
    }
}

/// The API server's reason for a failed call, without echoing request bodies.
pub(super) fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.reason, s.code),
        _ => "API server unreachable".into(),
    }
}

/// Applies the analytics-owned `status` of `me`; `false` (logged) when the API refused it.
pub(super) async fn write_status(
    client: &Client,
    me: &ObjectRef,
    status: &AIAnalysisStatus,
) -> bool {
    let api: Api<AIAnalysis> = Api::namespaced(client.clone(), &me.namespace);
    match apply_status(&api, &me.name, FIELD_MANAGER_ANALYTICS, status).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(analysis = %me, "AIAnalysis status apply failed: {}", kube_reason(&e));
            false
        }
    }
}

/// Removes the run-now annotation if it still holds `value` (a newer request stays).
pub(super) async fn clear_run_now(client: &Client, me: &ObjectRef, value: &str) {
    let api: Api<AIAnalysis> = Api::namespaced(client.clone(), &me.namespace);
    for _ in 0..3 {
        let Ok(cur) = api.get(&me.name).await else {
            return;
        };
        let still = cur
            .metadata
            .annotations
            .as_ref()
            .and_then(|m| m.get(RUN_NOW_ANNOTATION))
            .is_some_and(|v| v == value);
        if !still {
            return;
        }
        // resourceVersion makes the merge patch conditional: a concurrent change (a new
        // run-now value) yields 409 and a fresh look.
        let patch = json!({"metadata": {
            "resourceVersion": cur.metadata.resource_version,
            "annotations": {RUN_NOW_ANNOTATION: null},
        }});
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER_ANALYTICS.into()),
            ..PatchParams::default()
        };
        match api.patch(&me.name, &pp, &Patch::Merge(&patch)).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                tracing::warn!(analysis = %me, "clearing {RUN_NOW_ANNOTATION} failed: {}", kube_reason(&e));
                return;
            }
        }
    }
}
