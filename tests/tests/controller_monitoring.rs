//! The Prometheus Operator integration against a real API server: once the
//! `monitoring.coreos.com/v1` PodMonitor and PrometheusRule kinds are served, the controller
//! notices (periodic discovery), gives each MonitorTarget a PodMonitor and each AlertRule
//! that asks for it a PrometheusRule twin; when the API goes away it stops touching them.
//!
//! The CRDs installed here are minimal (schema `x-kubernetes-preserve-unknown-fields`), not
//! the Prometheus Operator's: what the controller depends on is that the API group is served
//! and accepts its objects. They are cluster-wide, so this test lives in its own test binary
//! (cargo runs test binaries one after another) and removes them when done.
//!
//! Needs `FABRICWATCH_E2E=1` and the controller binary (`cargo build -p fabricwatch-operator`).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_tests::{eventually, require_cluster, Operator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::ApiResource;

const CONVERGE: Duration = Duration::from_secs(90);

fn crd(plural: &str, kind: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {plural}.monitoring.coreos.com}}\nspec:\n  group: monitoring.coreos.com\n  scope: Namespaced\n  names: {{plural: {plural}, kind: {kind}}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
    )
}

fn resource(plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn remove_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        let _ = crds.delete(name, &DeleteParams::default()).await;
    }
}

#[tokio::test]
async fn pod_monitor_and_prometheus_rule_follow_the_api() -> Result<()> {
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let ns = cluster.test_namespace().await?;
    let client = cluster.client();
    remove_crds(&client).await;

    // Operator first: the API appears while it runs, as when the Prometheus Operator is
    // installed after fabricwatch.
    let op = Operator::start(
        &cluster,
        ns.name(),
        "monitoring",
        &[
            "--manage-central-workloads=false",
            "--leader-election=false",
            "--discovery-interval-seconds=5",
            // PodMonitors are not watched: a deleted one is put back at the next resync.
            "--resync-seconds=20",
        ],
    )?;
    ns.apply_yaml(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: fabric}\nspec:\n  nodeSelector: {fabricwatch.io/none: \"true\"}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {name: loss}\nspec:\n  targetRef: {name: fabric}\n  metric: ping_loss_percent\n  operator: gt\n  threshold: 5\n  for: 1m\n  prometheusRule: {enabled: true, labels: {release: prom}}\n",
    )
    .await?;

    let result = async {
        fabricwatch_tests::apply_yaml(
            &client,
            None,
            &format!(
                "{}---\n{}",
                crd("podmonitors", "PodMonitor"),
                crd("prometheusrules", "PrometheusRule")
            ),
        )
        .await
        .context("installing the monitoring.coreos.com CRDs")?;

        let pms: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            ns.name(),
            &resource("podmonitors", "PodMonitor"),
        );
        let prs: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            ns.name(),
            &resource("prometheusrules", "PrometheusRule"),
        );
        let pm = eventually("the PodMonitor", CONVERGE, || async {
            Ok(pms.get("fabric-agent").await?)
        })
        .await?;
        let spec = &pm.data["spec"];
        ensure!(
            spec["podMetricsEndpoints"][0]["port"] == "metrics",
            "PodMonitor scrapes {:?}",
            spec["podMetricsEndpoints"]
        );
        ensure!(
            spec["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "fabric",
            "PodMonitor selects {:?}",
            spec["selector"]
        );
        ensure!(
            pm.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o.kind == "MonitorTarget" && o.name == "fabric")),
            "PodMonitor not owned by its MonitorTarget"
        );

        let pr = eventually("the PrometheusRule twin", CONVERGE, || async {
            Ok(prs.get("loss-fabricwatch").await?)
        })
        .await?;
        let rule = &pr.data["spec"]["groups"][0]["rules"][0];
        ensure!(
            rule["expr"]
                .as_str()
                .is_some_and(|e| e.contains("fabricwatch_ping_loss_ratio") && e.ends_with("> 5")),
            "PrometheusRule expr {:?}",
            rule["expr"]
        );
        ensure!(rule["for"] == "60s", "for {:?}", rule["for"]);
        ensure!(
            pr.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("release"))
                .map(String::as_str)
                == Some("prom"),
            "labels {:?}",
            pr.metadata.labels
        );

        // Someone removes the PodMonitor: it is put back.
        let uid = pm.metadata.uid.clone();
        pms.delete("fabric-agent", &DeleteParams::default()).await?;
        eventually("the PodMonitor put back", CONVERGE, || async {
            let again = pms.get("fabric-agent").await?;
            ensure!(again.metadata.uid != uid, "still the deleted one");
            Ok(())
        })
        .await?;

        // The API goes away: once discovery notices, targets reconcile without errors.
        remove_crds(&client).await;
        tokio::time::sleep(Duration::from_secs(12)).await;
        let errors = || async {
            op.metric("fabricwatch_controller_reconcile_errors_total", "")
                .await
                .unwrap_or(0.0)
        };
        let errors_before = errors().await;
        ns.api::<fabricwatch_crds::MonitorTarget>()
            .patch(
                "fabric",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(serde_json::json!({"spec": {"interval": "20s"}})),
            )
            .await?;
        eventually("the edited target reconciled", CONVERGE, || async {
            let mt = ns.api::<fabricwatch_crds::MonitorTarget>().get("fabric").await?;
            let g = mt.status.as_ref().and_then(|s| s.observed_generation);
            ensure!(g == mt.metadata.generation, "observedGeneration {g:?}");
            Ok(())
        })
        .await?;
        let errors_after = errors().await;
        ensure!(
            errors_after == errors_before,
            "reconcile errors after the monitoring API went away ({errors_before} → {errors_after}):\n{}",
            op.log_tail()
        );
        anyhow::Ok(())
    }
    .await;
    remove_crds(&client).await;
    drop(op);
    result?;
    ns.cleanup().await
}
