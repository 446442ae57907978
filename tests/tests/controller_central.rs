//! The central workloads on a live install: Deployments that an earlier install (another field
//! manager, or an apply without a strategy) left with the API server's default strategy,
//! `RollingUpdate` with defaulted `rollingUpdate` parameters. The controller applies them with
//! `strategy.type: Recreate`; the API server rejects `Recreate` with `rollingUpdate` still set
//! (422), and an apply cannot remove fields another manager owns (an explicit
//! `rollingUpdate: null` is still answered with 422 on 1.20), so the controller first switches
//! the live strategy with a JSON merge patch.
//!
//! Needs `FABRICWATCH_E2E=1` and the controller binary (`cargo build -p fabricwatch-operator`).

use std::time::Duration;

use anyhow::{ensure, Result};
use fabricwatch_tests::{eventually, require_cluster, Operator};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};

fn old_deployment(component: &str) -> Result<Deployment> {
    // The controller's own selector (immutable), no strategy: the API server defaults
    // RollingUpdate with maxSurge/maxUnavailable 25 %.
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": format!("fabricwatch-{component}")},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {
                "app.kubernetes.io/name": "fabricwatch",
                "app.kubernetes.io/component": component,
            }},
            "template": {
                "metadata": {"labels": {
                    "app.kubernetes.io/name": "fabricwatch",
                    "app.kubernetes.io/component": component,
                }},
                "spec": {"containers": [{"name": component, "image": "localhost/fabricwatch-operator:dev"}]},
            },
        },
    }))?)
}

#[tokio::test]
async fn central_deployments_switch_from_rolling_update_to_recreate() -> Result<()> {
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let ns = cluster.test_namespace().await?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns.name());
    // analytics: created by another manager with a plain create (an Update operation, which
    // owns the defaulted fields); notifier: created by server-side apply (defaults unowned).
    deployments
        .create(&PostParams::default(), &old_deployment("analytics")?)
        .await?;
    ns.apply_yaml(&serde_yaml::to_string(&old_deployment("notifier")?)?)
        .await?;
    for name in ["fabricwatch-analytics", "fabricwatch-notifier"] {
        let d = deployments.get(name).await?;
        let s = d.spec.and_then(|s| s.strategy).unwrap_or_default();
        ensure!(
            s.type_.as_deref() == Some("RollingUpdate") && s.rolling_update.is_some(),
            "{name} did not start as a defaulted RollingUpdate: {s:?}"
        );
    }

    let op = Operator::start(
        &cluster,
        ns.name(),
        "central",
        &[
            "--manage-central-workloads=true",
            "--leader-election=false",
            "--central-interval-seconds=5",
        ],
    )?;
    let converged = eventually(
        "both Deployments Recreate",
        Duration::from_secs(60),
        || async {
            for name in ["fabricwatch-analytics", "fabricwatch-notifier"] {
                let d = deployments.get(name).await?;
                let s = d.spec.and_then(|s| s.strategy).unwrap_or_default();
                ensure!(
                    s.type_.as_deref() == Some("Recreate") && s.rolling_update.is_none(),
                    "{name}: {s:?}"
                );
            }
            Ok(())
        },
    )
    .await;
    if let Err(e) = converged {
        anyhow::bail!("{e:#}\ncontroller log:\n{}", op.log_tail());
    }
    drop(op);
    ns.cleanup().await
}
