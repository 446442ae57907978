//! Analytics against a real kube-apiserver (the local `e2e/cluster`, or the cluster named by
//! `FABRICWATCH_E2E_KUBECONFIG`): TokenReview with real projected tokens through the real
//! ingest endpoint, status written once and not rewritten, and a restart in the middle of a
//! firing alert. Skipped (passing) unless `FABRICWATCH_E2E=1`; see the `fabricwatch-tests` docs.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use fabricwatch_analytics::{
    evaluator::Evaluator,
    fleet::{Fleet, Settings},
    http::router,
    k8s::{StatusWriter, Stores},
    metrics::Metrics,
    state::Shared,
};
use fabricwatch_common::auth::{AuthError, Authenticator, TokenReviewAuthenticator};
use fabricwatch_crds::{AlertRule, MonitorTarget};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, REPORT_PATH},
    ObjectRef,
};
use fabricwatch_tests::{eventually, TestNamespace};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
};
use kube::api::{Api, PostParams};

const AUDIENCE: &str = "fabricwatch-analytics";
const SETTLE: Duration = Duration::from_secs(30);

async fn token(ns: &TestNamespace, sa: &str, audience: &str) -> Result<String> {
    let api: Api<ServiceAccount> = ns.api();
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![audience.into()],
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await?;
    answer
        .status
        .map(|s| s.token)
        .context("TokenRequest without a token")
}

fn report(ns: &str, node: &str, seq: u64, loss: f64) -> AgentReport {
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: ns.into(),
            name: "fabric".into(),
        },
        node: node.into(),
        node_ip: Some(format!("10.9.0.{}", node.len())),
        agent_version: "test".into(),
        seq,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: "x".into(),
            address: "10.9.0.99".into(),
            // Counts that agree with the percentage: loss is graded on the probes.
            sent: 1000,
            received: 1000 - (loss * 10.0).round() as u32,
            loss_percent: loss,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn setup(prefix: &str) -> Result<Option<(fabricwatch_tests::Cluster, TestNamespace)>> {
    fabricwatch_common::telemetry::init(fabricwatch_common::telemetry::LogFormat::Text, "warn");
    fabricwatch_analytics::install_crypto_provider();
    let cluster = match fabricwatch_tests::Cluster::connect_if_enabled().await? {
        Some(c) => c,
        None => return Ok(None),
    };
    cluster.install_crds().await?;
    let ns = cluster.namespace(prefix).await?;
    ns.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: fabric-agent}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: intruder}\n---\n\
         apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: fabric}\nspec: {}\n",
    )
    .await?;
    Ok(Some((cluster, ns)))
}

#[tokio::test]
async fn real_tokens_are_reviewed_through_the_ingest_endpoint() -> Result<()> {
    let Some((cluster, ns)) = setup("analytics-auth").await? else {
        return Ok(());
    };
    let client = cluster.client();
    let auth = Arc::new(TokenReviewAuthenticator::new(
        client.clone(),
        vec![AUDIENCE.into()],
    ));

    // Direct: the real projected token is accepted and names its ServiceAccount.
    let good = token(&ns, "fabric-agent", AUDIENCE).await?;
    let id = auth
        .authenticate(&good)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        id.service_account == Some((ns.name().to_string(), "fabric-agent".into())),
        "{id:?}"
    );
    let other_audience = token(&ns, "fabric-agent", "somebody-else").await?;
    ensure!(
        matches!(
            auth.authenticate(&other_audience).await,
            Err(AuthError::Rejected(_))
        ),
        "wrong audience accepted"
    );
    // Flip one character inside the signature, away from its end: the last base64url
    // character of a 2048-bit signature carries padding bits, so changing it may leave the
    // decoded signature, and thus the token, valid.
    let sig_start = good.rfind('.').map_or(0, |i| i + 1);
    let at = sig_start + (good.len() - sig_start) / 2;
    let mut forged = good.clone();
    let flipped = if good.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    forged.replace_range(at..at + 1, flipped);
    ensure!(
        matches!(
            auth.authenticate(&forged).await,
            Err(AuthError::Rejected(_))
        ),
        "forged token accepted"
    );

    // Through HTTP, with the reflector-backed catalog.
    let stores = Stores::start(client.clone()).await?;
    let metrics = Metrics::new()?;
    let shared = Arc::new(Shared {
        auth: Some(auth),
        ..Shared::new(metrics.clone(), Arc::new(stores.clone()))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(
                shared,
                std::sync::Arc::new(fabricwatch_analytics::authz::Access::open()),
            ),
        )
        .await
    });
    // The MonitorTarget may reach the store a moment after the list.
    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        let name = ns.name().to_string();
        async move {
            use fabricwatch_analytics::state::Catalog;
            stores
                .target(&ObjectRef {
                    namespace: name,
                    name: "fabric".into(),
                })
                .map(|_| ())
                .context("target not in store")
        }
    })
    .await?;
    let intruder = token(&ns, "intruder", AUDIENCE).await?;
    let http = reqwest::Client::new();
    for (tok, want) in [
        (good.as_str(), 200),
        (other_audience.as_str(), 401),
        (forged.as_str(), 401),
        (intruder.as_str(), 403),
    ] {
        let r = http
            .post(format!("{base}{REPORT_PATH}"))
            .bearer_auth(tok)
            .json(&report(ns.name(), "n1", 1, 0.0))
            .send()
            .await?;
        let status = r.status().as_u16();
        let body = r.text().await?;
        ensure!(status == want, "expected {want}, got {status}: {body}");
    }
    ns.cleanup().await
}

#[tokio::test]
async fn status_is_written_once_and_not_rewritten() -> Result<()> {
    let Some((cluster, ns)) = setup("analytics-status").await? else {
        return Ok(());
    };
    let client = cluster.client();
    let stores = Stores::start(client.clone()).await?;
    let metrics = Metrics::new()?;
    let mut writer = StatusWriter::new(
        client.clone(),
        stores.clone(),
        metrics.clone(),
        Duration::ZERO,
        Duration::from_secs(3600),
    );
    let target = ObjectRef {
        namespace: ns.name().into(),
        name: "fabric".into(),
    };
    let mut fleet = Fleet::new(Settings::default());
    let applied = || {
        metrics
            .status_writes
            .with_label_values(&["MonitorTarget", "applied"])
            .get()
    };
    let api: Api<MonitorTarget> = ns.api();

    fleet.ingest(&report(ns.name(), "n1", 1, 0.0), None, Utc::now());
    fleet.ingest(&report(ns.name(), "n2", 1, 3.0), None, Utc::now());
    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        let t = target.clone();
        async move {
            use fabricwatch_analytics::state::Catalog;
            stores.target(&t).map(|_| ()).context("target not in store")
        }
    })
    .await?;
    let view = fleet.view(&target, Utc::now()).context("view")?;
    writer.write_targets(&[view], Utc::now()).await;
    ensure!(applied() == 1, "first status write");
    let written = api.get("fabric").await?;
    let status = written.status.clone().context("status")?;
    ensure!(
        format!("{:?}", status.health) == "Some(Warning)",
        "{status:?}"
    );
    ensure!(
        status.nodes.as_ref().and_then(|n| n.reporting) == Some(2),
        "{status:?}"
    );
    ensure!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True"),
        "{status:?}"
    );
    let managers: Vec<String> = written
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    ensure!(
        managers.iter().any(|m| m == "fabricwatch-analytics"),
        "{managers:?}"
    );
    let rv = written.metadata.resource_version.clone();

    // Wait until the store has our write, then a new report with the same meaning.
    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        async move {
            let t = stores.targets.state();
            ensure!(
                t.iter()
                    .any(|m| m.status.as_ref().is_some_and(|s| s.health.is_some())),
                "status not in store yet"
            );
            Ok(())
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // (A healthy node's next report: n2's loss is graded on its window of probes, so another
    // lossy n2 report adds evidence and changes its problem's text.)
    fleet.ingest(&report(ns.name(), "n1", 2, 0.0), None, Utc::now());
    let view = fleet.view(&target, Utc::now()).context("view")?;
    for _ in 0..3 {
        writer
            .write_targets(std::slice::from_ref(&view), Utc::now())
            .await;
    }
    ensure!(
        applied() == 1,
        "rewritten without a meaningful change: {} writes",
        applied()
    );
    ensure!(
        api.get("fabric").await?.metadata.resource_version == rv,
        "resourceVersion moved"
    );

    // A meaningful change is written.
    fleet.ingest(&report(ns.name(), "n2", 3, 50.0), None, Utc::now());
    let view = fleet.view(&target, Utc::now()).context("view")?;
    writer.write_targets(&[view], Utc::now()).await;
    ensure!(applied() == 2, "critical loss must be written");
    ensure!(
        format!(
            "{:?}",
            api.get("fabric").await?.status.and_then(|s| s.health)
        ) == "Some(Critical)",
        "health"
    );
    ns.cleanup().await
}

#[tokio::test]
async fn restart_mid_firing_resends_the_same_notification_id() -> Result<()> {
    let Some((cluster, ns)) = setup("analytics-restart").await? else {
        return Ok(());
    };
    let client = cluster.client();
    ns.apply_yaml(
        "apiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {name: loss}\n\
         spec: {targetRef: {name: fabric}, metric: ping_loss_percent, operator: gt, threshold: 5}\n",
    )
    .await?;
    let stores = Stores::start(client.clone()).await?;
    let rule = ObjectRef {
        namespace: ns.name().into(),
        name: "loss".into(),
    };
    let metrics = Metrics::new()?;
    let mut writer = StatusWriter::new(
        client.clone(),
        stores.clone(),
        metrics.clone(),
        Duration::ZERO,
        Duration::from_secs(3600),
    );
    let mut fleet = Fleet::new(Settings::default());
    fleet.ingest(&report(ns.name(), "n1", 1, 30.0), None, Utc::now());

    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        let rule = rule.clone();
        async move {
            ensure!(
                stores.rule_inputs().iter().any(|r| r.rule == rule),
                "rule not in store"
            );
            Ok(())
        }
    })
    .await?;
    let mut before = Evaluator::default();
    before.sync(
        stores
            .rule_inputs()
            .into_iter()
            .filter(|r| r.rule == rule)
            .collect(),
    );
    let c1 = before.evaluate(&fleet, Utc::now());
    ensure!(
        c1.notifications.len() == 1,
        "one Firing notification: {:?}",
        c1.notifications
    );
    writer.write_rules(&c1.reports, Utc::now()).await;
    let api: Api<AlertRule> = ns.api();
    let status = api.get("loss").await?.status.context("rule status")?;
    ensure!(
        status.firing.len() == 1 && status.notifications.is_empty(),
        "{status:?}"
    );

    // "Restart": a new evaluator built from what the cluster has.
    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        let rule = rule.clone();
        async move {
            ensure!(
                stores
                    .rule_inputs()
                    .iter()
                    .any(|r| r.rule == rule && !r.recorded_firing.is_empty()),
                "firing not in store"
            );
            Ok(())
        }
    })
    .await?;
    let mut after = Evaluator::default();
    after.sync(
        stores
            .rule_inputs()
            .into_iter()
            .filter(|r| r.rule == rule)
            .collect(),
    );
    fleet.ingest(&report(ns.name(), "n1", 2, 30.0), None, Utc::now());
    let c2 = after.evaluate(&fleet, Utc::now());
    ensure!(c2.notifications.len() == 1, "{:?}", c2.notifications);
    ensure!(
        c2.notifications[0].id == c1.notifications[0].id,
        "the re-send must carry the original id"
    );
    ensure!(
        c2.reports[0].firing[0].since == c1.reports[0].firing[0].since,
        "firing start survives"
    );
    ns.cleanup().await
}

/// A report of `node` collected at `at`, with `loss` percent on its one path.
fn report_at(ns: &str, node: &str, seq: u64, at: chrono::DateTime<Utc>, loss: f64) -> AgentReport {
    AgentReport {
        collected_at: at,
        ..report(ns, node, seq, loss)
    }
}

#[tokio::test]
async fn anomaly_baselines_live_in_owned_configmaps_and_onsets_become_events() -> Result<()> {
    use fabricwatch_analytics::anomaly::{events, snapshot, store};
    use k8s_openapi::api::{core::v1::ConfigMap, events::v1::Event};
    use kube::api::{DeleteParams, ListParams};

    let Some((cluster, ns)) = setup("analytics-baselines").await? else {
        return Ok(());
    };
    let client = cluster.client();
    let targets: Api<MonitorTarget> = ns.api();
    let mt = targets.get("fabric").await?;
    let key = ObjectRef {
        namespace: ns.name().into(),
        name: "fabric".into(),
    };

    // Two nodes warmed up over 100 reports (1,000 s) of a quiet path.
    let mut fleet = Fleet::new(Settings::default());
    let start = Utc::now() - chrono::Duration::seconds(1100);
    for i in 0..100u64 {
        let at = start + chrono::Duration::seconds(10 * i as i64);
        for node in ["n1", "n2"] {
            fleet.ingest(&report_at(ns.name(), node, i + 1, at, 0.0), None, at);
        }
    }
    let baselines = fleet.anomaly_baselines(&key);
    ensure!(
        baselines.len() == 2,
        "two nodes' baselines: {:?}",
        baselines.keys()
    );

    // Saved in two chunks (one node each), then in one: the second ConfigMap goes away.
    let small = snapshot::encode(&baselines, 64);
    ensure!(small.len() == 2, "{} chunks of 64 bytes", small.len());
    store::save(&client, &mt, &small).await?;
    let cms: Api<ConfigMap> = ns.api();
    let selector = ListParams::default().labels(&format!("{}=fabric", store::LABEL));
    let listed = cms.list(&selector).await?;
    let mut names: Vec<String> = listed
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    ensure!(
        names
            == [
                store::configmap_name("fabric", 0),
                store::configmap_name("fabric", 1)
            ],
        "ConfigMaps: {names:?}"
    );
    for cm in &listed {
        let owner = cm
            .metadata
            .owner_references
            .as_ref()
            .and_then(|o| o.first())
            .context("no owner reference")?;
        ensure!(
            owner.kind == "MonitorTarget" && Some(&owner.uid) == mt.metadata.uid.as_ref(),
            "owner: {owner:?}"
        );
    }
    let one = snapshot::encode(&baselines, store::MAX_CHUNK_BYTES);
    store::save(&client, &mt, &one).await?;
    let left = cms.list(&selector).await?;
    ensure!(
        left.items.len() == 1,
        "stale chunk kept: {:?}",
        left.iter()
            .map(|c| c.metadata.name.clone())
            .collect::<Vec<_>>()
    );

    // A restarted analytics loads them and scores its first reports at once: a spike on n1
    // right after the restart is an anomaly, with no warm-up.
    let loaded = store::load(&client).await?;
    let (_, restored) = loaded
        .into_iter()
        .find(|(t, _)| *t == key)
        .context("this target's baselines not loaded")?;
    ensure!(
        restored.keys().collect::<Vec<_>>() == baselines.keys().collect::<Vec<_>>(),
        "restored nodes {:?}",
        restored.keys()
    );
    let mut fresh = Fleet::new(Settings::default());
    fresh.restore_anomaly_baselines(key.clone(), restored);
    let now = Utc::now();
    let quiet = fresh.ingest(&report_at(ns.name(), "n1", 101, now, 0.0), None, now);
    ensure!(quiet.new_anomaly.is_none(), "quiet report flagged");

    // The onset becomes an AnomalyDetected Event on the MonitorTarget.
    let stores = Stores::start(client.clone()).await?;
    eventually("the watch to catch up", SETTLE, || {
        let stores = stores.clone();
        let t = key.clone();
        async move {
            use fabricwatch_analytics::state::Catalog;
            stores.target(&t).map(|_| ()).context("target not in store")
        }
    })
    .await?;
    let shared = Arc::new(Shared {
        fleet: Mutex::new(fresh),
        ..Shared::new(Metrics::new()?, Arc::new(stores.clone()))
    });
    let publisher = tokio::spawn(events::publish_loop(
        client.clone(),
        shared.clone(),
        stores.targets.clone(),
        Duration::from_secs(1),
    ));
    // Let the publisher take its start time before the onset.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at = Utc::now();
    let spike = fabricwatch_analytics::state::lock(&shared.fleet).ingest(
        &report_at(ns.name(), "n1", 102, at, 40.0),
        None,
        at,
    );
    ensure!(
        spike.new_anomaly.is_some(),
        "40 % loss after a quiet baseline is not an anomaly"
    );
    let seen = eventually("an AnomalyDetected Event", SETTLE, || {
        let api: Api<Event> = ns.api();
        async move {
            let list = api.list(&ListParams::default()).await?;
            let hit = list.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("AnomalyDetected")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("fabric")
            });
            hit.context("none yet")
        }
    })
    .await;
    publisher.abort();
    let event = seen?;
    let note = event.note.unwrap_or_default();
    ensure!(
        note.contains("n1")
            && note.contains("ping_loss_percent")
            && event.type_.as_deref() == Some("Warning"),
        "Event: {note}"
    );

    // Deleting the MonitorTarget deletes its baselines (garbage collection by owner).
    targets.delete("fabric", &DeleteParams::default()).await?;
    eventually(
        "the baselines ConfigMap collected",
        Duration::from_secs(90),
        || {
            let cms = cms.clone();
            let selector = selector.clone();
            async move {
                let n = cms.list(&selector).await?.items.len();
                ensure!(n == 0, "{n} left");
                Ok(())
            }
        },
    )
    .await?;
    ns.cleanup().await
}
