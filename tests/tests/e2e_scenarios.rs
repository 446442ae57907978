//! The whole system the way a user meets it, on the local cluster: CRDs applied, the chart
//! installed with Helm's own code (`e2e/helm.py`), the samples from `e2e/samples/` applied, then
//! checked from the outside with real Prometheus, Alertmanager, a webhook receiver and the
//! LLM stand-in, all on the host bridge 10.78.0.1 that pods reach.
//!
//! One test, in stages that share the install (each prints `scenario ...: ok`):
//! - 1: `kubectl apply -f crds/` + Helm install → operator (2 replicas), analytics, notifier Ready.
//! - 2: The sample MonitorTarget → Healthy with every node reporting; `kubectl get mt` columns.
//! - 4: Prometheus (Debian's `prometheus`) scrapes agents, analytics, notifier and both operator
//!   replicas: every target `up == 1`; `promtool check metrics` passes on each endpoint.
//! - 3a: 30 % ICMP loss into one node → the target Warning/Critical naming the pair, the loss
//!   AlertRule Firing, exactly one firing webhook notification, the alert in Alertmanager;
//!   removing the fault resolves it.
//! - 3b: An RDMA port counts symbol errors and flaps → the RDMA AlertRule fires for that node and
//!   port, the onAlert AIAnalysis calls the Bedrock stand-in with an anonymized prompt and
//!   writes findings naming the real node and port.
//! - 3c: The leader operator pod and one agent pod are killed → all Ready again, no duplicate
//!   children, no repeated notifications.
//! - 3d: An endpoint probe (`spec.endpoints`) from every node to an HTTP server on the host
//!   bridge: up everywhere (`fabricwatch_endpoint_up` in Prometheus); the replies to one node
//!   dropped → the target Critical naming that node, "unreachable from 1 of N nodes"; resolved.
//! - 5: No container restarts and no ERROR log lines in the release's pods.
//!
//! Needs the local cluster (`FABRICWATCH_E2E=1`), the images loaded
//! (`e2e/cluster images --load`), `python3`, Debian's `prometheus` and
//! `prometheus-alertmanager`, and the stand-in binary
//! (`cargo build -p fabricwatch-ai --features testing --bin llm-standin`, or
//! `FABRICWATCH_LLM_STANDIN_BIN`). The fixed host ports (18089 stand-in, 18095 webhook,
//! 18097 endpoint server, 19093 Alertmanager) are the ones `e2e/samples/` names, so one run at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use fabricwatch_tests::{
    conditions, eventually, repo_root, require_cluster, wait_for, Cluster, LocalCluster,
    TestNamespace,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use kube::api::{DeleteParams, ListParams, LogParams};
use kube::ResourceExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "10.78.0.1";
const STANDIN_PORT: u16 = 18089;
const WEBHOOK_PORT: u16 = 18095;
const ALERTMANAGER_PORT: u16 = 19093;
/// The host HTTP server every agent probes in scenario 3d.
const ENDPOINT_PORT: u16 = 18097;
const READY: Duration = Duration::from_secs(240);
const HEALTHY: Duration = Duration::from_secs(240);
const ALERT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Processes and commands

/// A host process started by the test, killed (by its own pid) on drop.
struct HostProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl HostProcess {
    fn start(name: &'static str, dir: &Path, cmd: &mut Command) -> Result<HostProcess> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(HostProcess { name, child, log })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    match cluster.local() {
        Some(local) => {
            let mut all = vec!["kubectl"];
            all.extend_from_slice(args);
            local.run_script(&all)
        }
        None => run(Command::new("kubectl")
            .env("KUBECONFIG", cluster.kubeconfig())
            .args(args)),
    }
}

fn helm(cluster: &Cluster, args: &[&str]) -> Result<String> {
    run(Command::new("python3")
        .arg(repo_root().join("e2e/helm.py"))
        .env("KUBECONFIG", cluster.kubeconfig())
        .args(args))
}

/// The Helm release; uninstalled on drop (its ClusterRoles outlive the namespace otherwise).
struct Release {
    name: String,
    namespace: String,
    kubeconfig: PathBuf,
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::env::var("FABRICWATCH_KEEP").is_ok_and(|v| v == "1") {
            return;
        }
        let out = Command::new("python3")
            .arg(repo_root().join("e2e/helm.py"))
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["uninstall", "--release", &self.name, "-n", &self.namespace])
            .output();
        if let Ok(o) = out {
            if !o.status.success() {
                eprintln!(
                    "helm uninstall {}: {}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

/// An iptables rule inside a node's network namespace, deleted on drop.
struct NodeRule<'a> {
    local: &'a LocalCluster,
    node: usize,
    spec: Vec<String>,
    active: bool,
}

impl<'a> NodeRule<'a> {
    fn insert(local: &'a LocalCluster, node: usize, spec: &[&str]) -> Result<NodeRule<'a>> {
        let n = node.to_string();
        let mut args = vec!["nodeexec", &n, "iptables", "-I", "INPUT"];
        args.extend_from_slice(spec);
        local.run_script(&args)?;
        Ok(NodeRule {
            local,
            node,
            spec: spec.iter().map(|s| s.to_string()).collect(),
            active: true,
        })
    }

    fn remove(&mut self) -> Result<()> {
        if !self.active {
            return Ok(());
        }
        let n = self.node.to_string();
        let mut args = vec!["nodeexec", n.as_str(), "iptables", "-D", "INPUT"];
        args.extend(self.spec.iter().map(String::as_str));
        self.local.run_script(&args)?;
        self.active = false;
        Ok(())
    }
}

impl Drop for NodeRule<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("removing the iptables rule on node {}: {e:#}", self.node);
        }
    }
}

/// Files of a node's RDMA fixture changed by the test; the old contents come back on drop.
struct FixtureEdit {
    saved: Vec<(PathBuf, String)>,
}

impl FixtureEdit {
    fn new() -> Self {
        FixtureEdit { saved: Vec::new() }
    }

    fn write(&mut self, path: &Path, text: &str) -> Result<()> {
        if !self.saved.iter().any(|(p, _)| p == path) {
            let old = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            self.saved.push((path.to_path_buf(), old));
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn add(&mut self, path: &Path, delta: u64) -> Result<u64> {
        let now: u64 = std::fs::read_to_string(path)?
            .trim()
            .parse()
            .with_context(|| format!("{} is not a counter", path.display()))?;
        self.write(path, &format!("{}\n", now + delta))?;
        Ok(now + delta)
    }
}

impl Drop for FixtureEdit {
    fn drop(&mut self) {
        for (p, text) in self.saved.drain(..).rev() {
            if let Err(e) = std::fs::write(&p, text) {
                eprintln!("restoring {}: {e}", p.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP on the host

/// `GET http://addr/path` with a plain HTTP/1.0 exchange: (status, body).
async fn http(method: &str, addr: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .with_context(|| format!("{method} http://{addr}{path} timed out"))?
        .with_context(|| format!("{method} http://{addr}{path}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status from {addr}{path}: {head}"))?;
    Ok((status, body.to_string()))
}

async fn get_json(addr: &str, path: &str) -> Result<Value> {
    let (status, body) = http("GET", addr, path, None).await?;
    ensure!(status == 200, "GET {addr}{path}: {status} {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {addr}{path}: not JSON: {body}"))
}

/// A webhook receiver: records the JSON body of every POST, answers 200.
#[derive(Clone, Default)]
struct Webhook {
    received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    async fn start(addr: &str) -> Result<(Webhook, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the webhook receiver on {addr}"))?;
        let hook = Webhook::default();
        let h = hook.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                if let Ok(v) = serde_json::from_str::<Value>(&body[..len]) {
                                    if let Ok(mut r) = h.received.lock() {
                                        r.push(v);
                                    }
                                }
                                let _ = s
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Ok((hook, task))
    }

    fn firing(&self, rule: &str) -> Vec<Value> {
        self.received
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|v| v["status"] == "firing" && v.to_string().contains(rule))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster helpers

fn status(obj: &impl serde::Serialize) -> Value {
    serde_json::to_value(obj)
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

async fn pods(ns: &TestNamespace, selector: &str) -> Result<Vec<Pod>> {
    Ok(ns
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

fn pod_ip(p: &Pod) -> Option<String> {
    p.status.as_ref()?.pod_ip.clone()
}

/// Every metrics endpoint of the release: (job, host:port).
async fn endpoints(ns: &TestNamespace) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (job, selector, port) in [
        ("operator", "app.kubernetes.io/component=operator", 8080),
        (
            "analytics",
            "app.kubernetes.io/name=fabricwatch,app.kubernetes.io/component=analytics",
            8080,
        ),
        (
            "notifier",
            "app.kubernetes.io/name=fabricwatch,app.kubernetes.io/component=notifier",
            8080,
        ),
        ("agent", "app.kubernetes.io/component=agent", 9470),
    ] {
        for p in pods(ns, selector).await? {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ip = pod_ip(&p).with_context(|| format!("pod {} has no IP", p.name_any()))?;
            out.push((job.to_string(), format!("{ip}:{port}")));
        }
    }
    Ok(out)
}

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

async fn wait_all_ready(ns: &TestNamespace, fullname: &str) -> Result<()> {
    for d in [fullname, "fabricwatch-analytics", "fabricwatch-notifier"] {
        // The controller creates the central Deployments a moment after it starts.
        eventually(&format!("Deployment {d} exists"), READY, || async {
            ns.api::<Deployment>()
                .get(d)
                .await
                .map(|_| ())
                .map_err(Into::into)
        })
        .await?;
        wait_for(
            &ns.api::<Deployment>(),
            d,
            conditions::deployment_ready(),
            READY,
        )
        .await?;
    }
    Ok(())
}

fn mt_health(mt: &MonitorTarget) -> String {
    status(mt)["health"].as_str().unwrap_or("").to_string()
}

/// Healthy, or Warning only because the host CPU is busy. The local cluster's nodes are
/// network namespaces of one machine: each reads the machine's `/proc/stat`, which the test
/// does not control (a build next to it saturates it), so a host CPU warning says nothing about
/// the faults the scenarios inject and remove.
fn healthy_but_for_shared_cpu(mt: &MonitorTarget) -> bool {
    let h = mt_health(mt);
    h == "Healthy"
        || (h == "Warning"
            && status(mt)["problems"].as_array().is_some_and(|ps| {
                ps.iter().all(|p| {
                    p["component"] == "host"
                        && p["message"].as_str().is_some_and(|m| m.starts_with("CPU "))
                })
            }))
}

/// Problems other than host ones, and suspects, as one string (to look for node names).
fn network_findings(mt: &MonitorTarget) -> String {
    let s = status(mt);
    let problems: Vec<&Value> = s["problems"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["component"] != "host").collect())
        .unwrap_or_default();
    format!(
        "{}{}",
        serde_json::to_string(&problems).unwrap_or_default(),
        s["suspects"]
    )
}

fn rule_state(r: &AlertRule) -> String {
    status(r)["state"].as_str().unwrap_or("").to_string()
}

// ---------------------------------------------------------------------------------------------

fn standin_binary() -> Result<PathBuf> {
    let path = std::env::var_os("FABRICWATCH_LLM_STANDIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"))
                .join("debug/llm-standin")
        });
    ensure!(
        path.exists(),
        "{} missing: run `cargo build -p fabricwatch-ai --features testing --bin llm-standin` or set FABRICWATCH_LLM_STANDIN_BIN",
        path.display()
    );
    Ok(path)
}

fn which(bin: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{bin} not found on PATH (apt-get install prometheus prometheus-alertmanager)")
        })
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
    let standin = HostProcess::start(
        "llm-standin",
        &work,
        Command::new(standin_binary()?).args(["--listen", &format!("{HOST}:{STANDIN_PORT}")]),
    )?;
    let am_config = work.join("alertmanager.yml");
    std::fs::write(
        &am_config,
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )?;
    let mut alertmanager = HostProcess::start(
        "alertmanager",
        &work,
        Command::new(which("prometheus-alertmanager")?).args([
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", work.join("am-data").display()),
            format!("--web.listen-address={HOST}:{ALERTMANAGER_PORT}"),
            "--cluster.listen-address=".to_string(),
        ]),
    )?;
    let (webhook, _webhook_task) = Webhook::start(&format!("{HOST}:{WEBHOOK_PORT}")).await?;
    let standin_addr = format!("{HOST}:{STANDIN_PORT}");
    let am_addr = format!("{HOST}:{ALERTMANAGER_PORT}");
    eventually(
        "the stand-in and Alertmanager serve",
        Duration::from_secs(30),
        || async {
            http("GET", &standin_addr, "/_standin/requests", None).await?;
            let (s, _) = http("GET", &am_addr, "/-/ready", None).await?;
            ensure!(s == 200, "alertmanager not ready: {s}");
            Ok(())
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nalertmanager log:\n{}\nstand-in log:\n{}",
            alertmanager.log_tail(),
            standin.log_tail()
        )
    })?;

    // ---- Scenario 1: CRDs with kubectl, the chart with Helm's code, everything Ready.
    // Servers older than 1.23 get the CRDs without CEL rules, from kubectl and Helm alike.
    let crds = fabricwatch_tests::crd_dir(&cluster.client()).await?;
    let crds = crds.to_string_lossy().into_owned();
    kubectl(&cluster, &["apply", "-f", &crds])?;
    let ns = cluster.namespace("e2e-stack").await?;
    let release = ns.name().to_string();
    let fullname = format!("{release}-fabricwatch");
    let _release = Release {
        name: release.clone(),
        namespace: ns.name().to_string(),
        kubeconfig: cluster.kubeconfig().to_path_buf(),
    };
    let local_values = repo_root().join("e2e/values-local.yaml");
    // What `helm template` renders for this cluster passes the API server's own validation.
    let rendered = helm(
        &cluster,
        &[
            "template",
            "--cluster",
            "--crds-dir",
            &crds,
            "-f",
            &local_values.to_string_lossy(),
            "--release",
            &release,
            "-n",
            ns.name(),
        ],
    )?;
    let rendered_file = work.join("rendered.yaml");
    std::fs::write(&rendered_file, &rendered)?;
    kubectl(
        &cluster,
        &[
            "apply",
            "--dry-run=server",
            "-n",
            ns.name(),
            "-f",
            &rendered_file.to_string_lossy(),
        ],
    )
    .context("helm template output rejected by a server-side dry run")?;
    helm(
        &cluster,
        &[
            "install",
            "--crds-dir",
            &crds,
            "-f",
            &local_values.to_string_lossy(),
            "--release",
            &release,
            "-n",
            ns.name(),
            // Other tests' namespaces may hold MonitorTargets too: watch only this one.
            "--set",
            &format!("operator.watchNamespace={}", ns.name()),
            "--set",
            &format!("operator.leaderElection.leaseName={release}"),
            "--wait",
            "--timeout",
            "240",
        ],
    )?;
    wait_all_ready(&ns, &fullname).await?;
    eprintln!("scenario 1 (CRDs; helm template passes server-side dry run; Helm install; operator/analytics/notifier Ready): ok");

    // ---- Scenario 2: the samples; the target Healthy with every node reporting.
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
                    && status(m)["nodes"]["reporting"].as_i64() == Some(want)
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
            let table = kubectl(&cluster, &["get", "monitortargets", "-n", ns.name()])?;
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
        status(&mt)["summary"]
    );

    // ---- Scenario 4: real Prometheus scrapes every component.
    let targets = endpoints(&ns).await?;
    ensure!(
        targets.iter().filter(|(j, _)| j == "agent").count() == nodes.len()
            && targets.iter().filter(|(j, _)| j == "operator").count() == 2,
        "unexpected endpoints: {targets:?}"
    );
    let mut jobs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (j, t) in &targets {
        jobs.entry(j.as_str()).or_default().push(t.as_str());
    }
    let mut prom_cfg =
        String::from("global: {scrape_interval: 5s, scrape_timeout: 4s}\nscrape_configs:\n");
    for (j, ts) in &jobs {
        prom_cfg.push_str(&format!(
            "  - job_name: {j}\n    static_configs: [{{targets: {ts:?}}}]\n"
        ));
    }
    let prom_file = work.join("prometheus.yml");
    std::fs::write(&prom_file, &prom_cfg)?;
    run(Command::new(which("promtool")?).args(["check", "config", &prom_file.to_string_lossy()]))?;
    let prom_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let prom_addr = format!("127.0.0.1:{prom_port}");
    let mut prometheus = HostProcess::start(
        "prometheus",
        &work,
        Command::new(which("prometheus")?).args([
            format!("--config.file={}", prom_file.display()),
            format!("--storage.tsdb.path={}", work.join("prom-data").display()),
            format!("--web.listen-address={prom_addr}"),
        ]),
    )?;
    let up = eventually(
        "every Prometheus target up == 1",
        Duration::from_secs(90),
        || async {
            let v = get_json(&prom_addr, "/api/v1/query?query=up").await?;
            let res = v["data"]["result"].as_array().cloned().unwrap_or_default();
            ensure!(
                res.len() == targets.len(),
                "{} of {} series: {res:?}",
                res.len(),
                targets.len()
            );
            let down: Vec<_> = res.iter().filter(|r| r["value"][1] != "1").collect();
            ensure!(down.is_empty(), "targets down: {down:?}");
            Ok(res.len())
        },
    )
    .await;
    prometheus.ensure_running()?;
    let up =
        up.map_err(|e| anyhow::anyhow!("{e:#}\nprometheus log:\n{}", prometheus.log_tail()))?;
    let promtool = which("promtool")?;
    let mut lint_failures = Vec::new();
    for (job, t) in &targets {
        let (status_code, body) = http("GET", t, "/metrics", None).await?;
        ensure!(status_code == 200, "{job} {t}/metrics: {status_code}");
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("promtool stdin")?
            .write_all_sync(body.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            lint_failures.push(format!(
                "promtool check metrics failed for {job} {t}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // Reported at the end, so one run also exercises the fault scenarios.
    if lint_failures.is_empty() {
        eprintln!(
            "scenario 4 (promtool check metrics clean on all {} endpoints): ok",
            targets.len()
        );
    } else {
        eprintln!(
            "scenario 4 (promtool): FAILED\n{}",
            lint_failures.join("\n")
        );
    }
    eprintln!("scenario 4 (Prometheus: {up} targets up == 1): ok");

    // ---- Scenario 3a: 30 % loss into fw-n2 from fw-n3.
    let rules = ns.api::<AlertRule>();
    let (a, b) = (nodes[1].clone(), nodes[2].clone());
    let mut loss = NodeRule::insert(
        &local,
        2,
        &[
            "-p",
            "icmp",
            "-s",
            &b.1,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.3",
            "-j",
            "DROP",
        ],
    )?;
    let mt = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let h = mt_health(m);
                // The pair is a link suspect now, its pair problems grouped under it.
                let p = network_findings(m);
                // Each end by node name or address.
                (h == "Warning" || h == "Critical")
                    && (p.contains(&a.0) || p.contains(&a.1))
                    && (p.contains(&b.0) || p.contains(&b.1))
            })
        },
        ALERT,
    )
    .await?;
    eprintln!(
        "target under loss: {} problems {}",
        mt_health(&mt),
        status(&mt)["problems"]
    );
    wait_for(
        &rules,
        "fabric-loss",
        |o: Option<&AlertRule>| o.is_some_and(|r| rule_state(r) == "Firing"),
        ALERT,
    )
    .await?;
    eventually(
        "one firing webhook notification",
        Duration::from_secs(120),
        || async {
            let n = webhook.firing("fabric-loss").len();
            ensure!(n >= 1, "{n} firing notifications");
            Ok(())
        },
    )
    .await?;
    eventually(
        "the alert in Alertmanager",
        Duration::from_secs(60),
        || async {
            let alerts = get_json(&am_addr, "/api/v2/alerts").await?;
            ensure!(
                alerts.to_string().contains("fabric-loss"),
                "alerts: {alerts}"
            );
            Ok(())
        },
    )
    .await?;
    // Grouping and cooldown: no second firing notification while the fault lasts.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let firing = webhook.firing("fabric-loss");
    ensure!(
        firing.len() == 1,
        "expected exactly one firing notification, got {}: {firing:#?}",
        firing.len()
    );
    ensure!(
        !firing[0].to_string().contains("{{"),
        "annotation templates not expanded: {}",
        firing[0]["commonAnnotations"]
    );
    loss.remove()?;
    wait_for(
        &rules,
        "fabric-loss",
        |o: Option<&AlertRule>| o.is_some_and(|r| rule_state(r) == "Inactive"),
        ALERT,
    )
    .await?;
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(healthy_but_for_shared_cpu),
        ALERT,
    )
    .await?;
    alertmanager.ensure_running()?;
    eprintln!("scenario 3a (30 % loss {}<->{}: target degraded naming the pair, rule Firing, 1 webhook, Alertmanager; resolved): ok", a.0, b.0);

    // ---- Scenario 3b: symbol errors and a flap on fw-n2's mlx5_0 port 1; the AI explains it.
    // Names are registered sorted, so fw-n2 is node-2 in the anonymized prompt.
    let answer = serde_json::json!({"findings": [{
        "severity": "critical",
        "title": "Symbol errors and a link flap on node-2 mlx5_0 port 1",
        "summary": "node-2 mlx5_0 port 1 counts symbol errors and went down once: a failing cable or transceiver.",
        "evidence": ["symbol_error rising on node-2 mlx5_0 port 1", "link_downed incremented"],
        "affected": ["node-2"],
        "recommendation": "Reseat or replace the cable of node-2 mlx5_0 port 1.",
        "confidence": 0.8
    }]})
    .to_string();
    let (s, body) = http(
        "PUT",
        &standin_addr,
        "/_standin/default",
        Some(&serde_json::json!({"answer": answer}).to_string()),
    )
    .await?;
    ensure!((200..300).contains(&s), "stand-in default: {s} {body}");
    http("DELETE", &standin_addr, "/_standin/requests", None).await?;
    let port_dir = local
        .node_fixture_sys(2)
        .join("class/infiniband/mlx5_0/ports/1");
    let mut fixture = FixtureEdit::new();
    fixture.add(&port_dir.join("counters/link_downed"), 1)?;
    fixture.write(&port_dir.join("state"), "1: DOWN\n")?;
    fixture.write(&port_dir.join("phys_state"), "3: Disabled\n")?;
    let errors = {
        let dir = port_dir.clone();
        tokio::spawn(async move {
            let mut edit = FixtureEdit::new();
            // Only this task touches symbol_error, so the two FixtureEdits restore disjoint
            // files whatever order they are dropped in.
            for _ in 0..90u32 {
                if edit.add(&dir.join("counters/symbol_error"), 40).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            edit
        })
    };
    // The link comes back after about one agent interval.
    tokio::time::sleep(Duration::from_secs(12)).await;
    fixture.write(&port_dir.join("state"), "4: ACTIVE\n")?;
    fixture.write(&port_dir.join("phys_state"), "5: LinkUp\n")?;
    let rule = wait_for(
        &rules,
        "rdma-symbol-errors",
        |o: Option<&AlertRule>| {
            o.is_some_and(|r| {
                let f = status(r)["firing"].to_string();
                rule_state(r) == "Firing" && f.contains(&a.0) && f.contains("mlx5_0")
            })
        },
        ALERT,
    )
    .await?;
    eprintln!("rdma rule firing: {}", status(&rule)["firing"]);
    let aia = wait_for(
        &ns.api::<AIAnalysis>(),
        "fabric-ai",
        |o: Option<&AIAnalysis>| {
            o.is_some_and(|x| {
                status(x)["findings"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
            })
        },
        ALERT,
    )
    .await?;
    let findings = status(&aia)["findings"].to_string();
    ensure!(
        findings.contains(&a.0) && findings.contains("mlx5_0") && findings.contains("port 1"),
        "findings do not name {} mlx5_0 port 1: {findings}",
        a.0
    );
    ensure!(
        !findings.contains("node-2"),
        "findings still carry the pseudonym: {findings}"
    );
    let reqs = get_json(&standin_addr, "/_standin/requests")
        .await?
        .to_string();
    ensure!(
        reqs.contains("mlx5_0"),
        "the prompt does not mention mlx5_0"
    );
    ensure!(
        !reqs.contains(&a.0) && !reqs.contains(&a.1),
        "the prompt leaks the real node name or IP"
    );
    // Aborting the task drops its FixtureEdit, which puts symbol_error back.
    errors.abort();
    let _ = errors.await;
    drop(fixture);
    eprintln!("scenario 3b (RDMA symbol errors + flap on {} mlx5_0/1: rule Firing, AI findings name it, prompt anonymized): ok", a.0);

    // ---- Scenario 3c: kill the leader operator pod and one agent pod.
    let before = children(&ns).await?;
    let notified = webhook.received.lock().map(|r| r.len()).unwrap_or(0);
    let op_pods = pods(&ns, "app.kubernetes.io/component=operator").await?;
    let lease: Value = serde_json::from_str(&kubectl(
        &cluster,
        &["get", "lease", &release, "-n", ns.name(), "-o", "json"],
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
    let agent = pods(&ns, "app.kubernetes.io/component=agent").await?;
    let agent = agent.first().context("no agent pod")?.name_any();
    ns.api::<Pod>().delete(&agent, &dp).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    wait_all_ready(&ns, &fullname).await?;
    wait_for(
        &ns.api::<DaemonSet>(),
        "fabric-agent",
        conditions::daemonset_ready(),
        READY,
    )
    .await?;
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                healthy_but_for_shared_cpu(m)
                    && status(m)["nodes"]["reporting"].as_i64() == Some(want)
            })
        },
        HEALTHY,
    )
    .await?;
    // A full central-workload round (60 s) must not add anything.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let after = children(&ns).await?;
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

    // ---- Scenario 3d: an endpoint probe from every node to a host HTTP server; replies to
    // one node dropped → that node named, the outage "from 1 of N nodes".
    let endpoint_server = TcpListener::bind((HOST, ENDPOINT_PORT)).await?;
    let serving = tokio::spawn(async move {
        while let Ok((mut s, _)) = endpoint_server.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let url = format!("http://{HOST}:{ENDPOINT_PORT}/healthz");
    mts.patch(
        "fabric",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"endpoints": [
            {"name": "host-http", "http": {"url": url}, "timeout": "2s", "slow": "1s"}
        ]}})),
    )
    .await?;
    // Every agent probes it and reports it up: the target stays Healthy with the endpoint
    // in every node's report (checked through the agents' metrics in Prometheus).
    eventually(
        "fabricwatch_endpoint_up == 1 from every node",
        ALERT,
        || async {
            let q = get_json(
                &prom_addr,
                "/api/v1/query?query=fabricwatch_endpoint_up%7Bendpoint%3D%22host-http%22%7D",
            )
            .await?;
            let ups: Vec<String> = q["data"]["result"]
                .as_array()
                .map(|r| r.iter().map(|s| s["value"][1].to_string()).collect())
                .unwrap_or_default();
            ensure!(
                ups.len() == nodes.len() && ups.iter().all(|v| v == "\"1\""),
                "endpoint_up series: {ups:?}"
            );
            Ok(())
        },
    )
    .await?;
    // nodes[1] is fw-n2: the local cluster numbers its nodes from 1 (as in 3a).
    let (blocked, _) = nodes[1].clone();
    let port = ENDPOINT_PORT.to_string();
    let mut block = NodeRule::insert(
        &local,
        2,
        &["-p", "tcp", "-s", HOST, "--sport", &port, "-j", "DROP"],
    )?;
    let mt = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let p = status(m)["problems"].to_string();
                mt_health(m) == "Critical"
                    && p.contains(&format!("\"node\":\"{blocked}\""))
                    && p.contains("endpoint host-http")
                    && p.contains(&format!("unreachable from 1 of {} nodes", nodes.len()))
            })
        },
        ALERT,
    )
    .await?;
    eprintln!(
        "target with one node's path blocked: {}",
        status(&mt)["problems"]
    );
    block.remove()?;
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(|m| mt_health(m) == "Healthy"),
        ALERT,
    )
    .await?;
    mts.patch(
        "fabric",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"endpoints": null}})),
    )
    .await?;
    serving.abort();
    eprintln!("scenario 3d (endpoint probe from every node; {blocked}'s replies dropped → named, 1 of {}; resolved): ok", nodes.len());

    // ---- Scenario 5: no restarts, no ERROR lines.
    let mut problems = Vec::new();
    for p in pods(&ns, "").await? {
        let name = p.name_any();
        for cs in p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
        {
            if cs.restart_count > 0 {
                problems.push(format!("{name}/{}: {} restarts", cs.name, cs.restart_count));
            }
        }
        let logs = ns
            .api::<Pod>()
            .logs(&name, &LogParams::default())
            .await
            .unwrap_or_default();
        for l in logs
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains(" ERROR "))
        {
            problems.push(format!("{name}: {l}"));
        }
    }
    ensure!(
        problems.is_empty(),
        "restarts or ERROR lines:\n{}",
        problems.join("\n")
    );
    eprintln!("scenario 5 (no restarts, no ERROR log lines): ok");

    ensure!(lint_failures.is_empty(), "{}", lint_failures.join("\n"));
    drop(prometheus);
    drop(alertmanager);
    drop(standin);
    ns.cleanup().await?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// `std::io::Write` for a child's stdin, named apart from tokio's `AsyncWriteExt`.
trait WriteAllSync {
    fn write_all_sync(self, buf: &[u8]) -> std::io::Result<()>;
}

impl WriteAllSync for std::process::ChildStdin {
    fn write_all_sync(mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self, buf)
    }
}
