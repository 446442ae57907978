//! Client of the notifier: a bounded queue drained by one worker that POSTs each
//! `NotificationRequest` to `<notifier-url>/api/v1/notifications` with analytics' own
//! projected ServiceAccount token, retrying transient failures with exponential backoff.
//!
//! Requests are sent in order (a Resolved never overtakes its Firing). Ids are idempotency
//! keys, so a retry after a lost answer is harmless.

use std::{path::PathBuf, time::Duration};

use fabricwatch_proto::notify::{NotificationAck, NotificationRequest, NOTIFY_PATH};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Client settings.
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// Base URL, e.g. `http://fabricwatch-notifier.fabricwatch.svc:8080`.
    pub url: String,
    /// File with the bearer token, re-read for every request (kubelet rotates it).
    pub token_file: Option<PathBuf>,
    /// Requests held while the notifier is slow or away; newer ones are dropped when full.
    pub queue: usize,
    /// Attempts per request before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            token_file: None,
            queue: 1000,
            max_attempts: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Delay before retry `attempt` (1-based): `min(base · 2^(attempt−1), max)`, the capped
/// exponential backoff of e.g. the AWS Architecture Blog "Exponential Backoff and Jitter"
/// (2015) without jitter — one sender needs no de-synchronisation.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(max)
}

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accepted { duplicate: bool },
    Retry(String),
    Permanent(String),
}

/// Handle to the queue.
#[derive(Clone, Debug)]
pub struct Notifier {
    tx: mpsc::Sender<NotificationRequest>,
}

impl Notifier {
    /// Starts the worker; it ends when every handle is dropped and the queue is drained.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn start(config: NotifierConfig, metrics: Metrics) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(config.timeout).build()?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(worker(config, http, rx, metrics));
        Ok(Self { tx })
    }

    /// Queues `req`; when the queue is full it is dropped, counted and logged (the alert
    /// state is kept, and a still-firing series is re-sent on its next repeat).
    pub fn send(&self, req: NotificationRequest, metrics: &Metrics) {
        if let Err(e) = self.tx.try_send(req) {
            metrics.notifications.with_label_values(&["dropped"]).inc();
            tracing::warn!("notification dropped, queue full or closed: {e}");
        }
    }
}

async fn attempt(
    config: &NotifierConfig,
    http: &reqwest::Client,
    req: &NotificationRequest,
) -> Outcome {
    let url = format!("{}{NOTIFY_PATH}", config.url.trim_end_matches('/'));
    let mut rb = http.post(&url).json(req);
    if let Some(path) = &config.token_file {
        match tokio::fs::read_to_string(path).await {
            Ok(t) => rb = rb.bearer_auth(t.trim()),
            Err(e) => {
                return Outcome::Retry(format!("cannot read token file {}: {e}", path.display()))
            }
        }
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(format!("POST {url}: {e}")),
    };
    let status = resp.status();
    if status.is_success() {
        let duplicate = resp
            .json::<NotificationAck>()
            .await
            .map(|a| a.duplicate)
            .unwrap_or(false);
        return Outcome::Accepted { duplicate };
    }
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    let msg = format!("notifier answered {status}: {body}");
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Outcome::Retry(msg)
    } else {
        // 400/401/403/404: resending the same request cannot succeed.
        Outcome::Permanent(msg)
    }
}

async fn worker(
    config: NotifierConfig,
    http: reqwest::Client,
    mut rx: mpsc::Receiver<NotificationRequest>,
    metrics: Metrics,
) {
    while let Some(req) = rx.recv().await {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt(&config, &http, &req).await {
                Outcome::Accepted { duplicate } => {
                    let label = if duplicate { "duplicate" } else { "accepted" };
                    metrics.notifications.with_label_values(&[label]).inc();
                    tracing::debug!(id = %req.id, duplicate, "notification accepted");
                    break;
                }
                Outcome::Permanent(msg) => {
                    metrics.notifications.with_label_values(&["failed"]).inc();
                    tracing::error!(id = %req.id, source = %req.source, "notification refused: {msg}");
                    break;
                }
                Outcome::Retry(msg) if tries >= config.max_attempts => {
                    metrics.notifications.with_label_values(&["failed"]).inc();
                    tracing::error!(id = %req.id, tries, "notification failed, giving up: {msg}");
                    break;
                }
                Outcome::Retry(msg) => {
                    let wait = backoff(tries, config.base_backoff, config.max_backoff);
                    tracing::warn!(id = %req.id, tries, ?wait, "notification failed, retrying: {msg}");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    };

    use axum::{extract::State, http::HeaderMap, http::StatusCode, routing::post, Json, Router};
    use chrono::Utc;
    use fabricwatch_proto::{
        notify::{AlertStatus, SourceKind},
        ObjectRef, Severity,
    };

    #[test]
    fn backoff_doubles_and_caps() {
        let (b, m) = (Duration::from_millis(500), Duration::from_secs(5));
        assert_eq!(backoff(1, b, m), Duration::from_millis(500));
        assert_eq!(backoff(2, b, m), Duration::from_secs(1));
        assert_eq!(backoff(4, b, m), Duration::from_secs(4));
        assert_eq!(backoff(5, b, m), Duration::from_secs(5));
        assert_eq!(backoff(99, b, m), Duration::from_secs(5));
    }

    fn request(id: &str) -> NotificationRequest {
        NotificationRequest {
            schema_version: 1,
            id: id.into(),
            source_kind: SourceKind::AlertRule,
            source: ObjectRef {
                namespace: "ns".into(),
                name: "r".into(),
            },
            fingerprint: "fp".into(),
            status: AlertStatus::Firing,
            severity: Severity::Warning,
            labels: Default::default(),
            annotations: Default::default(),
            value: Some(1.0),
            starts_at: Utc::now(),
            ends_at: None,
        }
    }

    /// (request id, Authorization header) per call.
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<AtomicUsize>,
        seen: Seen,
    }

    async fn handler(
        State(f): State<Fake>,
        headers: HeaderMap,
        Json(r): Json<NotificationRequest>,
    ) -> (StatusCode, String) {
        let n = f.calls.fetch_add(1, Ordering::SeqCst);
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        f.seen.lock().expect("lock").push((r.id.clone(), auth));
        if n == 0 {
            return (StatusCode::SERVICE_UNAVAILABLE, "warming up".into());
        }
        (
            StatusCode::ACCEPTED,
            serde_json::json!({"id": r.id, "duplicate": n == 2}).to_string(),
        )
    }

    #[tokio::test]
    async fn retries_in_order_with_the_token_from_the_file() {
        let fake = Fake::default();
        let app = Router::new()
            .route(NOTIFY_PATH, post(handler))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("tmp");
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-123\n").expect("write");
        let metrics = Metrics::new().expect("metrics");
        let config = NotifierConfig {
            url: format!("http://{addr}/"),
            token_file: Some(token),
            base_backoff: Duration::from_millis(10),
            ..NotifierConfig::default()
        };
        let n = Notifier::start(config, metrics.clone()).expect("client");
        n.send(request("a"), &metrics);
        n.send(request("b"), &metrics);
        for _ in 0..200 {
            if fake.calls.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = fake.seen.lock().expect("lock").clone();
        let ids: Vec<&str> = seen.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(
            ids,
            vec!["a", "a", "b"],
            "503 retried before the next request"
        );
        assert!(seen
            .iter()
            .all(|(_, a)| a.as_deref() == Some("Bearer tok-123")));
        // let the worker record the last outcome
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            metrics.notifications.with_label_values(&["accepted"]).get(),
            1
        );
        assert_eq!(
            metrics
                .notifications
                .with_label_values(&["duplicate"])
                .get(),
            1
        );
    }
}
