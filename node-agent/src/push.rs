//! Pushing reports to analytics (`POST <url>/api/v1/reports`, bearer token re-read from a
//! file on every attempt so a rotated projected ServiceAccount token is picked up).
//!
//! Collection never waits on the network: [`PushQueue::enqueue`] only appends to a bounded
//! in-memory buffer (dropping the oldest report when full), and [`run`] drains it in order
//! with exponential backoff (1 s doubling, ±20 % jitter) while analytics is away. The backoff
//! stops growing at the report interval (at most 60 s), so an agent recovers within one
//! interval of analytics becoming reachable again.
//!
//! A failed attempt is logged with its whole error chain and counted by [`FailureCause`]
//! (`fabricwatch_agent_push_errors_total{cause}`): "error sending request" alone does not
//! tell a name that does not resolve from a Service that kube-proxy has not programmed yet.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use fabricwatch_proto::report::{AgentReport, PushResponse, REPORT_PATH};
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::metrics::AgentMetrics;

/// First retry delay.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay, whatever the interval.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The longest retry delay for a report interval: the interval itself, within
/// [`BACKOFF_START`]..=[`BACKOFF_MAX`]. Capping at the interval means a pusher never sleeps
/// through more than one report's worth of time after analytics comes back.
pub fn backoff_max_for(interval: Duration) -> Duration {
    interval.clamp(BACKOFF_START, BACKOFF_MAX)
}

/// Push settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PushSettings {
    /// Base URL of analytics.
    pub url: String,
    /// Bearer token file.
    pub token_file: PathBuf,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Largest random delay before a push, so that agents do not push in lockstep.
    pub max_jitter: Duration,
    /// First retry delay (tests shorten it).
    pub backoff_start: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Attempt {
    /// 2xx with the parsed answer.
    Accepted(PushResponse),
    /// 400 / 413: the report will never be accepted; it is dropped.
    Rejected(u16),
    /// 401 / 403: token problem; kept and retried (the token may be rotated).
    Unauthorized(u16),
    /// 5xx or any other status: retried.
    ServerError(u16),
    /// No HTTP answer (name resolution, connection, TLS, timeout) or no token: retried.
    /// The message is the whole error chain.
    Network(FailureCause, String),
}

/// Why an attempt got no HTTP answer; the `cause` label of
/// `fabricwatch_agent_push_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureCause {
    /// The token file could not be read.
    TokenFile,
    /// The analytics host name did not resolve (`getaddrinfo` failed or returned nothing).
    Dns,
    /// TCP RST on connect: nothing listens at the address (or a firewall rejects).
    ConnectionRefused,
    /// `EHOSTUNREACH`/`ENETUNREACH`: no route, e.g. a Service IP that the node's kube-proxy
    /// has not programmed and that the node's routes do not cover.
    Unreachable,
    /// The TCP handshake did not finish within the request timeout.
    ConnectTimeout,
    /// Any other failure while connecting.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Connected, but no complete answer within the request timeout.
    Timeout,
    /// The connection was reset or closed under the request.
    ConnectionReset,
    /// Anything else (reading the body, a protocol error).
    Other,
}

impl FailureCause {
    /// Every cause, in label order (for pre-registering metric series).
    pub const ALL: [Self; 10] = [
        Self::TokenFile,
        Self::Dns,
        Self::ConnectionRefused,
        Self::Unreachable,
        Self::ConnectTimeout,
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::ConnectionReset,
        Self::Other,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::TokenFile => "token_file",
            Self::Dns => "dns",
            Self::ConnectionRefused => "connection_refused",
            Self::Unreachable => "unreachable",
            Self::ConnectTimeout => "connect_timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::ConnectionReset => "connection_reset",
            Self::Other => "other",
        }
    }

    /// Classifies a reqwest error by the first OS error in its source chain, then by what
    /// reqwest knows (connect phase, timeout), then by the resolver's and TLS stack's words
    /// (hyper-util's resolver wraps `getaddrinfo` failures as "dns error" without an OS
    /// error kind).
    pub fn of(err: &reqwest::Error) -> Self {
        use std::io::ErrorKind as K;
        let chain = fabricwatch_common::error_chain(err).to_ascii_lowercase();
        if chain.contains("dns error") || chain.contains("failed to lookup address") {
            return Self::Dns;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    K::ConnectionRefused => return Self::ConnectionRefused,
                    K::HostUnreachable | K::NetworkUnreachable => return Self::Unreachable,
                    K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                        return Self::ConnectionReset
                    }
                    K::TimedOut if err.is_connect() => return Self::ConnectTimeout,
                    K::TimedOut => return Self::Timeout,
                    _ => {}
                }
            }
            source = e.source();
        }
        if err.is_timeout() {
            return if err.is_connect() {
                Self::ConnectTimeout
            } else {
                Self::Timeout
            };
        }
        if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake") {
            return Self::Tls;
        }
        if err.is_connect() {
            return Self::Connect;
        }
        Self::Other
    }
}

impl Attempt {
    /// The `result` label of `fabricwatch_agent_push_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted(_) => "ok",
            Self::Rejected(_) => "rejected",
            Self::Unauthorized(_) => "unauthorized",
            Self::ServerError(_) => "server_error",
            Self::Network(..) => "network",
        }
    }
}

/// The bounded buffer between collection and the pusher.
#[derive(Clone, Debug)]
pub struct PushQueue {
    inner: Arc<Mutex<VecDeque<AgentReport>>>,
    notify: Arc<Notify>,
    capacity: usize,
}

impl PushQueue {
    /// A queue holding at most `capacity` reports (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            notify: Arc::new(Notify::new()),
            capacity: capacity.max(1),
        }
    }

    /// Appends a report without blocking; returns how many old reports were dropped.
    pub fn enqueue(&self, report: AgentReport) -> usize {
        let mut dropped = 0;
        if let Ok(mut q) = self.inner.lock() {
            q.push_back(report);
            while q.len() > self.capacity {
                q.pop_front();
                dropped += 1;
            }
        }
        self.notify.notify_one();
        dropped
    }

    /// Reports waiting.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn front(&self) -> Option<AgentReport> {
        self.inner.lock().ok().and_then(|q| q.front().cloned())
    }

    fn pop_front(&self) {
        if let Ok(mut q) = self.inner.lock() {
            q.pop_front();
        }
    }
}

/// One push attempt.
pub async fn push_once(
    client: &reqwest::Client,
    settings: &PushSettings,
    report: &AgentReport,
) -> Attempt {
    let token = match std::fs::read_to_string(&settings.token_file) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            return Attempt::Network(
                FailureCause::TokenFile,
                format!(
                    "cannot read token file {}: {e}",
                    settings.token_file.display()
                ),
            )
        }
    };
    let url = format!("{}{}", settings.url.trim_end_matches('/'), REPORT_PATH);
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .timeout(settings.timeout)
        .json(report)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Network(FailureCause::of(&e), fabricwatch_common::error_chain(&e))
        }
    };
    let status = resp.status().as_u16();
    match status {
        200..=299 => {
            let body = resp.bytes().await.unwrap_or_default();
            if body.is_empty() {
                return Attempt::Accepted(PushResponse::default());
            }
            match serde_json::from_slice::<PushResponse>(&body) {
                Ok(r) => Attempt::Accepted(r),
                Err(e) => {
                    tracing::warn!(error = %e, "analytics answered with an unreadable push response");
                    Attempt::Accepted(PushResponse::default())
                }
            }
        }
        400 | 413 => Attempt::Rejected(status),
        401 | 403 => Attempt::Unauthorized(status),
        s => Attempt::ServerError(s),
    }
}

/// Drains `queue` until `shutdown` turns true, publishing every accepted answer on
/// `responses`.
pub async fn run(
    settings: PushSettings,
    queue: PushQueue,
    responses: watch::Sender<Option<PushResponse>>,
    metrics: Option<AgentMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; reports will not be pushed");
            return;
        }
    };
    let mut backoff = settings.backoff_start;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if queue.is_empty() {
            tokio::select! {
                _ = queue.notify.notified() => {}
                _ = shutdown.changed() => continue,
            }
        }
        let jitter = settings
            .max_jitter
            .mul_f64(rand::rng().random_range(0.0..1.0));
        if sleep_or_shutdown(jitter, &mut shutdown).await {
            return;
        }
        while let Some(report) = queue.front() {
            let attempt = push_once(&client, &settings, &report).await;
            if let Some(m) = &metrics {
                m.push_total.with_label_values(&[attempt.label()]).inc();
                if let Attempt::Network(cause, _) = &attempt {
                    m.push_errors.with_label_values(&[cause.label()]).inc();
                }
            }
            match attempt {
                Attempt::Accepted(r) => {
                    queue.pop_front();
                    backoff = settings.backoff_start;
                    let _ = responses.send(Some(r));
                }
                Attempt::Rejected(s) => {
                    tracing::warn!(
                        status = s,
                        seq = report.seq,
                        "analytics rejected a report; dropping it"
                    );
                    queue.pop_front();
                    if let Some(m) = &metrics {
                        m.push_dropped.inc();
                    }
                }
                Attempt::Network(cause, message) => {
                    tracing::warn!(
                        cause = cause.label(),
                        error = %message,
                        url = %settings.url,
                        retry_in = ?backoff,
                        "push failed"
                    );
                    let wait = backoff.mul_f64(rand::rng().random_range(0.8..1.2));
                    backoff = (backoff * 2).min(settings.backoff_max);
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return;
                    }
                }
                other => {
                    tracing::warn!(result = ?other, retry_in = ?backoff, "push failed");
                    let wait = backoff.mul_f64(rand::rng().random_range(0.8..1.2));
                    backoff = (backoff * 2).min(settings.backoff_max);
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return;
                    }
                }
            }
            if let Some(m) = &metrics {
                m.push_buffered
                    .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
            }
        }
    }
}

/// Sleeps; returns `true` when shutdown was requested meanwhile.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if d.is_zero() {
        return *shutdown.borrow();
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_dropping_oldest() {
        let q = PushQueue::new(2);
        for seq in 1..=3 {
            let dropped = q.enqueue(AgentReport {
                seq,
                ..AgentReport::default()
            });
            assert_eq!(dropped, usize::from(seq == 3));
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.front().map(|r| r.seq), Some(2));
    }
}
