//! Keeps the analytics and notifier Deployments and Services in place (periodic apply; an
//! unchanged apply writes nothing).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};

use crate::controller::apply::apply;
use crate::controller::build::central::{self, Component};
use crate::controller::context::Context;
use crate::controller::error::Error;
use fabricwatch_crds::FIELD_MANAGER_OPERATOR;

/// Kind label in metrics.
pub const KIND: &str = "Central";

/// Owner reference to the operator's Deployment `name` (not a controller reference: the
/// Deployment controls ReplicaSets, not these).
///
/// # Errors
/// [`Error::Read`] when the Deployment cannot be read or does not exist.
pub async fn owner(ctx: &Context, name: &str) -> Result<OwnerReference, Error> {
    let ns = &ctx.settings.namespace;
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), ns)
        .get(name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Deployment {ns}/{name} (--owner-deployment)"),
            source,
        })?;
    Ok(OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: name.into(),
        uid: d.metadata.uid.unwrap_or_default(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    })
}

/// Applies both central workloads once.
///
/// # Errors
/// [`Error`] when the owner cannot be read or an apply fails.
pub async fn ensure(ctx: &Context, owner_deployment: Option<&str>) -> Result<(), Error> {
    let owner = match owner_deployment {
        Some(name) => Some(owner(ctx, name).await?),
        None => None,
    };
    let ns = &ctx.settings.namespace;
    for c in Component::ALL {
        let objs = central::build(c, &ctx.settings, owner.as_ref());
        apply(
            &Api::<Service>::namespaced(ctx.client.clone(), ns),
            &objs.service,
        )
        .await?;
        let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), ns);
        let name = c.object_name();
        let live = deployments
            .get_opt(&name)
            .await
            .map_err(|source| Error::Read {
                what: format!("Deployment {ns}/{name}"),
                source,
            })?;
        if let Some(patch) = live
            .as_ref()
            .and_then(|live| central::strategy_switch(live, &objs.deployment))
        {
            deployments
                .patch(
                    &name,
                    &PatchParams {
                        field_manager: Some(FIELD_MANAGER_OPERATOR.into()),
                        ..PatchParams::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|source| Error::Apply {
                    kind: "Deployment",
                    name: name.clone(),
                    source,
                })?;
        }
        apply(&deployments, &objs.deployment).await?;
    }
    Ok(())
}
