//! The AI runner against a real kube-apiserver (the local `e2e/cluster`, or the cluster named
//! by `FABRICWATCH_E2E_KUBECONFIG`) and the `fabricwatch-ai` Bedrock stand-in on 127.0.0.1:
//! an AIAnalysis with `provider.endpoint` at the stand-in and a credentials Secret is run
//! through the `fabricwatch.io/run-now` annotation; its status gets findings and usage, the
//! annotation is removed, and after a restart of the runner the daily spend is still there
//! (a budget equal to it makes zero calls, with a BudgetExceeded Warning Event). Skipped
//! (passing) unless `FABRICWATCH_E2E=1`.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use fabricwatch_ai::testing::StandIn;
use fabricwatch_analytics::{
    aianalysis::{self, RunnerConfig},
    fleet::{Fleet, Settings},
    k8s::Stores,
    metrics::Metrics,
    state::Shared,
};
use fabricwatch_crds::{ai_analysis::Phase, AIAnalysis};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, RdmaPortReport},
    ObjectRef,
};
use fabricwatch_tests::{eventually, TestNamespace};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(60);
const SECRET_KEY: &str = "cluster-canary-secret-access-key";

fn report(ns: &str, node: &str, peer: &str, loss: f64) -> AgentReport {
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: ns.into(),
            name: "fabric".into(),
        },
        node: node.into(),
        node_ip: Some(format!("10.9.0.{}", node.len())),
        agent_version: "test".into(),
        seq: 1,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: peer.into(),
            address: "10.9.0.99".into(),
            sent: 20,
            received: 15,
            loss_percent: loss,
            ..Default::default()
        }],
        rdma: vec![RdmaPortReport {
            device: "mlx5_0".into(),
            port: 1,
            state: "ACTIVE".into(),
            phys_state: "LinkUp".into(),
            rates: [("symbol_error".to_string(), 2.0)].into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn runner(client: kube::Client, ns: &TestNamespace) -> Result<aianalysis::RunnerHandle> {
    let stores = Stores::start(client.clone()).await?;
    let mut fleet = Fleet::new(Settings::default());
    fleet.ingest(&report(ns.name(), "gpu-a", "gpu-b", 25.0), None, Utc::now());
    fleet.ingest(&report(ns.name(), "gpu-b", "gpu-a", 0.0), None, Utc::now());
    let shared = Arc::new(Shared {
        fleet: Mutex::new(fleet),
        ..Shared::new(Metrics::new()?, Arc::new(stores.clone()))
    });
    let (_tx, rx) = tokio::sync::mpsc::channel(16);
    // The sender is dropped: only run-now triggers in this test.
    aianalysis::start(
        client,
        shared,
        stores,
        None,
        rx,
        RunnerConfig {
            coalesce: Duration::from_millis(200),
            tick: Duration::from_millis(200),
            ..RunnerConfig::default()
        },
    )
    .await
}

async fn run_now(api: &Api<AIAnalysis>, value: &str) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {"fabricwatch.io/run-now": value}}});
    api.patch("diag", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[tokio::test]
async fn run_now_writes_findings_and_usage_and_a_restart_keeps_todays_spend() -> Result<()> {
    fabricwatch_analytics::install_crypto_provider();
    let Some(cluster) = fabricwatch_tests::Cluster::connect_if_enabled().await? else {
        return Ok(());
    };
    cluster.install_crds().await?;
    let ns = cluster.namespace("analytics-ai").await?;
    let client = cluster.client();
    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None).await?;
    let url = server.url();
    ns.apply_yaml(&format!(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {{name: fabric}}\nspec: {{}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: aws}}\nstringData: {{AWS_ACCESS_KEY_ID: AKIDCLUSTERCANARY, AWS_SECRET_ACCESS_KEY: {SECRET_KEY}}}\n---\n\
         apiVersion: fabricwatch.io/v1alpha1\nkind: AIAnalysis\nmetadata: {{name: diag}}\n\
         spec: {{targetRefs: [{{kind: MonitorTarget, name: fabric}}], \
         provider: {{type: bedrock, model: anthropic.claude-3-5-haiku-20241022-v1:0, region: us-east-1, endpoint: '{url}', \
         awsCredentialsSecretRef: {{name: aws}}, timeout: 10s, maxTokens: 256}}}}\n"
    ))
    .await?;
    let api: Api<AIAnalysis> = ns.api();
    let first = runner(client.clone(), &ns).await?;
    run_now(&api, "1").await?;
    let done = eventually("findings and usage in status", SETTLE, || {
        let api = api.clone();
        async move {
            let a = api.get("diag").await?;
            let s = a.status.clone().context("no status")?;
            ensure!(s.phase == Some(Phase::Succeeded), "phase {:?}", s.phase);
            ensure!(!s.findings.is_empty(), "no findings");
            let u = s.usage.clone().context("no usage")?;
            ensure!(u.today_cost_usd.unwrap_or(0.0) > 0.0, "{u:?}");
            ensure!(u.day.is_some(), "{u:?}");
            ensure!(
                a.metadata
                    .annotations
                    .as_ref()
                    .is_none_or(|m| !m.contains_key("fabricwatch.io/run-now")),
                "run-now not cleared"
            );
            Ok(a)
        }
    })
    .await?;
    let status = done.status.clone().context("status")?;
    // The canned answer names node-1, the pseudonym of the first node name: gpu-a.
    ensure!(
        status.findings[0].affected.iter().any(|a| a == "gpu-a"),
        "{:?}",
        status.findings
    );
    ensure!(
        server.request_count() == 1,
        "{} calls",
        server.request_count()
    );
    let text = serde_json::to_string(&done)?;
    ensure!(!text.contains(SECRET_KEY), "secret in the object");
    ensure!(
        !server.requests()[0].prompt_text().contains("gpu-a"),
        "real name sent"
    );
    let spent = status
        .usage
        .as_ref()
        .and_then(|u| u.today_cost_usd)
        .context("spent")?;
    first.stop();

    // "Restart": a new runner, fresh cache, a daily budget equal to what is spent.
    api.patch(
        "diag",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"budget": {"dailyUsd": spent,
            "prices": {"inputPer1kTokens": 0.0008, "outputPer1kTokens": 0.004}}}})),
    )
    .await?;
    let second = runner(client.clone(), &ns).await?;
    run_now(&api, "2").await?;
    eventually("BudgetExceeded after the restart", SETTLE, || {
        let api = api.clone();
        async move {
            let s = api.get("diag").await?.status.context("no status")?;
            ensure!(
                s.phase == Some(Phase::BudgetExceeded),
                "phase {:?}",
                s.phase
            );
            let u = s.usage.context("no usage")?;
            ensure!(u.today_cost_usd == Some(spent), "spend reset: {u:?}");
            Ok(())
        }
    })
    .await?;
    ensure!(
        server.request_count() == 1,
        "a call after the budget was spent"
    );
    let events: Api<Event> = ns.api();
    eventually("a BudgetExceeded Warning Event", SETTLE, || {
        let events = events.clone();
        async move {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=diag"))
                .await?;
            ensure!(
                list.items
                    .iter()
                    .any(|e| e.reason.as_deref() == Some("BudgetExceeded")
                        && e.type_.as_deref() == Some("Warning")),
                "no event yet"
            );
            ensure!(
                !list.items.iter().any(|e| e
                    .message
                    .as_deref()
                    .unwrap_or_default()
                    .contains(SECRET_KEY)),
                "secret in an Event"
            );
            Ok(())
        }
    })
    .await?;
    second.stop();
    ns.cleanup().await
}
