//! One way to write a custom resource's status: a server-side apply of
//! `{apiVersion, kind, status}` to the `status` subresource, forced, under the writer's
//! field manager.
//!
//! Every writer in fabricwatch (controller, analytics, notifier) owns a disjoint set of
//! status fields; server-side apply with one field manager per writer keeps them from
//! erasing each other's fields (Kubernetes docs, "Server-Side Apply", *Field management*).
//! `force` takes over a field another manager set before, which is how a writer recovers
//! ownership after a hand edit. The envelope's `apiVersion` and `kind` come from the
//! resource type, so no caller spells them by hand.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Builds the apply body for `status` of a `K`: `{"apiVersion", "kind", "status"}`.
///
/// # Errors
/// None: `status` is serialized as given (a value that cannot be serialized becomes
/// `null`, which the API server rejects with a clear 422).
pub fn body<K>(status: &impl Serialize) -> serde_json::Value
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    serde_json::json!({
        "apiVersion": K::api_version(&dt),
        "kind": K::kind(&dt),
        "status": status,
    })
}

/// Server-side applies `status` to object `name` through `api` as `field_manager`
/// (forced), and returns the object as stored.
///
/// # Errors
/// The [`kube::Error`] of the request, unchanged (API status codes such as 404 when the
/// object is gone or 422 when the status does not validate; transport errors when the API
/// server is unreachable), so callers can classify it.
pub async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    status: &impl Serialize,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let params = PatchParams::apply(field_manager).force();
    api.patch_status(name, &params, &Patch::Apply(body::<K>(status)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn body_names_the_type_and_wraps_the_status() {
        let b = body::<ConfigMap>(&serde_json::json!({"x": 1}));
        assert_eq!(b["apiVersion"], "v1");
        assert_eq!(b["kind"], "ConfigMap");
        assert_eq!(b["status"]["x"], 1);
        assert_eq!(b.as_object().map(|o| o.len()), Some(3));
    }
}
