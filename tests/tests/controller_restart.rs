//! Crash safety and scale of the controller: killed (SIGKILL) in the middle of reconciling
//! many MonitorTargets and restarted, it converges every one with exactly one set of
//! children. The ignored `bench_*` test measures convergence of 1,000 targets against the
//! time the API server needs just to accept the creates, and the controller's RSS.
//!
//! Needs the controller binary (`cargo build -p fabricwatch-operator`, or
//! `FABRICWATCH_CONTROLLER_BIN`) and `FABRICWATCH_E2E=1`. Targets select no node, so the test
//! exercises the controller and the API server, not the kubelets.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::{MonitorTarget, MonitorTargetSpec};
use fabricwatch_tests::{eventually, require_cluster, Cluster, TestNamespace};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::ResourceExt;

/// A controller process, killed when dropped (also when a test fails half-way).
struct Running(Child);

impl Running {
    fn id(&self) -> u32 {
        self.0.id()
    }
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn operator(cluster: &Cluster, ns: &str, tag: &str) -> Result<(Running, PathBuf)> {
    let (running, log, _port) = operator_on_port(cluster, ns, tag)?;
    Ok((running, log))
}

/// Starts a controller; returns it, its log file and the port of its /metrics.
fn operator_on_port(cluster: &Cluster, ns: &str, tag: &str) -> Result<(Running, PathBuf, u16)> {
    let bin = fabricwatch_tests::controller_binary()?;
    let log = std::env::temp_dir().join(format!("fabricwatch-operator-{ns}-{tag}.log"));
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--namespace", ns, "--watch-namespace", ns])
        .args([
            "--manage-central-workloads=false",
            "--leader-election=false",
        ])
        .args(
            std::env::var("FABRICWATCH_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env("KUBECONFIG", cluster.kubeconfig())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()?;
    Ok((Running(child), log, port))
}

fn quiet_spec() -> Result<MonitorTargetSpec> {
    Ok(serde_json::from_value(serde_json::json!({
        "nodeSelector": {"fabricwatch.io/none": "true"}
    }))?)
}

/// Creates `n` MonitorTargets `t-0000..`, 32 requests in flight; returns the elapsed time.
async fn create_targets(ns: &TestNamespace, n: usize) -> Result<Duration> {
    let api = ns.api::<MonitorTarget>();
    let spec = quiet_spec()?;
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let mt = MonitorTarget::new(&format!("t-{i:04}"), spec.clone());
            async move { api.create(&PostParams::default(), &mt).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .context("creating MonitorTargets")?;
    Ok(start.elapsed())
}

/// Number of targets whose status says Accepted=True and Ready (any reason) for generation 1.
async fn converged(ns: &TestNamespace) -> Result<usize> {
    let list = ns
        .api::<MonitorTarget>()
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .iter()
        .filter(|m| {
            m.status.as_ref().is_some_and(|s| {
                s.observed_generation == Some(1)
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Accepted" && c.status == "True")
                    && s.conditions.iter().any(|c| c.type_ == "Ready")
            })
        })
        .count())
}

async fn daemon_sets(ns: &TestNamespace) -> Result<Vec<DaemonSet>> {
    Ok(ns
        .api::<DaemonSet>()
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=fabricwatch-operator"))
        .await?
        .items)
}

/// `VmRSS`, `RssAnon` and `RssFile` of `pid` in KiB, as `"total/anon/file"`: file pages are
/// mostly the binary's code (shared, reclaimable), anonymous pages are the heap.
fn rss_kib(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    // Open sockets: mostly pooled connections to the API server, each with TLS buffers.
    let sockets = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0);
    format!(
        "{}/{}/{} sockets={sockets}",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:")
    )
}

#[tokio::test]
async fn killed_mid_reconcile_converges_without_duplicates() -> Result<()> {
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let ns = cluster.test_namespace().await?;
    let n = 200;
    create_targets(&ns, n).await?;

    let (mut first, log) = operator(&cluster, ns.name(), "first")?;
    // Kill it once some, but not all, targets have children.
    let seen = eventually(
        "the first controller to be mid-way",
        Duration::from_secs(120),
        || async {
            let k = daemon_sets(&ns).await?.len();
            ensure!(k >= 20, "{k} DaemonSets so far");
            Ok(k)
        },
    )
    .await?;
    first.kill();
    let at_kill = daemon_sets(&ns).await?.len();
    eprintln!("killed the controller after {seen}+ DaemonSets ({at_kill} at kill time)");

    let (mut second, log2) = operator(&cluster, ns.name(), "second")?;
    let result = eventually("all targets converge", Duration::from_secs(300), || async {
        let c = converged(&ns).await?;
        ensure!(c == n, "{c}/{n} converged");
        Ok(())
    })
    .await;
    second.kill();
    if result.is_err() {
        for l in [&log, &log2] {
            eprintln!(
                "{}:\n{}",
                l.display(),
                std::fs::read_to_string(l).unwrap_or_default()
            );
        }
    }
    result?;

    let dss = daemon_sets(&ns).await?;
    ensure!(dss.len() == n, "{} DaemonSets for {n} targets", dss.len());
    let mut owners: Vec<String> = dss
        .iter()
        .filter_map(|d| d.owner_references().first().map(|o| o.name.clone()))
        .collect();
    owners.sort();
    owners.dedup();
    ensure!(
        owners.len() == n,
        "DaemonSets owned by {} distinct targets",
        owners.len()
    );
    let cms = ns
        .api::<ConfigMap>()
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=fabricwatch-operator"))
        .await?;
    ensure!(
        cms.items.len() == n,
        "{} ConfigMaps for {n} targets",
        cms.items.len()
    );
    ns.cleanup().await
}

/// The controller's own counters from its /metrics (plain HTTP/1.0 GET, no client needed):
/// the `fabricwatch_controller_{reconciles,child_applies,status_writes}_total` lines.
fn controller_counters(port: u16) -> Result<Vec<String>> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    conn.read_to_string(&mut body)?;
    Ok(body
        .lines()
        .filter(|l| {
            [
                "fabricwatch_controller_reconciles_total{",
                "fabricwatch_controller_child_applies_total{",
                "fabricwatch_controller_status_writes_total{",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect())
}

/// A stored object made into a create body: server-set metadata and owner references
/// (they name the other namespace's targets) removed.
fn recreatable(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "ownerReferences",
            "generation",
            "namespace",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    // A headless Service's clusterIP "None" is fine to send; an allocated one is not.
    if v["spec"]["clusterIP"]
        .as_str()
        .is_some_and(|ip| ip != "None")
    {
        if let Some(spec) = v["spec"].as_object_mut() {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
    }
    v
}

/// The children of `ns`'s targets and each target's status, as sent by the controller.
struct Writes {
    per_target: Vec<(String, Vec<(kube::core::ApiResource, serde_json::Value)>)>,
    status: std::collections::HashMap<String, serde_json::Value>,
}

async fn writes_of(ns: &TestNamespace) -> Result<Writes> {
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};
    use kube::core::{ApiResource, DynamicObject};
    let selector =
        ListParams::default().labels("app.kubernetes.io/managed-by=fabricwatch-operator");
    let mut by_target: std::collections::BTreeMap<String, Vec<(ApiResource, serde_json::Value)>> =
        Default::default();
    let kinds = [
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<DaemonSet>(&()),
    ];
    for ar in kinds {
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(ns.client(), ns.name(), &ar);
        for obj in api.list(&selector).await?.items {
            let Some(owner) = obj.owner_references().first().map(|o| o.name.clone()) else {
                continue;
            };
            by_target
                .entry(owner)
                .or_default()
                .push((ar.clone(), recreatable(serde_json::to_value(&obj)?)));
        }
    }
    let mut status = std::collections::HashMap::new();
    for mt in ns
        .api::<MonitorTarget>()
        .list(&ListParams::default())
        .await?
        .items
    {
        status.insert(mt.name_any(), serde_json::to_value(&mt.status)?);
    }
    Ok(Writes {
        per_target: by_target.into_iter().collect(),
        status,
    })
}

/// The floor: the same writes the controller caused for each target (create the target,
/// create its four children, write its status once), sent straight to the API server by
/// `inflight` concurrent target sequences, with no watch, cache or reconcile in between.
async fn replay(ns: &TestNamespace, writes: &Writes, inflight: usize) -> Result<Duration> {
    use kube::api::{Patch, PatchParams};
    use kube::core::DynamicObject;
    let spec = quiet_spec()?;
    let start = Instant::now();
    futures::stream::iter(writes.per_target.iter())
        .map(|(target, children)| {
            let spec = spec.clone();
            async move {
                let api = ns.api::<MonitorTarget>();
                api.create(&PostParams::default(), &MonitorTarget::new(target, spec))
                    .await?;
                for (ar, body) in children {
                    let api: kube::Api<DynamicObject> =
                        kube::Api::namespaced_with(ns.client(), ns.name(), ar);
                    let obj: DynamicObject = serde_json::from_value(body.clone())?;
                    api.create(&PostParams::default(), &obj).await?;
                }
                if let Some(status) = writes.status.get(target) {
                    let body = serde_json::json!({
                        "apiVersion": "fabricwatch.io/v1alpha1",
                        "kind": "MonitorTarget",
                        "status": status,
                    });
                    api.patch_status(
                        target,
                        &PatchParams::apply("fabricwatch-bench").force(),
                        &Patch::Apply(&body),
                    )
                    .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(inflight)
        .try_collect::<Vec<_>>()
        .await
        .context("replaying the controller's writes")?;
    Ok(start.elapsed())
}

/// `FABRICWATCH_E2E=1 cargo test -p fabricwatch-tests --test controller_restart -- --ignored --nocapture`
/// (set `FABRICWATCH_BENCH_TARGETS` for another count, `FABRICWATCH_BENCH_ARGS` for extra
/// controller flags, e.g. `--concurrency 16`; `FABRICWATCH_BENCH_QUICK=1` for the RSS alone). Prints the numbers recorded in BENCHMARKS.md:
/// `api_accept_s`, the API server accepting the target creates alone; `converge_s`, from the
/// first create until every target has Accepted=True and a Ready condition; `floor_s`, the
/// same writes the controller caused replayed straight to the API server (see [`replay`]);
/// the controller's RSS before and after; its request counters.
#[tokio::test]
#[ignore = "benchmark: run explicitly"]
async fn bench_many_targets() -> Result<()> {
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let n: usize = std::env::var("FABRICWATCH_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    // `FABRICWATCH_BENCH_QUICK=1`: RSS only, without the baseline and the floor replay.
    let quick = std::env::var("FABRICWATCH_BENCH_QUICK").is_ok_and(|v| v == "1");

    // Baseline: the API server accepting n creates with nobody reconciling.
    let accept = if quick {
        Duration::from_secs(1)
    } else {
        let base_ns = cluster.namespace_for_objects("bench-baseline").await?;
        let accept = create_targets(&base_ns, n).await?;
        base_ns.cleanup().await?;
        accept
    };

    let ns = cluster.namespace_for_objects("bench").await?;
    let (mut op, _log, port) = operator_on_port(&cluster, ns.name(), "bench")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(op.id());
    let start = Instant::now();
    create_targets(&ns, n).await?;
    eventually("all targets converge", Duration::from_secs(900), || async {
        let c = converged(&ns).await?;
        ensure!(c == n, "{c}/{n} converged");
        Ok(())
    })
    .await?;
    let converge = start.elapsed();
    let rss_loaded = rss_kib(op.id());
    // Steady state: the burst's garbage given back and its idle API connections closed
    // (idle timeout 30 s, checked every 30 s).
    tokio::time::sleep(Duration::from_secs(60)).await;
    let rss_settled = rss_kib(op.id());
    let counters = controller_counters(port)?;
    op.kill();

    for c in &counters {
        println!("{c}");
    }
    println!(
        "targets={n} api_accept_s={:.2} converge_s={:.2} ratio={:.2} rss_kib_total/anon/file idle={} converged={} settled_60s={}",
        accept.as_secs_f64(),
        converge.as_secs_f64(),
        converge.as_secs_f64() / accept.as_secs_f64(),
        rss_idle,
        rss_loaded,
        rss_settled,
    );

    if quick {
        ns.cleanup().await?;
        return Ok(());
    }
    let writes = writes_of(&ns).await?;
    ensure!(
        writes.per_target.len() == n,
        "{} targets with children",
        writes.per_target.len()
    );
    // Before deleting the targets: their garbage collection would hold up the new
    // namespace's token controller for minutes at 5,000 targets.
    let floor_ns = cluster.namespace_for_objects("bench-floor").await?;
    let floor = replay(&floor_ns, &writes, 32).await?;
    floor_ns.cleanup().await?;
    ns.cleanup().await?;
    println!(
        "targets={n} floor_s={:.2} converge_over_floor={:.2}",
        floor.as_secs_f64(),
        converge.as_secs_f64() / floor.as_secs_f64(),
    );
    Ok(())
}
