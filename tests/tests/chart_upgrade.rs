//! `helm upgrade` of a live install with changed values (the operator's log level, memory
//! limit and a Pod annotation): the operator Deployment rolls, and nothing else may notice.
//! While the upgrade runs the MonitorTarget's status is sampled every second: it must never
//! lose its health or conditions. Afterwards the agents must not have rolled (same Pods, same
//! DaemonSet generation), the central Deployments may have changed at most once, and the target
//! is Healthy with every agent reporting. The times are printed (`upgrade:` lines) and recorded
//! in the README's reliability section.
//!
//! Needs the local cluster (`FABRICWATCH_E2E=1`), the images loaded and `python3` (Helm).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::names::agent_name;
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::helm::{
    upgrade_local, wait_release_ready, TestRelease, CENTRAL_DEPLOYMENTS,
};
use fabricwatch_tests::status::{self, health};
use fabricwatch_tests::{require_cluster, TestNamespace};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;

const READY: Duration = Duration::from_secs(240);

/// UIDs of the Pods the DaemonSet `owner` owns.
async fn pods_of(ns: &TestNamespace, owner: &str) -> Result<BTreeSet<String>> {
    Ok(ns
        .api::<Pod>()
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o.kind == "DaemonSet" && o.name == owner))
        })
        .filter_map(|p| p.metadata.uid)
        .collect())
}

async fn generation<K>(ns: &TestNamespace, name: &str) -> Result<i64>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    ns.api::<K>()
        .get(name)
        .await?
        .meta()
        .generation
        .with_context(|| format!("{name} has no generation"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_upgrade_rolls_the_operator_only_and_keeps_status() -> Result<()> {
    let cluster = require_cluster!();
    let nodes = cluster.ready_nodes().await?;
    let TestRelease {
        ns,
        operator,
        release: _release,
    } = TestRelease::install(&cluster, "e2e-upgrade").await?;
    let release = ns.name().to_string();

    let want = nodes.len() as i32;
    let mts = ns.api::<MonitorTarget>();
    status::start_ping_only_target(&ns, want).await?;
    let agents = agent_name("fabric");
    let agent_pods = pods_of(&ns, &agents).await?;
    let agent_generation = generation::<DaemonSet>(&ns, &agents).await?;
    let operator_generation = generation::<Deployment>(&ns, &operator).await?;
    let mut central = Vec::new();
    for d in CENTRAL_DEPLOYMENTS {
        central.push(generation::<Deployment>(&ns, d).await?);
    }
    eprintln!(
        "baseline: Healthy, {want} agents ({} Pods) reporting",
        agent_pods.len()
    );

    // The upgrade runs on a thread; the status is sampled meanwhile.
    let t0 = Instant::now();
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let (rel, nsname) = (release.clone(), ns.name().to_string());
    let upgrade = tokio::task::spawn_blocking(move || {
        upgrade_local(
            &kubeconfig,
            &rel,
            &nsname,
            &[
                "operator.logLevel=info",
                "operator.resources.limits.memory=160Mi",
                "operator.podAnnotations.upgraded=yes",
            ],
        )
    });
    let mut samples = 0;
    let mut lost = Vec::new();
    while !upgrade.is_finished() {
        match mts.get("fabric").await {
            Ok(m) => {
                samples += 1;
                let conditions = m.status.as_ref().map_or(0, |s| s.conditions.len());
                if health(&m).is_empty() || health(&m) == "Unknown" || conditions == 0 {
                    lost.push(format!(
                        "{:.0}s: health {:?}, {conditions} conditions",
                        t0.elapsed().as_secs_f64(),
                        health(&m)
                    ));
                }
            }
            Err(e) => lost.push(format!("{:.0}s: {e}", t0.elapsed().as_secs_f64())),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    upgrade.await.context("the upgrade thread")??;
    let upgraded = t0.elapsed();
    wait_release_ready(&ns, &operator).await?;
    let ready = t0.elapsed();
    ensure!(
        lost.is_empty(),
        "the status lost its health or conditions during the upgrade: {lost:?}"
    );
    ensure!(
        generation::<Deployment>(&ns, &operator).await? > operator_generation,
        "the operator Deployment did not change"
    );
    status::wait_healthy_and_reporting(&ns, want, READY).await?;
    let healthy = t0.elapsed();

    // Nothing else rolled: the agents keep their Pods, the central Deployments changed at
    // most once (the new controller re-applies them).
    ensure!(
        generation::<DaemonSet>(&ns, &agents).await? == agent_generation,
        "the agent DaemonSet changed"
    );
    let after = pods_of(&ns, &agents).await?;
    ensure!(
        after == agent_pods,
        "agents rolled: {agent_pods:?} → {after:?}"
    );
    for (d, before) in CENTRAL_DEPLOYMENTS.iter().zip(&central) {
        let now = generation::<Deployment>(&ns, d).await?;
        ensure!(now - before <= 1, "{d} changed {} times", now - before);
    }
    eprintln!(
        "upgrade: helm upgrade --wait {:.1} s, release Ready {:.1} s, target Healthy with {want} \
         agents reporting {:.1} s after it began; {samples} status samples, none without health \
         or conditions; agents not rolled",
        upgraded.as_secs_f64(),
        ready.as_secs_f64(),
        healthy.as_secs_f64()
    );
    ns.cleanup().await
}
