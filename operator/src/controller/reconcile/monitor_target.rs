//! MonitorTarget → ServiceAccount, ConfigMap, Service, DaemonSet, PodMonitor; status
//! `observedGeneration`, `Accepted`, `Ready`, `nodes.desired`/`nodes.ready`.

use std::time::Duration;

use crate::controller::events::EventType;
use fabricwatch_common::status_patch::apply_status;
use fabricwatch_crds::conditions;
use fabricwatch_crds::monitor_target::{MonitorTarget, MonitorTargetStatus};
use fabricwatch_crds::{Time, FIELD_MANAGER_OPERATOR};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::Outcome;
use crate::controller::apply::{self, apply_child, apply_dynamic, delete_if_present};
use crate::controller::build::agent;
use crate::controller::cache::children::{self, ChildIndex};
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::names::agent_name;
use crate::controller::status::{self, Cond};
use fabricwatch_crds::condition_types::READY;

/// Kind label in metrics.
pub const KIND: &str = "MonitorTarget";
/// Re-check period while agents roll out (DaemonSet events usually come sooner); otherwise
/// the resync period (`--resync-seconds`) applies.
const ROLLING: Duration = Duration::from_secs(30);
/// Namespace label of the Pod Security admission enforce level.
const POD_SECURITY_ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// The operator-owned part of the status.
#[derive(Debug, PartialEq)]
struct Owned {
    conditions: Vec<Cond>,
    nodes: Option<(i32, i32)>,
}

/// Reconciles one MonitorTarget.
///
/// # Errors
/// [`Error`] when building, applying or writing status fails (retried with backoff).
pub async fn reconcile(mt: &MonitorTarget, ctx: &Context) -> Result<Outcome, Error> {
    if mt.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Outcome::Done(Action::await_change()));
    }
    let ns = mt.namespace().unwrap_or_default();
    let validation = mt.spec.validate();
    let accepted = status::accepted(&validation);
    if validation.is_err() {
        // Existing agents keep their last valid config; counts carry over unchanged.
        let nodes = mt
            .status
            .as_ref()
            .and_then(|s| s.nodes.as_ref())
            .and_then(|n| Some((n.desired?, n.ready?)));
        let ready = Cond::no(
            READY,
            "InvalidSpec",
            "agents not updated: the spec is invalid (see the Accepted condition)",
        );
        write_status(
            mt,
            ctx,
            Owned {
                conditions: vec![accepted, ready],
                nodes,
            },
        )
        .await?;
        return Ok(Outcome::Invalid);
    }

    let (want_pm, pm_problem) =
        match agent::wants_pod_monitor(mt.spec.scrape.pod_monitor, ctx.apis.pod_monitor()) {
            Ok(w) => (w, None),
            Err(p) => (false, Some(p)),
        };
    let objects = agent::build(mt, &ctx.settings, want_pm)?;
    let client = ctx.client.clone();
    let index = &ctx.children;
    let name = agent_name(&mt.name_any());
    let version = |i: &ChildIndex| i.get(&ns, &name).map(|o| o.version);
    apply_child(
        &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        &objects.service_account,
        ctx,
        version(&index.service_accounts),
        children::observe_resource_version,
    )
    .await?;
    apply_child(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &objects.config_map,
        ctx,
        version(&index.config_maps),
        children::observe_resource_version,
    )
    .await?;
    apply_child(
        &Api::<Service>::namespaced(client.clone(), &ns),
        &objects.service,
        ctx,
        version(&index.services),
        children::observe_resource_version,
    )
    .await?;
    let cached_ds = index.daemon_sets.get(&ns, &name);
    let applied_ds = apply_child(
        &Api::<DaemonSet>::namespaced(client.clone(), &ns),
        &objects.daemon_set,
        ctx,
        cached_ds.map(|o| o.version),
        children::observe_daemon_set,
    )
    .await?;
    // Skipped means the index holds the DaemonSet as applied; its counts are as fresh as
    // the watch.
    let rollout = applied_ds
        .or(cached_ds)
        .and_then(|o| o.rollout)
        .unwrap_or_default();
    if ctx.apis.pod_monitor() {
        let api = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &ns,
            &apply::pod_monitor_resource(),
        );
        match &objects.pod_monitor {
            Some(pm) => apply_dynamic(&api, "PodMonitor", pm).await?,
            None => delete_if_present(&api, "PodMonitor", &name).await?,
        }
    }

    // The namespace only explains agents that exist but do not start.
    let pod_security = if rollout.complete() || rollout.desired == 0 {
        None
    } else {
        Api::<Namespace>::all(client)
            .get_opt(&ns)
            .await
            .map_err(|source| Error::Read {
                what: format!("Namespace {ns}"),
                source,
            })?
            .and_then(|n| n.labels().get(POD_SECURITY_ENFORCE).cloned())
    };
    let ready = status::ready(rollout, &ns, pod_security.as_deref(), pm_problem.as_deref());
    write_status(
        mt,
        ctx,
        Owned {
            conditions: vec![accepted, ready],
            nodes: Some((rollout.desired, rollout.ready)),
        },
    )
    .await?;
    Ok(Outcome::Done(Action::requeue(recheck_after(
        rollout,
        ctx.settings.resync,
    ))))
}

/// When to look at a target again without a trigger: soon only while its agents roll out.
/// With no node selected there is nothing to wait for: a node that starts matching changes
/// the DaemonSet's desired count, and that event triggers the target (as discovery changes
/// do for a missing PodMonitor API).
fn recheck_after(rollout: status::Rollout, resync: Duration) -> Duration {
    if rollout.rolling_out() {
        ROLLING.min(resync)
    } else {
        resync
    }
}

/// Whether `owned` differs from what the object's status already says.
fn changed(current: Option<&MonitorTargetStatus>, owned: &Owned, generation: Option<i64>) -> bool {
    let Some(cur) = current else {
        return true;
    };
    let nodes_now = cur.nodes.as_ref().map(|n| (n.desired, n.ready));
    let nodes_want = owned.nodes.map(|(d, r)| (Some(d), Some(r)));
    cur.observed_generation != generation
        || conditions::differ(&cur.conditions, &owned.conditions, generation)
        || (nodes_want.is_some() && nodes_now != nodes_want)
}

async fn write_status(mt: &MonitorTarget, ctx: &Context, owned: Owned) -> Result<(), Error> {
    let generation = mt.meta().generation;
    if !changed(mt.status.as_ref(), &owned, generation) {
        return Ok(());
    }
    let existing = mt
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(jiff_now());
    let conditions = conditions::set_all(&existing, &owned.conditions, generation, &now);
    let mut status = json!({
        "observedGeneration": generation,
        "conditions": conditions,
    });
    if let Some((desired, ready)) = owned.nodes {
        status["nodes"] = json!({"desired": desired, "ready": ready});
    }
    let api =
        Api::<MonitorTarget>::namespaced(ctx.client.clone(), &mt.namespace().unwrap_or_default());
    apply_status(&api, &mt.name_any(), FIELD_MANAGER_OPERATOR, &status)
        .await
        .map_err(Error::Status)?;
    ctx.metrics.status_writes.with_label_values(&[KIND]).inc();

    // One Event per write that changed a condition's status or reason.
    if let Some(a) = status::announcement(&existing, &owned.conditions) {
        let type_ = if a.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        ctx.event(&mt.object_ref(&()), type_, &a.reason, a.note)
            .await;
    }
    Ok(())
}

/// Current time as the API's timestamp type.
pub fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_crds::monitor_target::NodeCounts;

    #[test]
    fn rechecks_soon_only_while_agents_roll_out() {
        let r = |desired, ready, updated, observed| status::Rollout {
            desired,
            ready,
            updated,
            observed,
        };
        let resync = Duration::from_secs(300);
        let at = |rollout| recheck_after(rollout, resync);
        assert_eq!(at(r(3, 3, 3, true)), resync, "all agents ready");
        assert_eq!(at(r(0, 0, 0, true)), resync, "no node selected");
        assert_eq!(at(r(3, 2, 3, true)), ROLLING, "one agent not ready");
        assert_eq!(at(r(3, 3, 1, true)), ROLLING, "agents not updated");
        assert_eq!(at(r(0, 0, 0, false)), ROLLING, "spec not yet seen");
        let short = Duration::from_secs(10);
        assert_eq!(
            recheck_after(r(3, 2, 3, true), short),
            short,
            "never past a resync"
        );
    }

    #[test]
    fn status_change_detection() {
        let owned = Owned {
            conditions: vec![status::accepted(&Ok(()))],
            nodes: Some((3, 2)),
        };
        assert!(changed(None, &owned, Some(1)));
        let now = Time(jiff_now());
        let cur = MonitorTargetStatus {
            observed_generation: Some(1),
            conditions: conditions::set_all(&[], &owned.conditions, Some(1), &now),
            nodes: Some(NodeCounts {
                desired: Some(3),
                ready: Some(2),
                reporting: Some(5),
                ..NodeCounts::default()
            }),
            ..MonitorTargetStatus::default()
        };
        assert!(!changed(Some(&cur), &owned, Some(1)));
        assert!(changed(Some(&cur), &owned, Some(2)));
        let more_ready = Owned {
            nodes: Some((3, 3)),
            conditions: owned.conditions.clone(),
        };
        assert!(changed(Some(&cur), &more_ready, Some(1)));
    }
}
