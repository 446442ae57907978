//! The HTTP API over a real socket: auth, validation, idempotency, /metrics.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabricwatch_common::auth::{Identity, StaticTokens};
use fabricwatch_common::serve::{ops_router, Readiness};
use fabricwatch_notifier::api::{router, Access};
use fabricwatch_notifier::channel::{ChannelSpec, NamedChannel, NotifyConfig, SecretKey};
use fabricwatch_notifier::channels::SendContext;
use fabricwatch_notifier::engine::{Engine, EngineConfig};
use fabricwatch_notifier::metrics::Metrics;
use fabricwatch_notifier::outcome::MemoryStatus;
use fabricwatch_notifier::resolve::StaticResolver;
use fabricwatch_notifier::store::MemoryStore;
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind, NOTIFY_PATH};
use fabricwatch_proto::{ObjectRef, Severity};
use support::{Receiver, Reply};

const ANALYTICS: &str = "system:serviceaccount:fabricwatch:fabricwatch-analytics";

/// Token table standing in for the API server's TokenReview.
fn tokens() -> StaticTokens {
    StaticTokens::new([
        ("analytics-token", Identity::named(ANALYTICS)),
        (
            "agent-token",
            Identity::named("system:serviceaccount:fabricwatch:fabricwatch-agent"),
        ),
    ])
    .unavailable_for("review-down")
}

fn request(id: &str) -> NotificationRequest {
    NotificationRequest {
        schema_version: 1,
        id: id.into(),
        source_kind: SourceKind::AlertRule,
        source: ObjectRef {
            namespace: "fabric".into(),
            name: "rule".into(),
        },
        fingerprint: "fp".into(),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        labels: BTreeMap::from([("alertname".to_owned(), "X".to_owned())]),
        annotations: BTreeMap::new(),
        value: None,
        starts_at: chrono::Utc::now(),
        ends_at: None,
    }
}

#[tokio::test]
async fn api_end_to_end() {
    let hook = Receiver::start(Reply::ok("")).await;
    let mut resolver = StaticResolver::default();
    resolver.configs.insert(
        (
            SourceKind::AlertRule,
            ObjectRef {
                namespace: "fabric".into(),
                name: "rule".into(),
            },
        ),
        NotifyConfig {
            channels: vec![NamedChannel {
                name: "hook".into(),
                spec: ChannelSpec::Webhook {
                    url: SecretKey {
                        name: "wh".into(),
                        key: "url".into(),
                    },
                    hmac_key: None,
                },
            }],
            group_wait: Duration::ZERO,
            ..NotifyConfig::default()
        },
    );
    resolver.secrets.insert(
        ("fabric".into(), "wh".into(), "url".into()),
        hook.url("/hook"),
    );
    let registry = prometheus::Registry::new();
    let engine = Arc::new(
        Engine::start(
            EngineConfig {
                tick: Duration::from_millis(20),
                ..EngineConfig::default()
            },
            SendContext::new("", "", Duration::from_secs(2)).expect("client"),
            MemoryStore::default(),
            resolver,
            MemoryStatus::default(),
            Metrics::new(&registry).expect("metrics"),
        )
        .await
        .expect("engine"),
    );
    let access = Access {
        authenticator: Arc::new(tokens()),
        allowed: Arc::new(vec![ANALYTICS.into()]),
    };
    let app = router(engine.clone(), access).merge(ops_router(registry, Readiness::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let worker = {
        let e = engine.clone();
        tokio::spawn(async move { e.run(std::future::pending()).await })
    };
    let url = format!("http://{addr}{NOTIFY_PATH}");
    let http = reqwest::Client::new();
    let post = |token: Option<&str>, body: String| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let body = serde_json::to_string(&request("req-1")).expect("json");

    let r = post(None, body.clone()).await.expect("send");
    assert_eq!(r.status(), 401);
    let r = post(Some("stolen"), body.clone()).await.expect("send");
    assert_eq!(r.status(), 401);
    let r = post(Some("agent-token"), body.clone()).await.expect("send");
    assert_eq!(r.status(), 403);
    let r = post(Some("review-down"), body.clone()).await.expect("send");
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let r = post(Some("analytics-token"), "{\"id\": 3}".into())
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let err: serde_json::Value = r.json().await.expect("json");
    assert!(err["error"]
        .as_str()
        .expect("error")
        .contains("invalid notification request"));

    let r = post(Some("analytics-token"), body.clone())
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    let ack: serde_json::Value = r.json().await.expect("json");
    assert_eq!(ack, serde_json::json!({"id": "req-1", "duplicate": false}));
    let r = post(Some("analytics-token"), body.clone())
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    let ack: serde_json::Value = r.json().await.expect("json");
    assert_eq!(ack["duplicate"], true);

    assert!(support::wait_for(Duration::from_secs(5), || hook.requests().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hook.requests().len(), 1);

    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        "fabricwatch_notifier_notifications_total{channel=\"webhook\",result=\"Sent\"} 1",
        "fabricwatch_notifier_requests_total{outcome=\"accepted\"} 1",
        "fabricwatch_notifier_requests_total{outcome=\"duplicate\"} 1",
        "fabricwatch_notifier_queue_depth 0",
        "fabricwatch_notifier_delivery_duration_seconds_count{channel=\"webhook\"} 1",
        "fabricwatch_notifier_retries_total{channel=\"webhook\"} 0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    worker.abort();
}
