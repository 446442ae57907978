//! The pusher against a real HTTP server on 127.0.0.1.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Json, Router};
use fabricwatch_agent::{
    metrics::AgentMetrics,
    push::{self, PushQueue, PushSettings},
};
use fabricwatch_proto::report::{AgentReport, Peer, PushResponse};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct Server {
    seen: Arc<Mutex<Vec<(u64, String)>>>,
    fail_first: Arc<AtomicUsize>,
    want_token: Arc<Mutex<Option<String>>>,
}

async fn reports(
    State(s): State<Server>,
    headers: HeaderMap,
    Json(r): Json<AgentReport>,
) -> Result<Json<PushResponse>, StatusCode> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if let Some(t) = s.want_token.lock().expect("lock").clone() {
        if auth != format!("Bearer {t}") {
            return Err(StatusCode::UNAUTHORIZED);
        }
    }
    if s.fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    s.seen.lock().expect("lock").push((r.seq, auth));
    Ok(Json(PushResponse {
        peers: vec![Peer {
            node: "n2".into(),
            address: "10.0.0.2".into(),
        }],
        interval_seconds: Some(7.0),
    }))
}

async fn start_server(s: Server, addr: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let local = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/api/v1/reports", post(reports))
        .with_state(s);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    local
}

struct Harness {
    queue: PushQueue,
    responses: watch::Receiver<Option<PushResponse>>,
    metrics: AgentMetrics,
    _shutdown: watch::Sender<bool>,
    token: tempfile::NamedTempFile,
}

fn start_pusher(url: String) -> Harness {
    let token = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(token.path(), "tok1\n").expect("write");
    let queue = PushQueue::new(10);
    let (tx, rx) = watch::channel(None);
    let (stx, srx) = watch::channel(false);
    let metrics = AgentMetrics::new().expect("metrics");
    let settings = PushSettings {
        url,
        token_file: token.path().to_path_buf(),
        timeout: Duration::from_secs(2),
        max_jitter: Duration::from_millis(5),
        backoff_start: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    };
    tokio::spawn(push::run(
        settings,
        queue.clone(),
        tx,
        Some(metrics.clone()),
        srx,
    ));
    Harness {
        queue,
        responses: rx,
        metrics,
        _shutdown: stx,
        token,
    }
}

fn report(seq: u64) -> AgentReport {
    AgentReport {
        schema_version: 1,
        seq,
        node: "n1".into(),
        ..AgentReport::default()
    }
}

async fn wait_for(seen: &Arc<Mutex<Vec<(u64, String)>>>, n: usize) -> Vec<(u64, String)> {
    for _ in 0..200 {
        if seen.lock().expect("lock").len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    seen.lock().expect("lock").clone()
}

#[tokio::test]
async fn accepted_push_carries_token_and_returns_peers() {
    let s = Server::default();
    let addr = start_server(s.clone(), "127.0.0.1:0".parse().expect("addr")).await;
    let mut h = start_pusher(format!("http://{addr}/"));
    h.queue.enqueue(report(1));
    let seen = wait_for(&s.seen, 1).await;
    assert_eq!(seen, vec![(1, "Bearer tok1".to_string())]);
    h.responses.changed().await.expect("response");
    let r = h.responses.borrow().clone().expect("some");
    assert_eq!(r.peers[0].node, "n2");
    assert_eq!(r.interval_seconds, Some(7.0));
    assert_eq!(h.metrics.push_total.with_label_values(&["ok"]).get(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_in_order() {
    let s = Server::default();
    s.fail_first.store(3, Ordering::SeqCst);
    let addr = start_server(s.clone(), "127.0.0.1:0".parse().expect("addr")).await;
    let h = start_pusher(format!("http://{addr}"));
    for seq in 1..=3 {
        h.queue.enqueue(report(seq));
    }
    let seen = wait_for(&s.seen, 3).await;
    assert_eq!(seen.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        h.metrics
            .push_total
            .with_label_values(&["server_error"])
            .get(),
        3
    );
    assert_eq!(h.queue.len(), 0);
}

#[tokio::test]
async fn analytics_down_then_up_delivers_the_buffer() {
    // Reserve a port, then free it so connections are refused.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let h = start_pusher(format!("http://{addr}"));
    for seq in 1..=4 {
        h.queue.enqueue(report(seq));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.metrics.push_total.with_label_values(&["network"]).get() >= 2);
    assert_eq!(
        h.metrics
            .push_errors
            .with_label_values(&["connection_refused"])
            .get(),
        h.metrics.push_total.with_label_values(&["network"]).get(),
        "every failed attempt is counted under its cause"
    );
    assert_eq!(h.queue.len(), 4, "nothing lost while analytics is away");
    let s = Server::default();
    start_server(s.clone(), addr).await;
    let seen = wait_for(&s.seen, 4).await;
    assert_eq!(seen.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[tokio::test]
async fn unauthorized_until_the_token_file_is_rotated() {
    let s = Server::default();
    *s.want_token.lock().expect("lock") = Some("rotated".into());
    let addr = start_server(s.clone(), "127.0.0.1:0".parse().expect("addr")).await;
    let h = start_pusher(format!("http://{addr}"));
    h.queue.enqueue(report(9));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.metrics
            .push_total
            .with_label_values(&["unauthorized"])
            .get()
            >= 1
    );
    assert!(s.seen.lock().expect("lock").is_empty());
    std::fs::write(h.token.path(), "rotated").expect("write");
    let seen = wait_for(&s.seen, 1).await;
    assert_eq!(seen, vec![(9, "Bearer rotated".to_string())]);
}

fn settings_for(url: String, token: &tempfile::NamedTempFile, timeout: Duration) -> PushSettings {
    PushSettings {
        url,
        token_file: token.path().to_path_buf(),
        timeout,
        max_jitter: Duration::ZERO,
        backoff_start: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

fn token_file() -> tempfile::NamedTempFile {
    let token = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(token.path(), "tok1\n").expect("write");
    token
}

/// A resolver that knows no names, as a cluster DNS does before it has the Service.
struct NoSuchName;

impl reqwest::dns::Resolve for NoSuchName {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            Err(Box::new(std::io::Error::other(format!("{name}: NXDOMAIN")))
                as Box<dyn std::error::Error + Send + Sync>)
        })
    }
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure_with_its_cause() {
    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(NoSuchName))
        .build()
        .expect("client");
    let token = token_file();
    let settings = settings_for(
        "http://fabricwatch-analytics.fw.svc:8080".into(),
        &token,
        Duration::from_secs(2),
    );
    match push::push_once(&client, &settings, &report(1)).await {
        push::Attempt::Network(cause, message) => {
            assert_eq!(cause, push::FailureCause::Dns, "{message}");
            assert!(
                message.contains("NXDOMAIN"),
                "the resolver's own words are kept: {message}"
            );
        }
        other => panic!("expected a network failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accept and hold connections without ever answering.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let token = token_file();
    let settings = settings_for(format!("http://{addr}"), &token, Duration::from_millis(300));
    let client = reqwest::Client::new();
    match push::push_once(&client, &settings, &report(1)).await {
        push::Attempt::Network(cause, message) => {
            assert_eq!(cause, push::FailureCause::Timeout, "{message}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_token_file_is_named() {
    let token = token_file();
    let mut settings = settings_for("http://127.0.0.1:9".into(), &token, Duration::from_secs(1));
    settings.token_file = token.path().with_extension("missing");
    match push::push_once(&reqwest::Client::new(), &settings, &report(1)).await {
        push::Attempt::Network(cause, message) => {
            assert_eq!(cause, push::FailureCause::TokenFile);
            assert!(message.contains("cannot read token file"), "{message}");
        }
        other => panic!("expected a token-file failure, got {other:?}"),
    }
}

#[test]
fn backoff_stops_growing_at_the_interval() {
    assert_eq!(
        push::backoff_max_for(Duration::from_secs(10)),
        Duration::from_secs(10)
    );
    assert_eq!(
        push::backoff_max_for(Duration::from_millis(100)),
        push::BACKOFF_START
    );
    assert_eq!(
        push::backoff_max_for(Duration::from_secs(3600)),
        push::BACKOFF_MAX
    );
}
