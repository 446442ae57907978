//! The Kubernetes edges against a real API server (the `e2e/cluster` one or
//! `FABRICWATCH_E2E_KUBECONFIG`); skipped unless `FABRICWATCH_E2E=1`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use fabricwatch_crds::AlertRule;
use fabricwatch_notifier::channel::{ChannelKind, ChannelSpec};
use fabricwatch_notifier::channels::SendContext;
use fabricwatch_notifier::engine::{Engine, EngineConfig};
use fabricwatch_notifier::kube_edge::{ConfigMapStore, KubeResolver, KubeStatus};
use fabricwatch_notifier::metrics::Metrics;
use fabricwatch_notifier::resolve::{ResolveError, Resolver};
use fabricwatch_notifier::store::Store;
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind};
use fabricwatch_proto::{ObjectRef, Severity};
use fabricwatch_tests::require_cluster;
use kube::api::{Patch, PatchParams};
use support::{Receiver, Reply};

const CANARY: &str = "CANARY-kube-31d9";

fn request(ns: &str, id: &str) -> NotificationRequest {
    NotificationRequest {
        schema_version: 1,
        id: id.into(),
        source_kind: SourceKind::AlertRule,
        source: ObjectRef {
            namespace: ns.into(),
            name: "high-loss".into(),
        },
        fingerprint: "fp-n1".into(),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        labels: BTreeMap::from([
            ("alertname".to_owned(), "HighLoss".to_owned()),
            ("node".to_owned(), "n1".to_owned()),
        ]),
        annotations: BTreeMap::new(),
        value: Some(9.0),
        starts_at: Utc::now(),
        ends_at: None,
    }
}

#[tokio::test]
async fn notifier_against_a_real_api_server() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = require_cluster!();
    cluster.install_crds().await?;
    let ns = cluster.namespace("notifier").await?;
    let n = ns.name().to_owned();
    let hook = Receiver::start(Reply::ok("")).await;
    let down = support::free_port();
    ns.apply_yaml(&format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: hooks}}
stringData:
  good: "{good}"
  bad: "http://{down}/x/{CANARY}"
  unrelated: "{CANARY}-other"
---
apiVersion: fabricwatch.io/v1alpha1
kind: AlertRule
metadata: {{name: high-loss}}
spec:
  targetRef: {{name: fabric}}
  metric: ping_loss_percent
  operator: gt
  threshold: 5
  notify:
    groupWait: 0s
    channels:
      - name: good
        webhook: {{urlSecretRef: {{name: hooks, key: good}}}}
      - name: bad
        webhook: {{urlSecretRef: {{name: hooks, key: bad}}}}
"#,
        good = hook.url(&format!("/hook/{CANARY}")),
    ))
    .await?;

    // Another writer owns status.state.
    let rules = ns.api::<AlertRule>();
    rules
        .patch_status(
            "high-loss",
            &PatchParams::apply("fabricwatch-analytics").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "fabricwatch.io/v1alpha1",
                "kind": "AlertRule",
                "status": {"state": "Firing"},
            })),
        )
        .await?;

    // Resolver: channels mapped, only the referenced key read, errors name no value.
    let resolver = KubeResolver::new(cluster.client());
    let src = ObjectRef {
        namespace: n.clone(),
        name: "high-loss".into(),
    };
    let cfg = resolver.config(SourceKind::AlertRule, &src).await?;
    assert_eq!(cfg.channels.len(), 2);
    assert_eq!(cfg.channels[0].spec.kind(), ChannelKind::Webhook);
    assert!(matches!(cfg.channels[0].spec, ChannelSpec::Webhook { .. }));
    assert_eq!(
        cfg.cooldown,
        Duration::from_secs(300),
        "AlertRule default cooldown"
    );
    let missing = resolver.secret(&n, "hooks", "nope").await;
    assert!(matches!(missing, Err(ResolveError::NotFound(ref m)) if m.contains("nope")));
    let gone = resolver
        .config(
            SourceKind::AlertRule,
            &ObjectRef {
                namespace: n.clone(),
                name: "absent".into(),
            },
        )
        .await;
    assert!(matches!(gone, Err(ResolveError::NotFound(_))));

    // The engine with the ConfigMap outbox and the status writer.
    let store = ConfigMapStore::new(cluster.client(), &n, "fabricwatch-notifier-state");
    let cfg = EngineConfig {
        retry: fabricwatch_notifier::deliver::RetryPolicy {
            max_attempts: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(1),
        },
        ..EngineConfig::default()
    };
    let start = |store: ConfigMapStore| {
        Engine::start(
            cfg.clone(),
            SendContext::new("", "", Duration::from_secs(2)).expect("client"),
            store,
            KubeResolver::new(cluster.client()),
            KubeStatus::new(cluster.client()),
            Metrics::unregistered(),
        )
    };
    let e1 = start(store.clone()).await?;
    assert!(!e1.accept(request(&n, "req-1")).await?.duplicate);
    drop(e1);
    // "Rescheduled": a new engine on a new store object finds the request in the ConfigMap.
    let store2 = ConfigMapStore::new(cluster.client(), &n, "fabricwatch-notifier-state");
    assert_eq!(store2.load().await?.pending.len(), 1);
    let e2 = start(store2.clone()).await?;
    e2.process_due(Utc::now()).await;
    assert_eq!(hook.requests().len(), 1);
    assert!(e2.accept(request(&n, "req-1")).await?.duplicate);
    drop(e2);
    let e3 = start(store2).await?;
    assert_eq!(e3.queue_depth().await, 0);
    assert!(e3.accept(request(&n, "req-1")).await?.duplicate);
    e3.process_due(Utc::now()).await;
    assert_eq!(hook.requests().len(), 1, "sent twice across restarts");

    // Status: notifications written by the notifier, the other writer's field intact.
    let rule = rules.get("high-loss").await?;
    let status = rule.status.clone().expect("status");
    assert_eq!(
        status.state.map(|s| format!("{s:?}")),
        Some("Firing".into()),
        "other writer's field lost"
    );
    let by: BTreeMap<String, _> = status
        .notifications
        .iter()
        .map(|c| (c.channel.clone(), c.clone()))
        .collect();
    assert_eq!(format!("{:?}", by["good"].result), "Some(Sent)");
    assert_eq!(format!("{:?}", by["bad"].result), "Some(Failed)");
    assert_eq!(by["bad"].consecutive_failures, Some(1));
    let whole = serde_json::to_string(&rule)?;
    assert!(!whole.contains(CANARY), "secret in the AlertRule: {whole}");
    let managers: Vec<String> = rule
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"fabricwatch-notifier".to_string()),
        "{managers:?}"
    );
    assert!(
        managers.contains(&"fabricwatch-analytics".to_string()),
        "{managers:?}"
    );

    // The outbox ConfigMap holds no secret either.
    let cm = ns
        .api::<k8s_openapi::api::core::v1::ConfigMap>()
        .get("fabricwatch-notifier-state")
        .await?;
    assert!(!serde_json::to_string(&cm)?.contains(CANARY));
    ns.cleanup().await?;
    Ok(())
}
