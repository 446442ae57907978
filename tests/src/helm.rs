//! The chart through `e2e/helm.py` (Helm's own Go code through `helm-python-sdk`, or the
//! `helm` CLI): running it, a release that is uninstalled on drop, the install the e2e tests
//! share, and the wait until the release's workloads are Ready.
//!
//! A release must be uninstalled explicitly: its ClusterRoles and ClusterRoleBindings
//! outlive the test namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;

use crate::host::run;
use crate::{conditions, eventually, repo_root, wait_for, TestNamespace, ENV_KEEP};

/// How long the release's Deployments may take to exist and become Ready.
pub const RELEASE_READY: Duration = Duration::from_secs(240);

/// The central Deployments the operator creates next to its own.
pub const CENTRAL_DEPLOYMENTS: [&str; 2] = ["fabricwatch-analytics", "fabricwatch-notifier"];

/// `python3 e2e/helm.py ARGS...` with `KUBECONFIG=kubeconfig`; returns its stdout.
///
/// # Errors
/// As [`crate::host::run`].
pub fn helm(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    run(Command::new("python3")
        .arg(repo_root().join("e2e/helm.py"))
        .env("KUBECONFIG", kubeconfig)
        .args(args))
}

/// `e2e/values-local.yaml`: the chart's values for the local cluster (the `localhost/...:dev`
/// images that `e2e/cluster images --load` put on every node, never pulled).
pub fn local_values() -> PathBuf {
    repo_root().join("e2e/values-local.yaml")
}

/// `helm.py install` of the chart as `release` into `namespace` with [`local_values`] and
/// the CRDs of `crds_dir`, waiting up to 240 s. The operator watches only `namespace` (other
/// tests' namespaces may hold MonitorTargets too) and elects its leader through a Lease named
/// `release`.
///
/// # Errors
/// As [`helm`].
pub fn install_local(
    kubeconfig: &Path,
    crds_dir: &str,
    release: &str,
    namespace: &str,
) -> Result<String> {
    helm(
        kubeconfig,
        &[
            "install",
            "--crds-dir",
            crds_dir,
            "-f",
            &local_values().to_string_lossy(),
            "--release",
            release,
            "-n",
            namespace,
            "--set",
            &format!("operator.watchNamespace={namespace}"),
            "--set",
            &format!("operator.leaderElection.leaseName={release}"),
            "--wait",
            "--timeout",
            "240",
        ],
    )
}

/// Waits until the operator Deployment `fullname` (`<release>-fabricwatch`) and the
/// [`CENTRAL_DEPLOYMENTS`] exist and are Ready, [`RELEASE_READY`] each. The operator creates
/// the central Deployments a moment after it starts, hence the wait for them to exist.
///
/// # Errors
/// On a timeout, with the wait's dump.
pub async fn wait_release_ready(ns: &TestNamespace, fullname: &str) -> Result<()> {
    for d in [fullname, CENTRAL_DEPLOYMENTS[0], CENTRAL_DEPLOYMENTS[1]] {
        eventually(&format!("Deployment {d} exists"), RELEASE_READY, || async {
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
            RELEASE_READY,
        )
        .await?;
    }
    Ok(())
}

/// A Helm release, uninstalled (`helm.py uninstall`) on drop; an uninstall that fails is
/// reported on stderr.
pub struct Release {
    name: String,
    namespace: String,
    kubeconfig: PathBuf,
    keep_on_request: bool,
}

impl Release {
    /// The release `name` in `namespace` of the cluster of `kubeconfig`.
    pub fn new(name: &str, namespace: &str, kubeconfig: &Path) -> Release {
        Release {
            name: name.to_string(),
            namespace: namespace.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            keep_on_request: false,
        }
    }

    /// Keeps the release instead when `FABRICWATCH_KEEP` is exactly `1`, so that a kept
    /// test namespace still runs the whole stack for inspection.
    pub fn kept_on_request(mut self) -> Release {
        self.keep_on_request = true;
        self
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.keep_on_request && std::env::var(ENV_KEEP).is_ok_and(|v| v == "1") {
            return;
        }
        if let Err(e) = helm(
            &self.kubeconfig,
            &["uninstall", "--release", &self.name, "-n", &self.namespace],
        ) {
            eprintln!("helm uninstall {}: {e:#}", self.name);
        }
    }
}

/// The chart installed for one test: a fresh namespace `<prefix>-…`, the CRD set the server
/// accepts applied with kubectl, and a release named after the namespace ([`install_local`])
/// whose workloads are Ready ([`wait_release_ready`]). Dropping it uninstalls the release;
/// the namespace is the caller's to clean up.
pub struct TestRelease {
    /// The namespace the release and the test's objects live in.
    pub ns: TestNamespace,
    /// The operator Deployment, `<release>-fabricwatch`.
    pub operator: String,
    /// Uninstalls on drop.
    pub release: Release,
}

impl TestRelease {
    /// Installs as described on [`TestRelease`].
    ///
    /// # Errors
    /// When the CRDs, the namespace or the install fail, or the workloads are not Ready in
    /// [`RELEASE_READY`].
    pub async fn install(cluster: &crate::Cluster, prefix: &str) -> Result<TestRelease> {
        // The CRD set this server accepts (without CEL rules before Kubernetes 1.23).
        let crds = crate::crd_dir(&cluster.client()).await?;
        let crds = crds.to_string_lossy().into_owned();
        crate::host::kubectl_on_path(cluster.kubeconfig(), &["apply", "-f", &crds])?;
        let ns = cluster.namespace(prefix).await?;
        let name = ns.name().to_string();
        let release = Release::new(&name, &name, cluster.kubeconfig());
        install_local(cluster.kubeconfig(), &crds, &name, &name)?;
        let operator = format!("{name}-fabricwatch");
        wait_release_ready(&ns, &operator).await?;
        Ok(TestRelease {
            ns,
            operator,
            release,
        })
    }
}

/// `helm.py upgrade` of the release `release` in `namespace` with [`local_values`] plus
/// `sets` (`key=value`), the same watch namespace and Lease as [`install_local`], waiting up
/// to 240 s.
///
/// # Errors
/// As [`helm`].
pub fn upgrade_local(
    kubeconfig: &Path,
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> Result<String> {
    let values = local_values().to_string_lossy().into_owned();
    let watch = format!("operator.watchNamespace={namespace}");
    let lease = format!("operator.leaderElection.leaseName={release}");
    let mut args = vec![
        "upgrade",
        "-f",
        &values,
        "--release",
        release,
        "-n",
        namespace,
        "--set",
        &watch,
        "--set",
        &lease,
        "--wait",
        "--timeout",
        "240",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm(kubeconfig, &args)
}
