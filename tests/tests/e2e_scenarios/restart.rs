//! Scenario 3c: the leader operator pod (the Lease's holder) and one agent pod are killed →
//! everything Ready and the target healthy again, the same children after a full
//! central-workload round, and no notification sent twice.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::helm::wait_release_ready;
use fabricwatch_tests::host::kubectl;
use fabricwatch_tests::{conditions, status, wait_for, TestNamespace};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use kube::api::{DeleteParams, ListParams};
use kube::ResourceExt;
use serde_json::Value;

use super::healthy::healthy_but_for_shared_cpu;
use super::peers::Peers;
use super::{pods, Stack, HEALTHY, READY};

/// Children the controller manages in the namespace, by kind.
async fn children(ns: &TestNamespace) -> Result<BTreeMap<&'static str, Vec<String>>> {
    let lp = ListParams::default().labels("app.kubernetes.io/managed-by=fabricwatch-operator");
    let names = |v: Vec<String>| {
        let mut v = v;
        v.sort();
        v
    };
    Ok(BTreeMap::from([
        (
            "DaemonSet",
            names(
                ns.api::<DaemonSet>()
                    .list(&lp)
                    .await?
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
            ),
        ),
        (
            "Deployment",
            names(
                ns.api::<Deployment>()
                    .list(&lp)
                    .await?
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
            ),
        ),
        (
            "Service",
            names(
                ns.api::<Service>()
                    .list(&lp)
                    .await?
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
            ),
        ),
        (
            "ConfigMap",
            names(
                ns.api::<ConfigMap>()
                    .list(&lp)
                    .await?
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
            ),
        ),
        (
            "ServiceAccount",
            names(
                ns.api::<ServiceAccount>()
                    .list(&lp)
                    .await?
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
            ),
        ),
    ]))
}

/// Kills the two pods, waits for recovery, then compares children and notifications.
pub(crate) async fn killed_pods_come_back(stack: &Stack<'_>, peers: &Peers) -> Result<()> {
    let (ns, webhook, want) = (stack.ns, &peers.webhook, stack.want());
    let before = children(ns).await?;
    let notified = webhook.received.lock().map(|r| r.len()).unwrap_or(0);
    let op_pods = pods(ns, "app.kubernetes.io/component=operator").await?;
    let lease: Value = serde_json::from_str(&kubectl(
        stack.cluster,
        &["get", "lease", stack.release, "-n", ns.name(), "-o", "json"],
    )?)?;
    let leader = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let victim = op_pods
        .iter()
        .find(|p| p.name_any() == leader)
        .or(op_pods.first())
        .context("no operator pod")?
        .name_any();
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    ns.api::<Pod>().delete(&victim, &dp).await?;
    let agent = pods(ns, "app.kubernetes.io/component=agent").await?;
    let agent = agent.first().context("no agent pod")?.name_any();
    ns.api::<Pod>().delete(&agent, &dp).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    wait_release_ready(ns, stack.fullname).await?;
    wait_for(
        &ns.api::<DaemonSet>(),
        "fabric-agent",
        conditions::daemonset_ready(),
        READY,
    )
    .await?;
    wait_for(
        &stack.mts(),
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                healthy_but_for_shared_cpu(m)
                    && status::of(m)["nodes"]["reporting"].as_i64() == Some(want)
            })
        },
        HEALTHY,
    )
    .await?;
    // A full central-workload round (60 s) must not add anything.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let after = children(ns).await?;
    ensure!(
        before == after,
        "children changed across the restart:\nbefore {before:?}\nafter  {after:?}"
    );
    // Nothing may be delivered twice: no new firing notification, and any later one (a
    // resolved message delivered after its group interval) must not repeat an earlier one.
    let all = webhook
        .received
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let summary = |v: &Value| {
        let alerts: Vec<String> = v["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| format!("{} {} {}", a["status"], a["labels"], a["startsAt"]))
            .collect();
        format!("{} {alerts:?}", v["status"])
    };
    let (old, new) = all.split_at(notified.min(all.len()));
    for n in new {
        eprintln!("notification after the restart: {}", summary(n));
        ensure!(
            n["status"] != "firing",
            "a firing notification after the restart: {}",
            summary(n)
        );
        ensure!(
            !old.iter().any(|o| summary(o) == summary(n)),
            "a repeated notification after the restart: {}",
            summary(n)
        );
    }
    eprintln!("scenario 3c (killed {victim} and {agent}: all Ready, same children, no repeated or new firing notifications): ok");
    Ok(())
}
