//! Fault localization on the local cluster: a fault injected into one node's network namespace
//! is named as that node, a fault on one pair as that link, and both clear when the fault goes.
//!
//! - node fault: fw-n2 drops 40 % of all ICMP it receives (its peers' echo requests and the
//!   replies to its own probes), so every path into and out of fw-n2 is lossy. Expected:
//!   exactly one suspect, `node/fw-n2`, shown in the `SUSPECT` column.
//! - link fault: fw-n2 drops 40 % of the ICMP it receives from fw-n3 only, so both directions
//!   of the pair fw-n2–fw-n3 are lossy and every other path is clean. Expected: exactly one
//!   suspect, `link/fw-n2–fw-n3`, and no node suspect.
//!
//! Host collection is off in the MonitorTarget: every node reads the one machine's
//! `/proc/stat`, which would make a busy build machine a host suspect.
//!
//! Needs the local cluster (`FABRICWATCH_E2E=1`), the images loaded and `python3` (Helm).

use std::time::Duration;

use anyhow::{ensure, Result};
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::helm::TestRelease;
use fabricwatch_tests::host::{kubectl_on_path, NodeRule, DROP_40_PERCENT};
use fabricwatch_tests::status::{self, health, suspects};
use fabricwatch_tests::{require_cluster, wait_for, TestNamespace};

const LOCALIZE: Duration = Duration::from_secs(180);

/// Waits until the suspects are exactly `want`, then checks they stay so for two more
/// intervals (no second suspect appearing next to the right one).
async fn suspects_settle(ns: &TestNamespace, want: &[String]) -> Result<()> {
    let mts = ns.api::<MonitorTarget>();
    let m = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(|m| suspects(m) == want),
        LOCALIZE,
    )
    .await?;
    eprintln!(
        "suspects {want:?}: {}",
        serde_json::to_string(&m.status.as_ref().map(|s| &s.suspects)).unwrap_or_default()
    );
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let m = mts.get("fabric").await?;
        ensure!(
            suspects(&m) == want,
            "suspects changed to {:?} (want {want:?})",
            suspects(&m)
        );
    }
    Ok(())
}

async fn clean(ns: &TestNamespace) -> Result<()> {
    wait_for(
        &ns.api::<MonitorTarget>(),
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| suspects(m).is_empty() && health(m) == "Healthy")
        },
        LOCALIZE,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_node_and_a_lossy_link_are_named() -> Result<()> {
    let cluster = require_cluster!();
    let Some(local) = cluster.local().cloned() else {
        eprintln!("skipped: needs the local e2e cluster (iptables in the nodes' namespaces)");
        return Ok(());
    };
    let nodes = cluster.ready_nodes().await?;
    ensure!(nodes.len() == 3, "needs the 3 local nodes, found {nodes:?}");

    let TestRelease {
        ns,
        operator: _,
        release: _release,
    } = TestRelease::install(&cluster, "e2e-localize").await?;

    let want = nodes.len() as i32;
    status::start_ping_only_target(&ns, want).await?;
    eprintln!("baseline: Healthy, {want} nodes reporting, no suspect: ok");

    let (n2, n3) = (&nodes[1], &nodes[2]);

    // Node fault: every ICMP packet into fw-n2.
    let mut spec = vec!["-p", "icmp"];
    spec.extend_from_slice(&DROP_40_PERCENT);
    let rule = NodeRule::insert(&local, 2, &spec)?;
    suspects_settle(&ns, &[format!("node/{}", n2.0)]).await?;
    let table = kubectl_on_path(
        cluster.kubeconfig(),
        &["get", "monitortargets", "-n", ns.name()],
    )?;
    ensure!(
        table.contains(&format!("node/{}", n2.0)),
        "SUSPECT column:\n{table}"
    );
    eprintln!("{table}");
    drop(rule);
    clean(&ns).await?;
    eprintln!("node fault on {}: named, then cleared: ok", n2.0);

    // Link fault: ICMP into fw-n2 from fw-n3 only.
    let mut spec = vec!["-p", "icmp", "-s", n3.1.as_str()];
    spec.extend_from_slice(&DROP_40_PERCENT);
    let rule = NodeRule::insert(&local, 2, &spec)?;
    let mut ends = [n2.0.clone(), n3.0.clone()];
    ends.sort();
    suspects_settle(&ns, &[format!("link/{}–{}", ends[0], ends[1])]).await?;
    drop(rule);
    clean(&ns).await?;
    eprintln!(
        "link fault {}–{}: named, then cleared: ok",
        ends[0], ends[1]
    );
    ns.cleanup().await
}
