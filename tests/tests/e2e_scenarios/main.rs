//! The whole system the way a user meets it, on the local cluster: CRDs applied, the chart
//! installed with Helm's own code (`e2e/helm.py`), the samples from `e2e/samples/` applied, then
//! checked from the outside with real Prometheus, Alertmanager, a webhook receiver and the
//! LLM stand-in, all on the host bridge 10.78.0.1 that pods reach.
//!
//! One test, in stages that share the install (each prints `scenario ...: ok`), one module
//! each, run in this order:
//! - 1 ([`setup`]): `kubectl apply -f crds/` + Helm install → operator (2 replicas), analytics,
//!   notifier Ready.
//! - 2 ([`healthy`]): The sample MonitorTarget → Healthy with every node reporting;
//!   `kubectl get mt` columns.
//! - 4 ([`prometheus`]): Prometheus (Debian's `prometheus`) scrapes agents, analytics, notifier
//!   and both operator replicas: every target `up == 1`; `promtool check metrics` passes on
//!   each endpoint.
//! - 3a ([`loss`]): 30 % ICMP loss into one node → the target Warning/Critical naming the pair,
//!   the loss AlertRule Firing, exactly one firing webhook notification, the alert in
//!   Alertmanager; removing the fault resolves it.
//! - 3b ([`rdma`]): An RDMA port counts symbol errors and flaps → the RDMA AlertRule fires for
//!   that node and port, the onAlert AIAnalysis calls the Bedrock stand-in with an anonymized
//!   prompt and writes findings naming the real node and port.
//! - 3c ([`restart`]): The leader operator pod and one agent pod are killed → all Ready again,
//!   no duplicate children, no repeated notifications.
//! - 3d ([`endpoints`]): An endpoint probe (`spec.endpoints`) from every node to an HTTP server
//!   on the host bridge: up everywhere (`fabricwatch_endpoint_up` in Prometheus); the replies
//!   to one node dropped → the target Critical naming that node, "unreachable from 1 of N
//!   nodes"; resolved.
//! - 5 ([`no_errors`]): No container restarts and no ERROR log lines in the release's pods.
//!
//! The host-side peers (stand-in, Alertmanager, webhook receiver) are in [`peers`].
//!
//! Needs the local cluster (`FABRICWATCH_E2E=1`), the images loaded
//! (`e2e/cluster images --load`), `python3`, Debian's `prometheus` and
//! `prometheus-alertmanager`, and the stand-in binary
//! (`cargo build -p fabricwatch-ai --features testing --bin llm-standin`, or
//! `FABRICWATCH_LLM_STANDIN_BIN`). The fixed host ports (18089 stand-in, 18095 webhook,
//! 18097 endpoint server, 19093 Alertmanager) are the ones `e2e/samples/` names, so one run at a time.

mod endpoints;
mod healthy;
mod loss;
mod no_errors;
mod peers;
mod prometheus;
mod rdma;
mod restart;
mod setup;

use std::time::Duration;

use anyhow::{ensure, Result};
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::helm::Release;
use fabricwatch_tests::{require_cluster, Cluster, LocalCluster, TestNamespace};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;

/// The host bridge of the local cluster, which every pod reaches.
const HOST: &str = "10.78.0.1";
/// The LLM stand-in (`e2e/samples/aianalysis.yaml`).
const STANDIN_PORT: u16 = 18089;
/// The webhook receiver (`e2e/samples/alertrule-loss.yaml`).
const WEBHOOK_PORT: u16 = 18095;
/// Alertmanager (`e2e/samples/alertrule-loss.yaml`).
const ALERTMANAGER_PORT: u16 = 19093;
/// The host HTTP server every agent probes in scenario 3d.
const ENDPOINT_PORT: u16 = 18097;
const READY: Duration = Duration::from_secs(240);
const HEALTHY: Duration = Duration::from_secs(240);
const ALERT: Duration = Duration::from_secs(180);

/// What the stages after the install share.
struct Stack<'a> {
    cluster: &'a Cluster,
    local: &'a LocalCluster,
    ns: &'a TestNamespace,
    /// The Helm release, also the name of the operator's leader Lease.
    release: &'a str,
    /// The operator Deployment, `<release>-fabricwatch`.
    fullname: &'a str,
    /// `(name, InternalIP)` of every Ready node, sorted: `nodes[1]` is fw-n2, node 2 of
    /// `e2e/cluster nodeexec`.
    nodes: Vec<(String, String)>,
}

impl Stack<'_> {
    /// The sample MonitorTarget `fabric`'s API.
    fn mts(&self) -> Api<MonitorTarget> {
        self.ns.api::<MonitorTarget>()
    }

    /// Nodes that must report (`status.nodes.reporting`).
    fn want(&self) -> i64 {
        self.nodes.len() as i64
    }
}

/// The namespace's pods matching `selector` (all with `""`).
async fn pods(ns: &TestNamespace, selector: &str) -> Result<Vec<Pod>> {
    Ok(ns
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_system_on_the_local_cluster() -> Result<()> {
    let cluster = require_cluster!();
    let Some(local) = cluster.local().cloned() else {
        eprintln!("skipped: whole_system_on_the_local_cluster needs the local e2e cluster (host bridge 10.78.0.1)");
        return Ok(());
    };
    let work = std::env::temp_dir().join(format!("fabricwatch-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    // Host-side peers first: the samples point at them.
    let mut peers = peers::Peers::start(&work).await?;

    // ---- Scenario 1: CRDs with kubectl, the chart with Helm's code, everything Ready.
    let crds = setup::apply_crds(&cluster).await?;
    let ns = cluster.namespace("e2e-stack").await?;
    let release = ns.name().to_string();
    let fullname = format!("{release}-fabricwatch");
    let _release = Release::new(&release, ns.name(), cluster.kubeconfig()).kept_on_request();
    setup::install(&cluster, &ns, &crds, &work, &fullname).await?;

    // ---- Scenario 2: the samples; the target Healthy with every node reporting.
    let nodes = healthy::samples_healthy(&cluster, &local, &ns).await?;
    let stack = Stack {
        cluster: &cluster,
        local: &local,
        ns: &ns,
        release: &release,
        fullname: &fullname,
        nodes,
    };

    // ---- Scenario 4: real Prometheus scrapes every component.
    let prometheus = prometheus::scrape_everything(&stack, &work).await?;

    // ---- Scenario 3a: 30 % loss into fw-n2 from fw-n3.
    loss::loss_names_the_pair(&stack, &mut peers).await?;

    // ---- Scenario 3b: symbol errors and a flap on fw-n2's mlx5_0 port 1; the AI explains it.
    rdma::symbol_errors_reach_the_ai(&stack, &peers).await?;

    // ---- Scenario 3c: kill the leader operator pod and one agent pod.
    restart::killed_pods_come_back(&stack, &peers).await?;

    // ---- Scenario 3d: an endpoint probe from every node to a host HTTP server; replies to
    // one node dropped → that node named, the outage "from 1 of N nodes".
    endpoints::one_node_cut_off(&stack, &prometheus.addr).await?;

    // ---- Scenario 5: no restarts, no ERROR lines.
    no_errors::no_restarts_or_errors(&ns).await?;

    // Promtool findings of scenario 4, reported last so one run also exercises the faults.
    ensure!(
        prometheus.lint_failures.is_empty(),
        "{}",
        prometheus.lint_failures.join("\n")
    );
    drop(prometheus);
    drop(peers.alertmanager);
    drop(peers.standin);
    ns.cleanup().await?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
