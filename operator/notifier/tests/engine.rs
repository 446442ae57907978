//! The engine against real local receivers: grouping, dedup, cooldown, resolved, rate
//! limit, durability across restarts, and secret canaries.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use fabricwatch_notifier::channel::{ChannelSpec, NamedChannel, NotifyConfig, SecretKey};
use fabricwatch_notifier::channels::SendContext;
use fabricwatch_notifier::deliver::RetryPolicy;
use fabricwatch_notifier::engine::{AcceptError, Engine, EngineConfig};
use fabricwatch_notifier::metrics::Metrics;
use fabricwatch_notifier::outcome::{DeliveryResult, MemoryStatus};
use fabricwatch_notifier::resolve::StaticResolver;
use fabricwatch_notifier::store::MemoryStore;
use fabricwatch_proto::notify::{AlertStatus, NotificationRequest, SourceKind};
use fabricwatch_proto::{ObjectRef, Severity};
use support::{Receiver, Reply};

const CANARY: &str = "CANARY-engine-7c2e";

type TestEngine = Engine<MemoryStore, StaticResolver, MemoryStatus>;

fn source() -> ObjectRef {
    ObjectRef {
        namespace: "fabric".into(),
        name: "high-loss".into(),
    }
}

fn req(id: &str, node: &str, status: AlertStatus) -> NotificationRequest {
    NotificationRequest {
        schema_version: 1,
        id: id.into(),
        source_kind: SourceKind::AlertRule,
        source: source(),
        fingerprint: format!("fp-{node}"),
        status,
        severity: Severity::Warning,
        labels: BTreeMap::from([
            ("alertname".to_owned(), "HighLoss".to_owned()),
            ("node".to_owned(), node.to_owned()),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), format!("loss on {node}"))]),
        value: Some(7.0),
        starts_at: Utc::now(),
        ends_at: (status == AlertStatus::Resolved).then(Utc::now),
    }
}

fn webhook(name: &str, secret: &str) -> NamedChannel {
    NamedChannel {
        name: name.into(),
        spec: ChannelSpec::Webhook {
            url: SecretKey {
                name: secret.into(),
                key: "url".into(),
            },
            hmac_key: None,
        },
    }
}

struct Setup {
    resolver: StaticResolver,
    store: MemoryStore,
    status: MemoryStatus,
    metrics: Metrics,
    cfg: EngineConfig,
    timeout: Duration,
}

impl Setup {
    fn new(notify: NotifyConfig) -> Self {
        let mut resolver = StaticResolver::default();
        resolver
            .configs
            .insert((SourceKind::AlertRule, source()), notify);
        Self {
            resolver,
            store: MemoryStore::default(),
            status: MemoryStatus::default(),
            metrics: Metrics::unregistered(),
            cfg: EngineConfig {
                retry: RetryPolicy {
                    max_attempts: 3,
                    min_delay: Duration::from_millis(10),
                    max_delay: Duration::from_millis(50),
                    max_retry_after: Duration::from_secs(2),
                },
                rate_per_minute: 0,
                tick: Duration::from_millis(20),
                ..EngineConfig::default()
            },
            timeout: Duration::from_millis(700),
        }
    }

    fn secret(&mut self, name: &str, url: String) {
        self.resolver
            .secrets
            .insert(("fabric".into(), name.into(), "url".into()), url);
    }

    async fn engine(&self) -> TestEngine {
        Engine::start(
            self.cfg.clone(),
            SendContext::new("", "", self.timeout).expect("client"),
            self.store.clone(),
            self.resolver.clone(),
            self.status.clone(),
            self.metrics.clone(),
        )
        .await
        .expect("engine")
    }
}

fn notify(channels: Vec<NamedChannel>) -> NotifyConfig {
    NotifyConfig {
        channels,
        group_by: vec!["alertname".into()],
        group_wait: Duration::ZERO,
        repeat_interval: Duration::from_secs(3600),
        cooldown: Duration::ZERO,
    }
}

fn results(status: &MemoryStatus) -> Vec<DeliveryResult> {
    status.all().into_iter().map(|(_, _, o)| o.result).collect()
}

#[tokio::test]
async fn duplicate_requests_are_sent_once() {
    let r = Receiver::start(Reply::ok("")).await;
    let mut s = Setup::new(notify(vec![webhook("hook", "hook-secret")]));
    s.secret("hook-secret", r.url("/hook"));
    let e = s.engine().await;
    let a = req("id-1", "n1", AlertStatus::Firing);
    assert!(!e.accept(a.clone()).await.expect("accept").duplicate);
    assert!(e.accept(a.clone()).await.expect("accept").duplicate);
    e.process_due(Utc::now()).await;
    assert!(e.accept(a.clone()).await.expect("accept").duplicate);
    e.process_due(Utc::now()).await;
    assert_eq!(r.requests().len(), 1);
    assert_eq!(results(&s.status), vec![DeliveryResult::Sent]);
    assert_eq!(e.queue_depth().await, 0);
}

#[tokio::test]
async fn groups_wait_then_go_out_as_one_message() {
    let r = Receiver::start(Reply::ok("")).await;
    let mut n = notify(vec![webhook("hook", "hook-secret")]);
    n.group_wait = Duration::from_millis(300);
    let mut s = Setup::new(n);
    s.secret("hook-secret", r.url("/hook"));
    let e = s.engine().await;
    for node in ["n1", "n2", "n3"] {
        e.accept(req(&format!("id-{node}"), node, AlertStatus::Firing))
            .await
            .expect("accept");
    }
    assert_eq!(e.process_due(Utc::now()).await, 0, "group wait not over");
    assert!(r.requests().is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(e.process_due(Utc::now()).await, 1);
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1);
    let p = reqs[0].json();
    assert_eq!(p["alerts"].as_array().expect("alerts").len(), 3);
    assert_eq!(p["groupLabels"]["alertname"], "HighLoss");
}

#[tokio::test]
async fn fingerprint_dedup_resolved_and_cooldown() {
    let r = Receiver::start(Reply::ok("")).await;
    let mut n = notify(vec![webhook("hook", "hook-secret")]);
    n.group_by = vec!["node".into()];
    n.cooldown = Duration::from_secs(600);
    let mut s = Setup::new(n);
    s.secret("hook-secret", r.url("/hook"));
    let e = s.engine().await;
    let now = Utc::now;
    let steps = [
        // First firing: sent.
        ("a", "n1", AlertStatus::Firing),
        // Same alert, new id, within the repeat interval: deduplicated.
        ("b", "n1", AlertStatus::Firing),
        // Resolves: sent.
        ("c", "n1", AlertStatus::Resolved),
        // Fires again inside the cooldown: suppressed.
        ("d", "n1", AlertStatus::Firing),
        // Another alert resolves that never fired here: suppressed.
        ("e", "n2", AlertStatus::Resolved),
        // Another alert of the rule fires: sent (cooldown is per alert).
        ("f", "n2", AlertStatus::Firing),
    ];
    for (id, node, status) in steps {
        e.accept(req(id, node, status)).await.expect("accept");
        e.process_due(now()).await;
    }
    assert_eq!(
        results(&s.status),
        vec![
            DeliveryResult::Sent,
            DeliveryResult::Deduplicated,
            DeliveryResult::Sent,
            DeliveryResult::Suppressed,
            DeliveryResult::Suppressed,
            DeliveryResult::Sent,
        ]
    );
    let reqs = r.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].json()["status"], "resolved");
    assert_eq!(reqs[2].json()["alerts"][0]["labels"]["node"], "n2");
}

#[tokio::test]
async fn per_channel_rate_limit() {
    let r = Receiver::start(Reply::ok("")).await;
    let mut n = notify(vec![webhook("hook", "hook-secret")]);
    n.group_by = vec!["node".into()];
    let mut s = Setup::new(n);
    s.cfg.rate_per_minute = 1;
    s.cfg.rate_burst = 1;
    s.secret("hook-secret", r.url("/hook"));
    let e = s.engine().await;
    e.accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect("accept");
    e.accept(req("b", "n2", AlertStatus::Firing))
        .await
        .expect("accept");
    e.process_due(Utc::now()).await;
    assert_eq!(r.requests().len(), 1);
    let mut res = results(&s.status);
    res.sort_by_key(|r| r.as_str());
    assert_eq!(res, vec![DeliveryResult::Sent, DeliveryResult::Suppressed]);
}

#[tokio::test]
async fn restart_loses_nothing_and_repeats_nothing() {
    let r = Receiver::start(Reply::ok("")).await;
    let mut n = notify(vec![webhook("hook", "hook-secret")]);
    n.group_by = vec!["node".into()];
    let mut s = Setup::new(n);
    s.secret("hook-secret", r.url("/hook"));
    // Accepted, then the process dies before delivering.
    let e1 = s.engine().await;
    e1.accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect("accept");
    e1.accept(req("b", "n2", AlertStatus::Firing))
        .await
        .expect("accept");
    drop(e1);
    assert!(r.requests().is_empty());
    // The next process delivers both.
    let e2 = s.engine().await;
    assert_eq!(e2.queue_depth().await, 2);
    e2.process_due(Utc::now()).await;
    assert_eq!(r.requests().len(), 2);
    drop(e2);
    // A third process: analytics re-sends the same ids; nothing goes out again.
    let e3 = s.engine().await;
    assert_eq!(e3.queue_depth().await, 0);
    assert!(
        e3.accept(req("a", "n1", AlertStatus::Firing))
            .await
            .expect("accept")
            .duplicate
    );
    assert!(
        e3.accept(req("b", "n2", AlertStatus::Firing))
            .await
            .expect("accept")
            .duplicate
    );
    e3.process_due(Utc::now()).await;
    assert_eq!(r.requests().len(), 2);
}

#[tokio::test]
async fn crash_mid_delivery_does_not_resend_finished_channels() {
    let fast = Receiver::start(Reply::ok("")).await;
    let slow = Receiver::start(Reply::ok("").delayed(Duration::from_secs(3))).await;
    let mut s = Setup::new(notify(vec![
        webhook("fast", "fast-secret"),
        webhook("slow", "slow-secret"),
    ]));
    s.secret("fast-secret", fast.url("/fast"));
    s.secret("slow-secret", slow.url("/slow"));
    s.timeout = Duration::from_secs(10);
    let e1 = Arc::new(s.engine().await);
    e1.accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect("accept");
    let worker = {
        let e1 = e1.clone();
        tokio::spawn(async move { e1.process_due(Utc::now()).await })
    };
    assert!(
        support::wait_for(Duration::from_secs(2), || !fast.requests().is_empty()
            && !slow.requests().is_empty())
        .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The process dies while the slow channel is still waiting for its answer.
    worker.abort();
    let _ = worker.await;
    drop(e1);
    let slow2 = Receiver::start(Reply::ok("")).await;
    s.secret("slow-secret", slow2.url("/slow"));
    let e2 = s.engine().await;
    assert_eq!(e2.queue_depth().await, 1);
    e2.process_due(Utc::now()).await;
    assert_eq!(fast.requests().len(), 1, "finished channel was sent again");
    assert_eq!(
        slow2.requests().len(),
        1,
        "unfinished channel was not resumed"
    );
    assert_eq!(e2.queue_depth().await, 0);
}

#[tokio::test]
async fn store_failure_is_not_acknowledged() {
    let s = Setup::new(notify(vec![]));
    let e = s.engine().await;
    s.store.set_failing(true);
    let err = e
        .accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect_err("store down");
    assert!(matches!(err, AcceptError::Store(_)));
    assert_eq!(e.queue_depth().await, 0);
    s.store.set_failing(false);
    assert!(
        !e.accept(req("a", "n1", AlertStatus::Firing))
            .await
            .expect("accept")
            .duplicate
    );
}

#[tokio::test]
async fn bad_requests_and_full_queue() {
    let mut s = Setup::new(notify(vec![]));
    s.cfg.max_pending = 1;
    s.cfg.tick = Duration::from_secs(3600);
    let e = s.engine().await;
    let mut bad = req("", "n1", AlertStatus::Firing);
    assert!(matches!(
        e.accept(bad.clone()).await,
        Err(AcceptError::Invalid(_))
    ));
    bad.id = "x".into();
    bad.schema_version = 2;
    assert!(matches!(e.accept(bad).await, Err(AcceptError::Invalid(_))));
    e.accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect("accept");
    assert!(matches!(
        e.accept(req("b", "n1", AlertStatus::Firing)).await,
        Err(AcceptError::QueueFull)
    ));
}

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secret_canaries_stay_out_of_logs_status_and_metrics() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let up = Receiver::start(Reply::status(500, "internal error")).await;
    let down = support::free_port();
    let mut n = notify(vec![
        webhook("failing", "failing-secret"),
        webhook("refused", "refused-secret"),
        webhook("missing", "no-such-secret"),
        NamedChannel {
            name: "telegram".into(),
            spec: ChannelSpec::Telegram {
                bot_token: SecretKey {
                    name: "tg".into(),
                    key: "token".into(),
                },
                chat_id: "1".into(),
            },
        },
    ]);
    n.group_by = vec![];
    let mut s = Setup::new(n);
    s.secret("failing-secret", up.url(&format!("/hook/{CANARY}")));
    s.secret(
        "refused-secret",
        format!("https://{down}/x/{CANARY}?token={CANARY}"),
    );
    s.resolver.secrets.insert(
        ("fabric".into(), "tg".into(), "token".into()),
        format!("42:{CANARY}"),
    );
    let registry = prometheus::Registry::new();
    s.metrics = Metrics::new(&registry).expect("metrics");
    let e = s.engine().await;
    e.accept(req("a", "n1", AlertStatus::Firing))
        .await
        .expect("accept");
    e.process_due(Utc::now()).await;

    let outcomes = s.status.all();
    assert_eq!(outcomes.len(), 4);
    for (_, _, o) in &outcomes {
        assert_eq!(o.result, DeliveryResult::Failed, "{o:?}");
        assert!(!o.message.is_empty());
        assert!(!o.message.contains(CANARY), "status leaks: {}", o.message);
    }
    let missing = outcomes
        .iter()
        .find(|(_, _, o)| o.channel == "missing")
        .expect("missing");
    assert!(
        missing.2.message.contains("no-such-secret"),
        "{}",
        missing.2.message
    );

    let mut text = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut text,
    )
    .expect("encode");
    let text = String::from_utf8(text).expect("utf8");
    assert!(
        text.contains(
            "fabricwatch_notifier_notifications_total{channel=\"webhook\",result=\"Failed\"} 3"
        ),
        "{text}"
    );
    assert!(!text.contains(CANARY));

    let logs = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        logs.contains("notification not delivered"),
        "no log lines captured: {logs}"
    );
    assert!(!logs.contains(CANARY), "logs leak: {logs}");
}
