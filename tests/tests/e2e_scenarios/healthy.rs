//! Scenario 2: the samples of `e2e/samples/` applied; the MonitorTarget `fabric` Healthy with
//! every node reporting and every `kubectl get mt` column filled. Also what "Healthy" means
//! on the local cluster for the later stages ([`healthy_but_for_shared_cpu`]).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::host::kubectl;
use fabricwatch_tests::TestNamespace;
use fabricwatch_tests::{eventually, repo_root, status, wait_for, Cluster, LocalCluster};

use super::HEALTHY;

/// Healthy, or Warning only because the host CPU is busy. The local cluster's nodes are
/// network namespaces of one machine: each reads the machine's `/proc/stat`, which the test
/// does not control (a build next to it saturates it), so a host CPU warning says nothing about
/// the faults the scenarios inject and remove.
pub(crate) fn healthy_but_for_shared_cpu(mt: &MonitorTarget) -> bool {
    let h = status::health(mt);
    h == "Healthy"
        || (h == "Warning"
            && status::of(mt)["problems"].as_array().is_some_and(|ps| {
                ps.iter().all(|p| {
                    p["component"] == "host"
                        && p["message"].as_str().is_some_and(|m| m.starts_with("CPU "))
                })
            }))
}

/// Applies the samples and waits for the target; returns `(name, InternalIP)` of every Ready
/// node, read before the samples were applied.
pub(crate) async fn samples_healthy(
    cluster: &Cluster,
    local: &LocalCluster,
    ns: &TestNamespace,
) -> Result<Vec<(String, String)>> {
    let nodes = cluster.ready_nodes().await?;
    let examples = repo_root().join("e2e").join("samples");
    for f in [
        "monitortarget.yaml",
        "alertrule-loss.yaml",
        "alertrule-rdma.yaml",
        "aianalysis.yaml",
    ] {
        ns.apply_yaml(&std::fs::read_to_string(examples.join(f))?)
            .await?;
    }
    let want = nodes.len() as i64;
    let mts = ns.api::<MonitorTarget>();
    let mt = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                healthy_but_for_shared_cpu(m)
                    && status::of(m)["nodes"]["reporting"].as_i64() == Some(want)
            })
        },
        HEALTHY,
    )
    .await
    .map_err(|e| {
        // Agents that cannot push say why in their logs (the error chain); what each node
        // sees of the analytics Service (DNS, kube-proxy's rules, a TCP connect) says where.
        let analytics = format!("fabricwatch-analytics.{}", ns.name());
        let diagnosis = local
            .run_script(&["diagnose", &analytics])
            .unwrap_or_else(|e| format!("(diagnose failed: {e:#})"));
        anyhow::anyhow!("{e}\n{diagnosis}")
    })?;
    // Health comes with the first reports; loss and RTT columns once a ping round completed.
    let table = eventually(
        "every kubectl get mt column populated",
        Duration::from_secs(90),
        || async {
            let table = kubectl(cluster, &["get", "monitortargets", "-n", ns.name()])?;
            let row: Vec<&str> = table
                .lines()
                .find(|l| l.starts_with("fabric "))
                .context("no row for fabric")?
                .split_whitespace()
                .collect();
            let header: Vec<&str> = table
                .lines()
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            // SUSPECT is empty while nothing is suspected; every other column has a value.
            let blank_allowed = usize::from(header.contains(&"SUSPECT"));
            ensure!(
                row.len() + blank_allowed >= header.len(),
                "empty columns:\n{table}"
            );
            // Warning only from the shared host CPU (see `healthy_but_for_shared_cpu`).
            ensure!(
                row.contains(&"Healthy") || row.contains(&"Warning"),
                "not Healthy:\n{table}"
            );
            Ok(table)
        },
    )
    .await?;
    eprintln!("{table}");
    eprintln!(
        "scenario 2 (sample MonitorTarget Healthy, {want}/{want} reporting): ok; status: {}",
        status::of(&mt)["summary"]
    );
    Ok(nodes)
}
