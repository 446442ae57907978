//! Scenario 1: the CRDs with kubectl, the chart with Helm's own code, everything Ready. What
//! `helm template` renders for this cluster must first pass the API server's own validation
//! (a server-side dry run).

use std::path::Path;

use anyhow::{Context, Result};
use fabricwatch_tests::helm::{helm, install_local, local_values, wait_release_ready};
use fabricwatch_tests::host::kubectl;
use fabricwatch_tests::{Cluster, TestNamespace};

/// `kubectl apply -f` the CRD folder this server accepts; returns that folder. Servers older
/// than 1.23 get the CRDs without CEL rules, from kubectl and Helm alike.
pub(crate) async fn apply_crds(cluster: &Cluster) -> Result<String> {
    let crds = fabricwatch_tests::crd_dir(&cluster.client()).await?;
    let crds = crds.to_string_lossy().into_owned();
    kubectl(cluster, &["apply", "-f", &crds])?;
    Ok(crds)
}

/// `helm template` → server-side dry run, then `helm install` as the namespace's name, then
/// the operator (`fullname`), analytics and notifier Ready.
pub(crate) async fn install(
    cluster: &Cluster,
    ns: &TestNamespace,
    crds: &str,
    work: &Path,
    fullname: &str,
) -> Result<()> {
    let release = ns.name();
    // What `helm template` renders for this cluster passes the API server's own validation.
    let rendered = helm(
        cluster.kubeconfig(),
        &[
            "template",
            "--cluster",
            "--crds-dir",
            crds,
            "-f",
            &local_values().to_string_lossy(),
            "--release",
            release,
            "-n",
            ns.name(),
        ],
    )?;
    let rendered_file = work.join("rendered.yaml");
    std::fs::write(&rendered_file, &rendered)?;
    kubectl(
        cluster,
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
    install_local(cluster.kubeconfig(), crds, release, ns.name())?;
    wait_release_ready(ns, fullname).await?;
    eprintln!("scenario 1 (CRDs; helm template passes server-side dry run; Helm install; operator/analytics/notifier Ready): ok");
    Ok(())
}
