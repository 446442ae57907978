//! The operator's `controller` subcommand against a real cluster: MonitorTarget children and
//! status, updates, drift repair, garbage collection, invalid specs, references of AlertRules
//! and AIAnalyses, the central workloads, idle behaviour and leader election.
//!
//! Each test runs the real `fabricwatch-controller` binary as a process, scoped to the test's
//! namespace (`--watch-namespace`), with the admin kubeconfig. Build it first:
//! `cargo build -p fabricwatch-operator` (or point `FABRICWATCH_CONTROLLER_BIN` at a binary).
//! Like every cluster test these run only with `FABRICWATCH_E2E=1` (see the harness docs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use fabricwatch_tests::{
    eventually, http_get, require_cluster, wait_for, wait_for_deletion, Cluster, Operator,
    TestNamespace, FIXTURE_MOUNT,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};

const CONVERGE: Duration = Duration::from_secs(60);
/// Garbage collection runs in kube-controller-manager; give it time on a loaded machine.
const GC: Duration = Duration::from_secs(120);

fn condition(obj: &impl serde::Serialize, type_: &str) -> Option<(String, String, String)> {
    let v = serde_json::to_value(obj).ok()?;
    let c = v
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str()?.to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

fn has_reason<K: serde::Serialize>(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
) -> impl Fn(Option<&K>) -> bool {
    move |o: Option<&K>| {
        o.and_then(|o| condition(o, type_))
            .is_some_and(|(s, r, _)| s == status && r == reason)
    }
}

fn pod_spec(ds: &DaemonSet) -> Result<k8s_openapi::api::core::v1::PodSpec> {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .context("DaemonSet without a pod spec")
}

fn owned_by(meta: &kube::api::ObjectMeta, kind: &str, name: &str) -> bool {
    meta.owner_references.as_ref().is_some_and(|o| {
        o.iter()
            .any(|o| o.kind == kind && o.name == name && o.controller == Some(true))
    })
}

async fn setup(cluster: &Cluster) -> Result<TestNamespace> {
    cluster.install_crds().await?;
    cluster.test_namespace().await
}

/// Create → children with the right spec and scheduled agents; update → children updated;
/// drift repaired; delete → children garbage-collected.
#[tokio::test]
async fn monitor_target_lifecycle() -> Result<()> {
    let cluster = require_cluster!();
    let nodes = cluster.ready_nodes().await?;
    ensure!(!nodes.is_empty(), "no Ready nodes");
    let ns = setup(&cluster).await?;
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &["--manage-central-workloads=false"],
    )?;

    ns.apply_yaml(&format!(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {{name: fabric}}\nspec:\n  interval: 10s\n  rdma: {{sysfsRoot: {FIXTURE_MOUNT}}}\n"
    ))
    .await?;

    let dss = ns.api::<DaemonSet>();
    let ds = wait_for(
        &dss,
        "fabric-agent",
        |o: Option<&DaemonSet>| o.is_some(),
        CONVERGE,
    )
    .await?;
    let pod = pod_spec(&ds)?;
    ensure!(
        pod.host_network == Some(true),
        "hostNetwork expected with ping and rdma on"
    );
    ensure!(pod.automount_service_account_token == Some(false));
    ensure!(pod.service_account_name.as_deref() == Some("fabric-agent"));
    let c = &pod.containers[0];
    let sc = c.security_context.clone().context("no security context")?;
    ensure!(sc.read_only_root_filesystem == Some(true));
    let caps = sc.capabilities.clone().unwrap_or_default();
    ensure!(caps.drop == Some(vec!["ALL".to_string()]), "{caps:?}");
    ensure!(caps.add == Some(vec!["NET_RAW".to_string()]), "{caps:?}");
    let host_paths: Vec<String> = pod
        .volumes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.host_path.map(|h| h.path))
        .collect();
    ensure!(
        host_paths == vec![FIXTURE_MOUNT.to_string(), "/proc".to_string()],
        "{host_paths:?}"
    );
    ensure!(
        owned_by(&ds.metadata, "MonitorTarget", "fabric"),
        "DaemonSet not owned"
    );
    let labels = ds.labels();
    ensure!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str)
            == Some("fabricwatch-operator")
    );

    let cm = ns.api::<ConfigMap>().get("fabric-agent").await?;
    ensure!(owned_by(&cm.metadata, "MonitorTarget", "fabric"));
    let config = cm
        .data
        .clone()
        .unwrap_or_default()
        .get("agent.yaml")
        .cloned()
        .unwrap_or_default();
    ensure!(config.contains("intervalSeconds: 10.0"), "{config}");
    ensure!(config.contains("sysfsRoot: /host/sys"), "{config}");
    let svc = ns.api::<Service>().get("fabric-agent").await?;
    ensure!(owned_by(&svc.metadata, "MonitorTarget", "fabric"));
    ensure!(svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None"));
    let sa = ns.api::<ServiceAccount>().get("fabric-agent").await?;
    ensure!(owned_by(&sa.metadata, "MonitorTarget", "fabric"));

    // One agent Pod scheduled per node.
    let pods = ns.api::<Pod>();
    eventually(
        "one agent Pod scheduled on every node",
        CONVERGE,
        || async {
            let list = pods
                .list(&ListParams::default().labels("app.kubernetes.io/name=fabricwatch-agent"))
                .await?;
            let mut on: Vec<String> = list
                .items
                .iter()
                .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .collect();
            on.sort();
            let want: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
            ensure!(on == want, "agents on {on:?}, nodes {want:?}");
            Ok(())
        },
    )
    .await?;

    let mts = ns.api::<MonitorTarget>();
    let n = nodes.len() as i32;
    let mt = wait_for(
        &mts,
        "fabric",
        move |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let s = m.status.clone().unwrap_or_default();
                s.observed_generation == Some(1)
                    && s.nodes.as_ref().and_then(|x| x.desired) == Some(n)
                    && condition(m, "Accepted").is_some_and(|c| c.0 == "True")
                    && condition(m, "Ready").is_some()
            })
        },
        CONVERGE,
    )
    .await?;
    let ready = condition(&mt, "Ready").context("Ready")?;
    ensure!(
        ready.1 == "AgentsReady" || ready.1 == "RollingOut",
        "unexpected Ready reason {ready:?}"
    );

    // Update: slower interval, ping off → new config, no NET_RAW.
    ns.apply_yaml(&format!(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {{name: fabric}}\nspec:\n  interval: 20s\n  ping: {{enabled: false}}\n  rdma: {{sysfsRoot: {FIXTURE_MOUNT}}}\n"
    ))
    .await?;
    wait_for(
        &ns.api::<ConfigMap>(),
        "fabric-agent",
        |o: Option<&ConfigMap>| {
            o.and_then(|c| c.data.as_ref())
                .and_then(|d| d.get("agent.yaml"))
                .is_some_and(|y| y.contains("intervalSeconds: 20.0"))
        },
        CONVERGE,
    )
    .await?;
    let ds = wait_for(
        &dss,
        "fabric-agent",
        |o: Option<&DaemonSet>| {
            o.and_then(|d| d.spec.as_ref())
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers[0].security_context.as_ref())
                .and_then(|s| s.capabilities.as_ref())
                .is_some_and(|c| c.add.is_none())
        },
        CONVERGE,
    )
    .await?;
    ensure!(
        pod_spec(&ds)?.host_network == Some(true),
        "rdma still needs hostNetwork"
    );
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.and_then(|m| m.status.as_ref())
                .is_some_and(|s| s.observed_generation == Some(2))
        },
        CONVERGE,
    )
    .await?;

    // Drift: another writer changes the image; the controller puts its own back.
    let default_image = pod_spec(&ds)?.containers[0].image.clone();
    dss.patch(
        "fabric-agent",
        &PatchParams::default(),
        &Patch::Strategic(serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": "example.invalid/drift:1"}]}}}})),
    )
    .await?;
    wait_for(
        &dss,
        "fabric-agent",
        move |o: Option<&DaemonSet>| {
            o.and_then(|d| d.spec.as_ref())
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|p| p.containers[0].image == default_image)
        },
        CONVERGE,
    )
    .await?;

    // Drift of a metadata-cached child: the agent config edited by hand is put back.
    let cms = ns.api::<ConfigMap>();
    let config = cms
        .get("fabric-agent")
        .await?
        .data
        .context("agent ConfigMap without data")?;
    cms.patch(
        "fabric-agent",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"agent.yaml": "edited: by hand\n"}})),
    )
    .await?;
    wait_for(
        &cms,
        "fabric-agent",
        move |o: Option<&ConfigMap>| o.and_then(|c| c.data.as_ref()) == Some(&config),
        CONVERGE,
    )
    .await?;

    // Deleted children come back (the ServiceAccount and the Service are watched too).
    let sas = ns.api::<ServiceAccount>();
    let svcs = ns.api::<Service>();
    let sa_uid = sas.get("fabric-agent").await?.uid();
    let svc_uid = svcs.get("fabric-agent").await?.uid();
    sas.delete("fabric-agent", &DeleteParams::default()).await?;
    svcs.delete("fabric-agent", &DeleteParams::default())
        .await?;
    wait_for(
        &sas,
        "fabric-agent",
        move |o: Option<&ServiceAccount>| o.is_some_and(|s| s.uid() != sa_uid),
        CONVERGE,
    )
    .await?;
    wait_for(
        &svcs,
        "fabric-agent",
        move |o: Option<&Service>| o.is_some_and(|s| s.uid() != svc_uid),
        CONVERGE,
    )
    .await?;

    // Delete: the garbage collector removes every child.
    mts.delete("fabric", &DeleteParams::default()).await?;
    wait_for_deletion(&dss, "fabric-agent", GC).await?;
    wait_for_deletion(&ns.api::<ConfigMap>(), "fabric-agent", GC).await?;
    wait_for_deletion(&ns.api::<Service>(), "fabric-agent", GC).await?;
    wait_for_deletion(&ns.api::<ServiceAccount>(), "fabric-agent", GC).await?;
    drop(op);
    ns.cleanup().await
}

/// An invalid spec gets Accepted=False with the field path and no children; fixing it
/// creates them (the object waited for the change instead of retrying).
#[tokio::test]
async fn invalid_monitor_target_is_rejected_without_children() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &["--manage-central-workloads=false"],
    )?;
    let mt = |interval: &str| {
        format!("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {{name: bad}}\nspec:\n  interval: {interval}\n  ping: {{timeout: 2s}}\n")
    };
    ns.apply_yaml(&mt("2s")).await?;
    let mts = ns.api::<MonitorTarget>();
    let obj = wait_for(
        &mts,
        "bad",
        has_reason("Accepted", "False", "InvalidSpec"),
        CONVERGE,
    )
    .await?;
    let (_, _, message) = condition(&obj, "Accepted").context("Accepted")?;
    ensure!(
        message.contains("spec.ping.timeout: must be shorter than spec.interval"),
        "{message}"
    );
    ensure!(obj.status.as_ref().and_then(|s| s.observed_generation) == Some(1));
    ensure!(
        ns.api::<DaemonSet>().get_opt("bad-agent").await?.is_none(),
        "DaemonSet created for an invalid spec"
    );
    ensure!(
        ns.api::<ConfigMap>().get_opt("bad-agent").await?.is_none(),
        "ConfigMap created for an invalid spec"
    );
    // The reconcile counts itself after writing status, so poll briefly.
    eventually("an invalid reconcile counted", CONVERGE, || async {
        let invalid = op
            .metric(
                "fabricwatch_controller_reconciles_total",
                "result=\"invalid\"",
            )
            .await?;
        ensure!(invalid >= 1.0, "{invalid}");
        Ok(())
    })
    .await?;

    ns.apply_yaml(&mt("10s")).await?;
    wait_for(
        &mts,
        "bad",
        has_reason("Accepted", "True", "Valid"),
        CONVERGE,
    )
    .await?;
    wait_for(
        &ns.api::<DaemonSet>(),
        "bad-agent",
        |o: Option<&DaemonSet>| o.is_some(),
        CONVERGE,
    )
    .await?;
    drop(op);
    ns.cleanup().await
}

/// AlertRule and AIAnalysis references: missing target and Secret → Accepted=False with the
/// reason; once they exist → Accepted=True. Invalid specs name the field.
#[tokio::test]
async fn rule_and_analysis_references() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &["--manage-central-workloads=false"],
    )?;
    ns.apply_yaml(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {name: loss}\nspec:\n  targetRef: {name: fabric}\n  metric: ping_loss_percent\n  operator: gt\n  threshold: 5\n  notify:\n    channels:\n    - name: ops\n      slack: {webhookUrlSecretRef: {name: slack, key: url}}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AIAnalysis\nmetadata: {name: explain}\nspec:\n  targetRefs: [{kind: MonitorTarget, name: fabric}, {kind: AlertRule, name: loss}]\n  provider: {type: openai, model: gpt-4o-mini, credentialsSecretRef: {name: openai, key: apiKey}}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AIAnalysis\nmetadata: {name: no-region}\nspec:\n  targetRefs: [{kind: MonitorTarget, name: fabric}]\n  provider: {type: bedrock, model: m}\n",
    )
    .await?;
    let ars = ns.api::<AlertRule>();
    let aias = ns.api::<AIAnalysis>();
    wait_for(
        &ars,
        "loss",
        has_reason("Accepted", "False", "TargetNotFound"),
        CONVERGE,
    )
    .await?;
    wait_for(
        &aias,
        "explain",
        has_reason("Accepted", "False", "TargetNotFound"),
        CONVERGE,
    )
    .await?;
    let bad = wait_for(
        &aias,
        "no-region",
        has_reason("Accepted", "False", "InvalidSpec"),
        CONVERGE,
    )
    .await?;
    let msg = condition(&bad, "Accepted").map(|c| c.2).unwrap_or_default();
    ensure!(
        msg.contains("spec.provider.region: required for bedrock"),
        "{msg}"
    );

    // The target appears: the watch on MonitorTargets re-checks the rule at once.
    ns.apply_yaml("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: fabric}\nspec: {nodeSelector: {fabricwatch.io/none: 'true'}}\n")
        .await?;
    let rule = wait_for(
        &ars,
        "loss",
        has_reason("Accepted", "False", "SecretNotFound"),
        CONVERGE,
    )
    .await?;
    let msg = condition(&rule, "Accepted")
        .map(|c| c.2)
        .unwrap_or_default();
    ensure!(
        msg.contains(
            "spec.notify.channels[0].slack.webhookUrlSecretRef: Secret \"slack\" not found"
        ),
        "{msg}"
    );
    wait_for(
        &aias,
        "explain",
        has_reason("Accepted", "False", "SecretNotFound"),
        CONVERGE,
    )
    .await?;

    // The Secrets appear: unresolved references are re-checked every minute.
    let secrets = ns.api::<Secret>();
    for (name, key) in [("slack", "url"), ("openai", "apiKey")] {
        let s = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([(
                key.to_string(),
                "not-a-real-secret".to_string(),
            )])),
            ..Default::default()
        };
        secrets.create(&Default::default(), &s).await?;
    }
    let slow = Duration::from_secs(150);
    wait_for(&ars, "loss", has_reason("Accepted", "True", "Valid"), slow).await?;
    wait_for(
        &aias,
        "explain",
        has_reason("Accepted", "True", "Valid"),
        slow,
    )
    .await?;

    // The operator never put Secret data anywhere it writes.
    let log = std::fs::read_to_string(op.log_path()).unwrap_or_default();
    ensure!(
        !log.contains("not-a-real-secret"),
        "secret value in the operator log"
    );
    let rule = ars.get("loss").await?;
    ensure!(!serde_json::to_string(&rule.status)?.contains("not-a-real-secret"));
    drop(op);
    ns.cleanup().await
}

/// After convergence the controller keeps reconciling (resyncs) but writes nothing for 2
/// minutes (`FABRICWATCH_IDLE_SECONDS`): the resourceVersion of the target, its children and
/// a rule stay the same, and no child is even applied (every one found in place).
#[tokio::test]
async fn converged_objects_see_no_writes() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    // Resyncs every 30 s, so the idle window below does see reconciles (the default is 5 min).
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &["--manage-central-workloads=false", "--resync-seconds=30"],
    )?;
    // No node matches: the rollout is stable whatever the agent image does on this cluster.
    ns.apply_yaml("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: quiet}\nspec: {nodeSelector: {fabricwatch.io/none: 'true'}}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {name: cpu}\nspec: {targetRef: {name: quiet}, metric: cpu_usage_percent, operator: gt, threshold: 90}\n")
        .await?;
    let mts = ns.api::<MonitorTarget>();
    let mt = wait_for(
        &mts,
        "quiet",
        has_reason("Ready", "False", "NoNodesSelected"),
        CONVERGE,
    )
    .await?;
    ensure!(
        mt.status
            .as_ref()
            .and_then(|s| s.nodes.as_ref())
            .and_then(|n| n.desired)
            == Some(0)
    );
    wait_for(
        &ns.api::<AlertRule>(),
        "cpu",
        has_reason("Accepted", "True", "Valid"),
        CONVERGE,
    )
    .await?;
    // Let the watch events of our own writes settle.
    tokio::time::sleep(Duration::from_secs(3)).await;

    async fn versions(ns: &TestNamespace) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let rv = |m: &kube::api::ObjectMeta| m.resource_version.clone().unwrap_or_default();
        out.push((
            "MonitorTarget".into(),
            rv(ns.api::<MonitorTarget>().get("quiet").await?.meta()),
        ));
        out.push((
            "AlertRule".into(),
            rv(ns.api::<AlertRule>().get("cpu").await?.meta()),
        ));
        out.push((
            "DaemonSet".into(),
            rv(ns.api::<DaemonSet>().get("quiet-agent").await?.meta()),
        ));
        out.push((
            "ConfigMap".into(),
            rv(ns.api::<ConfigMap>().get("quiet-agent").await?.meta()),
        ));
        out.push((
            "Service".into(),
            rv(ns.api::<Service>().get("quiet-agent").await?.meta()),
        ));
        out.push((
            "ServiceAccount".into(),
            rv(ns.api::<ServiceAccount>().get("quiet-agent").await?.meta()),
        ));
        Ok(out)
    }
    let before = versions(&ns).await?;
    let reconciles_before = op
        .metric("fabricwatch_controller_reconciles_total", "MonitorTarget")
        .await?;
    let applied_before = op
        .metric(
            "fabricwatch_controller_child_applies_total",
            "result=\"applied\"",
        )
        .await?;
    // Several resync periods, so reconciles do happen.
    let idle: u64 = std::env::var("FABRICWATCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let after = versions(&ns).await?;
    let reconciles_after = op
        .metric("fabricwatch_controller_reconciles_total", "MonitorTarget")
        .await?;
    ensure!(
        reconciles_after > reconciles_before,
        "no reconcile happened in {idle}s ({reconciles_before} → {reconciles_after}); the test proves nothing"
    );
    ensure!(
        before == after,
        "writes while idle:\n before {before:?}\n after  {after:?}"
    );
    // Not even no-op applies: the reconciles found every child in place.
    let applied_after = op
        .metric(
            "fabricwatch_controller_child_applies_total",
            "result=\"applied\"",
        )
        .await?;
    ensure!(
        applied_after == applied_before,
        "children applied while idle: {applied_before} → {applied_after}"
    );
    drop(op);
    ns.cleanup().await
}

/// The controller's conditions (Accepted, Ready) and analytics' (Healthy, Degraded) merge by
/// type: one writer's server-side apply keeps the other's. On Kubernetes 1.20 this needs the
/// API server's OpenAPI models of the kind, which an int-or-string map once prevented
/// (`fabricwatch_crds::crd::structural`); the conditions list was then atomic.
#[tokio::test]
async fn status_writers_keep_each_others_conditions() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &["--manage-central-workloads=false"],
    )?;
    ns.apply_yaml("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: shared}\nspec: {nodeSelector: {fabricwatch.io/none: 'true'}}\n")
        .await?;
    let mts = ns.api::<MonitorTarget>();
    wait_for(
        &mts,
        "shared",
        has_reason("Ready", "False", "NoNodesSelected"),
        CONVERGE,
    )
    .await?;
    // What analytics sends: its own conditions only.
    let analytics = serde_json::json!({
        "apiVersion": "fabricwatch.io/v1alpha1", "kind": "MonitorTarget",
        "status": {"health": "Healthy", "conditions": [{
            "type": "Healthy", "status": "True", "reason": "AllNodesHealthy",
            "message": "written by the test as analytics", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    mts.patch_status(
        "shared",
        &PatchParams::apply("fabricwatch-analytics").force(),
        &Patch::Apply(&analytics),
    )
    .await?;
    let mt = mts.get_status("shared").await?;
    let types: Vec<&str> = mt
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| c.type_.as_str())
        .collect();
    for want in ["Accepted", "Ready", "Healthy"] {
        ensure!(
            types.contains(&want),
            "{want} missing after a second writer's apply: {types:?}"
        );
    }
    drop(op);
    ns.cleanup().await
}

/// The central analytics and notifier Deployments and Services are applied in the
/// operator's namespace, owned by the operator's Deployment, and put back when deleted.
#[tokio::test]
async fn central_workloads_are_kept() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    // A stand-in for the operator's own Deployment, to own the central workloads.
    ns.apply_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: fabricwatch-operator}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: op}}\n  template:\n    metadata: {labels: {app: op}}\n    spec: {containers: [{name: op, image: localhost/fabricwatch-operator:dev}]}\n")
        .await?;
    let op = Operator::start(
        &cluster,
        ns.name(),
        "a",
        &[
            "--owner-deployment",
            "fabricwatch-operator",
            "--central-interval-seconds",
            "5",
            "--operator-image",
            "localhost/fabricwatch-operator:test",
        ],
    )?;
    let deployments = ns.api::<Deployment>();
    for name in ["fabricwatch-analytics", "fabricwatch-notifier"] {
        let d = wait_for(
            &deployments,
            name,
            |o: Option<&Deployment>| o.is_some(),
            CONVERGE,
        )
        .await?;
        let pod = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .context("pod spec")?;
        ensure!(pod.containers[0].image.as_deref() == Some("localhost/fabricwatch-operator:test"));
        let sub = name.trim_start_matches("fabricwatch-");
        ensure!(
            pod.containers[0].args == Some(vec![sub.to_string()]),
            "{:?}",
            pod.containers[0].args
        );
        let owners = d.metadata.owner_references.clone().unwrap_or_default();
        ensure!(
            owners
                .iter()
                .any(|o| o.kind == "Deployment" && o.name == "fabricwatch-operator"),
            "{owners:?}"
        );
        ns.api::<Service>()
            .get(name)
            .await
            .with_context(|| format!("Service {name}"))?;
    }
    deployments
        .delete("fabricwatch-notifier", &DeleteParams::default())
        .await?;
    wait_for_deletion(&deployments, "fabricwatch-notifier", CONVERGE).await?;
    wait_for(
        &deployments,
        "fabricwatch-notifier",
        |o: Option<&Deployment>| o.is_some(),
        CONVERGE,
    )
    .await?;
    drop(op);
    ns.cleanup().await
}

/// Two replicas: exactly one leads and reconciles; when it dies the other takes over.
#[tokio::test]
async fn only_the_leader_reconciles() -> Result<()> {
    let cluster = require_cluster!();
    let ns = setup(&cluster).await?;
    let args = [
        "--manage-central-workloads=false",
        "--lease-duration-seconds",
        "6",
    ];
    let mut a = Operator::start(&cluster, ns.name(), "a", &args)?;
    let b = Operator::start(&cluster, ns.name(), "b", &args)?;
    let leaders = |a: &Operator, b: &Operator| {
        let (ma, mb) = (a.metrics_addr(), b.metrics_addr());
        async move {
            let la = metric_or_zero(ma, "fabricwatch_controller_leader").await;
            let lb = metric_or_zero(mb, "fabricwatch_controller_leader").await;
            (la, lb)
        }
    };
    eventually("one leader", CONVERGE, || async {
        let (la, lb) = leaders(&a, &b).await;
        ensure!(la + lb == 1.0, "leader gauges a={la} b={lb}");
        Ok(())
    })
    .await?;
    let (la, _) = leaders(&a, &b).await;
    ns.apply_yaml("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: one}\nspec: {nodeSelector: {fabricwatch.io/none: 'true'}}\n")
        .await?;
    let mts = ns.api::<MonitorTarget>();
    wait_for(
        &mts,
        "one",
        has_reason("Accepted", "True", "Valid"),
        CONVERGE,
    )
    .await?;
    // The standby has not reconciled anything.
    let standby = if la == 1.0 { &b } else { &a };
    let standby_reconciles = metric_or_zero(
        standby.metrics_addr(),
        "fabricwatch_controller_reconciles_total",
    )
    .await;
    ensure!(
        standby_reconciles == 0.0,
        "standby reconciled {standby_reconciles} times"
    );

    // Kill the leader (no lease release): the standby takes over after the lease expires.
    let survivor_addr = if la == 1.0 {
        a.stop();
        b.metrics_addr()
    } else {
        let addr = a.metrics_addr();
        drop(b);
        addr
    };
    eventually(
        "the standby takes over",
        Duration::from_secs(90),
        || async {
            let l = metric_or_zero(survivor_addr, "fabricwatch_controller_leader").await;
            ensure!(l == 1.0, "survivor not leading yet");
            Ok(())
        },
    )
    .await?;
    ns.apply_yaml("apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: two}\nspec: {nodeSelector: {fabricwatch.io/none: 'true'}}\n")
        .await?;
    wait_for(
        &mts,
        "two",
        has_reason("Accepted", "True", "Valid"),
        CONVERGE,
    )
    .await?;
    drop(a);
    ns.cleanup().await
}

async fn metric_or_zero(addr: SocketAddr, name: &str) -> f64 {
    let Ok(text) = http_get(addr, "/metrics").await else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}
