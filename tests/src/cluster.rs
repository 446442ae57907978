//! Connecting to the test cluster (and starting the local one when needed).

use crate::namespace::TestNamespace;
use crate::{
    DEFAULT_STATE_DIR, ENV_E2E, ENV_KUBECONFIG, ENV_NODES, ENV_STATE_DIR, ENV_TEST_IMAGE,
    TESTBOX_IMAGE,
};
use anyhow::{anyhow, bail, Context, Result};
use k8s_openapi::api::core::v1::Node;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Whether cluster tests are enabled: `FABRICWATCH_E2E` is `1`/`true`/`yes`, or
/// `FABRICWATCH_E2E_KUBECONFIG` names a cluster.
pub fn e2e_enabled() -> bool {
    let on = std::env::var(ENV_E2E)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false);
    on || external_kubeconfig().is_some()
}

fn external_kubeconfig() -> Option<PathBuf> {
    std::env::var_os(ENV_KUBECONFIG)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The repository root (the workspace folder holding `e2e/` and `crds/`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The `fabricwatch-controller` binary the controller tests run as a process (what the chart
/// runs): `FABRICWATCH_CONTROLLER_BIN`, else
/// `<CARGO_TARGET_DIR or repo/target>/debug/fabricwatch-controller`.
///
/// # Errors
/// When that file does not exist, saying how to build it.
pub fn controller_binary() -> Result<PathBuf> {
    let path = std::env::var_os("FABRICWATCH_CONTROLLER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"))
                .join("debug")
                .join("fabricwatch-controller")
        });
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: run `cargo build -p fabricwatch-operator` or set FABRICWATCH_CONTROLLER_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// The busybox-like image for helper pods: `FABRICWATCH_TEST_IMAGE`, else the local
/// cluster's `localhost/fabricwatch-testbox:dev`.
pub fn test_image() -> String {
    std::env::var(ENV_TEST_IMAGE)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| TESTBOX_IMAGE.to_string())
}

/// Name of the running test (libtest names each test's thread after it), for messages and
/// namespace names.
pub(crate) fn current_test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(|n| n.rsplit("::").next().unwrap_or(n).to_string())
        .unwrap_or_else(|| "test".to_string())
}

/// The local cluster started by `e2e/cluster` (absent for an external cluster).
#[derive(Clone, Debug)]
pub struct LocalCluster {
    state_dir: PathBuf,
}

impl LocalCluster {
    /// The state folder (`FABRICWATCH_E2E_DIR`, default `/var/tmp/fabricwatch-e2e`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Folder with the component logs (`etcd.log`, `kube-apiserver.log`, `fw-n1-kubelet.log`, ...).
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// Host path of node `n`'s (1-based, node `fw-n<n>`) writable copy of the RoCE sysfs
    /// fixture. Pods on that node see it at [`crate::FIXTURE_MOUNT`] through a `hostPath`;
    /// write a file here to change, say, a counter on that one node.
    pub fn node_fixture_sys(&self, n: usize) -> PathBuf {
        self.state_dir.join(format!("n{n}")).join("fixture-sys")
    }

    /// Folder where `e2e/cluster images` writes the project's image archives
    /// (`$FABRICWATCH_CACHE/images`, default `/var/cache/fabricwatch/images`); nodes import
    /// every archive there when they start.
    pub fn images_dir(&self) -> PathBuf {
        std::env::var_os("FABRICWATCH_CACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/fabricwatch"))
            .join("images")
    }

    /// Run `e2e/cluster ARGS...` and return its stdout.
    pub fn run_script(&self, args: &[&str]) -> Result<String> {
        run_cluster_script(&self.state_dir, args)
    }
}

/// A connection to the cluster under test.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    config: Config,
    kubeconfig: PathBuf,
    local: Option<LocalCluster>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kubeconfig", &self.kubeconfig)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

fn state_dir() -> PathBuf {
    std::env::var_os(ENV_STATE_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn run_cluster_script(state: &Path, args: &[&str]) -> Result<String> {
    let script = repo_root().join("e2e").join("cluster");
    let out = Command::new(&script)
        .args(args)
        .env(ENV_STATE_DIR, state)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}); its logs are in {}/logs",
            script.display(),
            args.join(" "),
            out.status,
            state.display()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start the local cluster once per process (`e2e/cluster up` is itself idempotent and
/// serialised by a file lock, so several test binaries may do this at the same time).
fn ensure_local_cluster(state: &Path) -> Result<()> {
    static UP: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    UP.get_or_init(|| {
        let nodes = std::env::var(ENV_NODES)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::fs::read_to_string(state.join("nodes"))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "3".to_string());
        eprintln!(
            "fabricwatch-tests: ensuring the local cluster is up (e2e/cluster up --nodes {nodes})"
        );
        run_cluster_script(state, &["up", "--nodes", &nodes])
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(|e| anyhow!("the local cluster could not be started: {e}"))
}

impl Cluster {
    /// Connect to the cluster under test: `FABRICWATCH_E2E_KUBECONFIG` if set, else the
    /// local cluster (started with `e2e/cluster up` if it is not up yet).
    pub async fn connect() -> Result<Cluster> {
        // Built with the whole workspace, rustls has both the `ring` (kube) and `aws-lc-rs`
        // (AWS SDK) providers compiled in and cannot choose one by itself; pick the one the
        // operator binary uses. A provider installed earlier by the test stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (kubeconfig, local) = match external_kubeconfig() {
            Some(path) => (path, None),
            None => {
                let state = state_dir();
                let s = state.clone();
                tokio::task::spawn_blocking(move || ensure_local_cluster(&s))
                    .await
                    .context("cluster start-up task failed")??;
                (
                    state.join("kubeconfig"),
                    Some(LocalCluster { state_dir: state }),
                )
            }
        };
        let kc = Kubeconfig::read_from(&kubeconfig)
            .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading kubeconfig {}", kubeconfig.display()))?;
        let client = Client::try_from(config.clone()).context("building the Kubernetes client")?;
        client.apiserver_version().await.with_context(|| {
            format!(
                "the cluster of {} does not answer (is it up? `e2e/cluster status`)",
                kubeconfig.display()
            )
        })?;
        Ok(Cluster {
            client,
            config,
            kubeconfig,
            local,
        })
    }

    /// [`Cluster::connect`] when cluster tests are enabled, else print why the current
    /// test is skipped and return `None`. Used by [`crate::require_cluster!`].
    pub async fn connect_if_enabled() -> Result<Option<Cluster>> {
        if !e2e_enabled() {
            eprintln!(
                "skipped: {}: needs a cluster; set {ENV_E2E}=1 (local cluster, root) or \
                 {ENV_KUBECONFIG}=<kubeconfig> (or run e2e/test-all)",
                current_test_name()
            );
            return Ok(None);
        }
        Cluster::connect().await.map(Some)
    }

    /// A client for this test. Create it in the test's own runtime: `#[tokio::test]` runs
    /// each test on its own runtime, so do not share clients between tests.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The client configuration (to build more clients, e.g. in another runtime).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The admin kubeconfig of the cluster (for `kubectl --kubeconfig`, or for components
    /// a test starts as processes).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The local `e2e/cluster` cluster, or `None` for an external one.
    pub fn local(&self) -> Option<&LocalCluster> {
        self.local.as_ref()
    }

    /// A fresh namespace named after `prefix` (see [`TestNamespace`]).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        TestNamespace::create(self.client(), self.config.clone(), prefix).await
    }

    /// A fresh namespace for API objects only (no wait for its default ServiceAccount).
    pub async fn namespace_for_objects(&self, prefix: &str) -> Result<TestNamespace> {
        TestNamespace::create_for_objects(self.client(), self.config.clone(), prefix).await
    }

    /// A fresh namespace named after the running test.
    pub async fn test_namespace(&self) -> Result<TestNamespace> {
        self.namespace(&current_test_name()).await
    }

    /// Apply every CRD in `crds/*.yaml` and wait until all are Established.
    pub async fn install_crds(&self) -> Result<Vec<String>> {
        crate::crds::install_crds(&self.client).await
    }

    /// `(name, InternalIP)` of every Ready node, sorted by name.
    pub async fn ready_nodes(&self) -> Result<Vec<(String, String)>> {
        let nodes: Api<Node> = Api::all(self.client());
        let mut out = Vec::new();
        for node in nodes.list(&Default::default()).await?.items {
            let status = node.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = status
                .addresses
                .unwrap_or_default()
                .into_iter()
                .find(|a| a.type_ == "InternalIP")
                .map(|a| a.address);
            if let (true, Some(ip)) = (ready, ip) {
                out.push((node.name_any(), ip));
            }
        }
        out.sort();
        Ok(out)
    }
}
