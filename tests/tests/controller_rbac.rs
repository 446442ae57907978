//! The controller works with exactly the RBAC in `operator/rbac/controller-rbac.yaml`: the test
//! binds those rules to a fresh ServiceAccount, runs `fabricwatch-controller` with that
//! account's token, and checks that MonitorTargets, AlertRules, AIAnalyses, the central
//! workloads and leader election all work without a single `forbidden` error.
//!
//! Needs the controller binary (`cargo build -p fabricwatch-operator`, or
//! `FABRICWATCH_CONTROLLER_BIN`) and `FABRICWATCH_E2E=1`. Creates a ClusterRole and a
//! ClusterRoleBinding named after the test namespace and deletes them at the end.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use fabricwatch_tests::conditions::has_condition;
use fabricwatch_tests::{eventually, repo_root, require_cluster, wait_for};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::Api;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn controller_runs_with_the_documented_rbac() -> Result<()> {
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let ns = cluster.test_namespace().await?;
    let client = ns.client();
    let name = format!("fabricwatch-operator-{}", ns.name());

    // The documented rules, bound to a fresh ServiceAccount.
    let yaml = std::fs::read_to_string(repo_root().join("operator/rbac/controller-rbac.yaml"))?;
    let mut cluster_role: Option<ClusterRole> = None;
    let mut role: Option<Role> = None;
    for doc in fabricwatch_tests::apply::parse_yaml_documents(&yaml)? {
        match doc["kind"].as_str() {
            Some("ClusterRole") => cluster_role = Some(serde_json::from_value(doc)?),
            Some("Role") => role = Some(serde_json::from_value(doc)?),
            other => anyhow::bail!("unexpected kind {other:?} in controller-rbac.yaml"),
        }
    }
    let mut cluster_role = cluster_role.context("no ClusterRole in controller-rbac.yaml")?;
    let mut role = role.context("no Role in controller-rbac.yaml")?;
    for rule in cluster_role
        .rules
        .iter()
        .flatten()
        .chain(role.rules.iter().flatten())
    {
        ensure!(
            !rule.verbs.iter().any(|v| v == "*"),
            "wildcard verb in {rule:?}"
        );
        ensure!(
            !rule.resources.iter().flatten().any(|r| r == "*"),
            "wildcard resource in {rule:?}"
        );
    }
    cluster_role.metadata = ObjectMeta {
        name: Some(name.clone()),
        ..Default::default()
    };
    role.metadata = ObjectMeta {
        name: Some("fabricwatch-operator".into()),
        namespace: Some(ns.name().into()),
        ..Default::default()
    };
    let pp = PostParams::default();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("operator".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    ns.api::<ServiceAccount>().create(&pp, &sa).await?;
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: "operator".into(),
        namespace: Some(ns.name().into()),
        ..Default::default()
    };
    Api::<ClusterRole>::all(client.clone())
        .create(&pp, &cluster_role)
        .await?;
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(
            &pp,
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: name.clone(),
                },
                subjects: Some(vec![subject.clone()]),
            },
        )
        .await?;
    ns.api::<Role>().create(&pp, &role).await?;
    ns.api::<RoleBinding>()
        .create(
            &pp,
            &RoleBinding {
                metadata: ObjectMeta {
                    name: Some("fabricwatch-operator".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "fabricwatch-operator".into(),
                },
                subjects: Some(vec![subject]),
            },
        )
        .await?;

    // A token for the account (the token controller fills this Secret, on every version).
    let token_secret = Secret {
        metadata: ObjectMeta {
            name: Some("operator-token".into()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/service-account.name".to_string(),
                "operator".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/service-account-token".into()),
        ..Default::default()
    };
    let secrets = ns.api::<Secret>();
    secrets.create(&pp, &token_secret).await?;
    let token = eventually("the ServiceAccount token", CONVERGE, || async {
        let s = secrets.get("operator-token").await?;
        let t = s
            .data
            .and_then(|d| d.get("token").cloned())
            .context("no token yet")?;
        Ok(String::from_utf8(t.0)?)
    })
    .await?;
    let admin = std::fs::read_to_string(cluster.kubeconfig())?;
    let restricted: String = admin
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                format!("    token: {token}")
            } else if l.trim_start().starts_with("client-certificate")
                || l.trim_start().starts_with("client-key")
            {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(
        restricted.contains(&token),
        "the admin kubeconfig has no token line to replace"
    );
    let kubeconfig = std::env::temp_dir().join(format!("{}-kubeconfig", ns.name()));
    std::fs::write(&kubeconfig, restricted)?;

    // Objects to reconcile: a target, a rule with a Secret reference, an analysis, and a
    // stand-in for the operator's own Deployment (owner of the central workloads).
    ns.apply_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: slack}\nstringData: {url: 'https://hooks.invalid/x'}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: fabric}\nspec: {}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {name: loss}\nspec:\n  targetRef: {name: fabric}\n  metric: ping_loss_percent\n  operator: gt\n  threshold: 5\n  notify: {channels: [{name: ops, slack: {webhookUrlSecretRef: {name: slack, key: url}}}]}\n---\napiVersion: fabricwatch.io/v1alpha1\nkind: AIAnalysis\nmetadata: {name: explain}\nspec:\n  targetRefs: [{kind: AlertRule, name: loss}]\n  provider: {type: ollama, model: llama3.1, endpoint: 'http://ollama.invalid:11434'}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: fabricwatch-operator}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: op}}\n  template:\n    metadata: {labels: {app: op}}\n    spec: {containers: [{name: op, image: localhost/fabricwatch-operator:dev}]}\n")
        .await?;

    let bin = fabricwatch_tests::controller_binary()?;
    let log = std::env::temp_dir().join(format!("fabricwatch-operator-{}-rbac.log", ns.name()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let mut child = Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--namespace", ns.name(), "--watch-namespace", ns.name()])
        .args([
            "--owner-deployment",
            "fabricwatch-operator",
            "--central-interval-seconds",
            "5",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()?;

    let result = async {
        let mts = ns.api::<MonitorTarget>();
        wait_for(&mts, "fabric", has_condition("Accepted", "True"), CONVERGE).await?;
        wait_for(
            &ns.api::<DaemonSet>(),
            "fabric-agent",
            |o: Option<&DaemonSet>| o.is_some(),
            CONVERGE,
        )
        .await?;
        wait_for(
            &ns.api::<AlertRule>(),
            "loss",
            has_condition("Accepted", "True"),
            CONVERGE,
        )
        .await?;
        wait_for(
            &ns.api::<AIAnalysis>(),
            "explain",
            has_condition("Accepted", "True"),
            CONVERGE,
        )
        .await?;
        for d in ["fabricwatch-analytics", "fabricwatch-notifier"] {
            wait_for(
                &ns.api::<Deployment>(),
                d,
                |o: Option<&Deployment>| o.is_some(),
                CONVERGE,
            )
            .await?;
        }
        // Events were recorded with the controller's identity.
        let events =
            Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), ns.name())
                .list(&Default::default())
                .await?;
        ensure!(
            events
                .items
                .iter()
                .any(|e| e.reporting_controller.as_deref() == Some("fabricwatch-operator")),
            "no Event from the controller"
        );
        // Give the housekeeping loop a few rounds, then look for any denied request.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        ensure!(
            !text.to_lowercase().contains("forbidden"),
            "the controller was denied something:\n{text}"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    if result.is_err() {
        eprintln!(
            "operator log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&name, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(&name, &dp)
        .await;
    let _ = std::fs::remove_file(&kubeconfig);
    result?;
    ns.cleanup().await
}
