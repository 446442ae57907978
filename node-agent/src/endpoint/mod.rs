//! Endpoint probes (`MonitorTarget.spec.endpoints[]`): HTTP(S), TCP (optionally TLS) and
//! DNS checks of services, run from this node with its own network identity.
//!
//! Each endpoint has a task of its own that probes every `intervalSeconds` (default: the
//! collection interval) and keeps its latest result; a collection only reads the latest
//! results, so a slow endpoint never delays the other collectors. Each probe is bounded by
//! its timeout as a whole; a probe that runs out names the phase it was in.

pub mod dns;
pub mod http;
pub mod tls;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use chrono::{DateTime, Utc};
use fabricwatch_proto::{
    agent_config::ThresholdsConfig,
    endpoint::{EndpointConfig, EndpointKind, EndpointPhases, EndpointReport, EndpointState},
    Severity,
};
use tokio::{net::TcpStream, sync::watch};

use crate::{
    agent::{Assembly, Fold},
    health::{grade, Problem},
};

/// Where the DNS probe finds the default resolver.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Shortest time between two probes of one endpoint, seconds.
pub const MIN_INTERVAL_SECONDS: f64 = 1.0;

/// What one probe found so far; filled phase by phase, so that a probe cut off by its
/// timeout still reports what it reached.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The phase in progress (`resolve`, `connect`, `tls`, `processing`, `transfer`).
    pub stage: &'static str,
    /// Time per phase.
    pub phases: EndpointPhases,
    /// Final HTTP status.
    pub status_code: Option<u16>,
    /// Address connected to, or resolver asked.
    pub address: Option<String>,
    /// Earliest certificate expiry of the chain.
    pub tls_not_after: Option<DateTime<Utc>>,
    /// TLS version.
    pub tls_version: Option<String>,
    /// DNS answers.
    pub answers: Vec<String>,
    /// Whether the body contained `bodyMatch`.
    pub body_matched: bool,
}

/// Resolves `host` (the `resolve` phase; `getaddrinfo`, like curl) to its first address.
///
/// # Errors
/// `resolve <host>: <error>` or `resolve <host>: no address`.
pub async fn resolve(host: &str, port: u16, trace: &mut Trace) -> Result<SocketAddr, String> {
    trace.stage = "resolve";
    let t = Instant::now();
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let r = tokio::net::lookup_host((h, port)).await;
    trace.phases.resolve = Some(trace.phases.resolve.unwrap_or(0.0) + t.elapsed().as_secs_f64());
    let addr = r
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {host}: no address"))?;
    trace.address = Some(addr.to_string());
    Ok(addr)
}

/// Opens a TCP connection (the `connect` phase), `TCP_NODELAY` set.
///
/// # Errors
/// `connect <addr>: <error>`, e.g. `Connection refused`.
pub async fn connect(addr: SocketAddr, trace: &mut Trace) -> Result<TcpStream, String> {
    trace.stage = "connect";
    let t = Instant::now();
    let r = TcpStream::connect(addr).await;
    trace.phases.connect = Some(trace.phases.connect.unwrap_or(0.0) + t.elapsed().as_secs_f64());
    let s = r.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// A TLS client built for one endpoint, kept while its CA file is unchanged.
struct CachedTls {
    client: Arc<tls::TlsClient>,
    ca_modified: Option<SystemTime>,
}

fn ca_modified(cfg: &EndpointConfig) -> Option<SystemTime> {
    let tls = cfg
        .http
        .as_ref()
        .map(|h| &h.tls)
        .or(cfg.tcp.as_ref().and_then(|t| t.tls.as_ref()))?;
    let f = tls.ca_file.as_ref()?;
    std::fs::metadata(f).and_then(|m| m.modified()).ok()
}

fn needs_tls(cfg: &EndpointConfig) -> bool {
    cfg.http
        .as_ref()
        .is_some_and(|h| h.url.to_ascii_lowercase().starts_with("https://"))
        || cfg.tcp.as_ref().is_some_and(|t| t.tls.is_some())
}

fn tls_client(
    cfg: &EndpointConfig,
    cache: &mut Option<CachedTls>,
) -> Result<Option<Arc<tls::TlsClient>>, String> {
    if !needs_tls(cfg) {
        return Ok(None);
    }
    let modified = ca_modified(cfg);
    if let Some(c) = cache.as_ref().filter(|c| c.ca_modified == modified) {
        return Ok(Some(c.client.clone()));
    }
    let settings = cfg
        .http
        .as_ref()
        .map(|h| h.tls.clone())
        .or(cfg.tcp.as_ref().and_then(|t| t.tls.clone()))
        .unwrap_or_default();
    let client = Arc::new(tls::TlsClient::new(&settings)?);
    *cache = Some(CachedTls {
        client: client.clone(),
        ca_modified: modified,
    });
    Ok(Some(client))
}

async fn run_kind(
    cfg: &EndpointConfig,
    kind: EndpointKind,
    tls: Option<&tls::TlsClient>,
    resolv_conf: &str,
    trace: &mut Trace,
) -> Result<(), String> {
    match kind {
        EndpointKind::Http => match &cfg.http {
            Some(h) => http::probe(h, tls, trace).await,
            None => Err("no http settings".into()),
        },
        EndpointKind::Tcp => match &cfg.tcp {
            Some(t) => {
                let addr = resolve(&t.host, t.port, trace).await?;
                let tcp = connect(addr, trace).await?;
                if let Some(client) = tls {
                    trace.stage = "tls";
                    let start = Instant::now();
                    let r = client
                        .handshake(tcp, &t.host, &mut trace.tls_not_after)
                        .await;
                    trace.phases.tls = Some(start.elapsed().as_secs_f64());
                    trace.tls_version = r?.version;
                }
                Ok(())
            }
            None => Err("no tcp settings".into()),
        },
        EndpointKind::Dns => match &cfg.dns {
            Some(d) => dns::probe(d, resolv_conf, trace).await,
            None => Err("no dns settings".into()),
        },
    }
}

/// Probes `cfg` once, bounded by its timeout, and judges the result (down on any error
/// or timeout, slow at or beyond `slowSeconds`, else up).
pub async fn probe_once(
    cfg: &EndpointConfig,
    tls_cache: &mut CachedTlsHandle,
    resolv_conf: &str,
) -> EndpointReport {
    let probed_at = Utc::now();
    let start = Instant::now();
    let mut trace = Trace::default();
    let kind = cfg.kind();
    let timeout = Duration::try_from_secs_f64(cfg.timeout_seconds).unwrap_or(
        Duration::from_secs_f64(fabricwatch_proto::endpoint::DEFAULT_TIMEOUT_SECONDS),
    );
    let outcome = match kind {
        None => Err("set exactly one of http, tcp, dns".to_string()),
        Some(kind) => match tls_client(cfg, &mut tls_cache.0) {
            Err(e) => Err(e),
            Ok(client) => {
                let fut = run_kind(cfg, kind, client.as_deref(), resolv_conf, &mut trace);
                match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "timeout after {} (in {})",
                        humantime::format_duration(timeout),
                        if trace.stage.is_empty() {
                            "setup"
                        } else {
                            trace.stage
                        }
                    )),
                }
            }
        },
    };
    let duration = start.elapsed().as_secs_f64();
    let state = match &outcome {
        Err(_) => EndpointState::Down,
        Ok(()) if duration >= cfg.slow_seconds => EndpointState::Slow,
        Ok(()) => EndpointState::Up,
    };
    EndpointReport {
        name: cfg.name.clone(),
        kind: kind.unwrap_or_default(),
        target: cfg.target(),
        state,
        probed_at,
        duration_seconds: duration,
        phases: trace.phases,
        status_code: trace.status_code,
        address: trace.address,
        tls_not_after: trace.tls_not_after,
        tls_version: trace.tls_version,
        answers: trace.answers,
        error: outcome.err(),
    }
}

/// An endpoint's TLS client cache, owned by its probe task.
#[derive(Default)]
pub struct CachedTlsHandle(Option<CachedTls>);

/// The probe tasks of an agent and their latest results.
pub struct EndpointProber {
    names: Vec<String>,
    latest: Arc<Mutex<BTreeMap<String, EndpointReport>>>,
}

impl EndpointProber {
    /// Starts one task per endpoint (at most [`fabricwatch_proto::endpoint::MAX_ENDPOINTS`];
    /// duplicate names after the first are skipped). Tasks end when `stop` turns true.
    pub fn start(
        configs: &[EndpointConfig],
        default_interval: f64,
        resolv_conf: &str,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let latest = Arc::new(Mutex::new(BTreeMap::new()));
        let mut names = Vec::new();
        for cfg in configs
            .iter()
            .take(fabricwatch_proto::endpoint::MAX_ENDPOINTS)
        {
            if names.contains(&cfg.name) {
                tracing::warn!(endpoint = %cfg.name, "duplicate endpoint name skipped");
                continue;
            }
            names.push(cfg.name.clone());
            let interval = cfg
                .interval_seconds
                .unwrap_or(default_interval)
                .max(MIN_INTERVAL_SECONDS);
            let every = Duration::try_from_secs_f64(interval).unwrap_or(Duration::from_secs(10));
            let (cfg, latest, mut stop, resolv) = (
                cfg.clone(),
                latest.clone(),
                stop.clone(),
                resolv_conf.to_string(),
            );
            tokio::spawn(async move {
                let mut cache = CachedTlsHandle::default();
                loop {
                    let started = Instant::now();
                    let r = tokio::select! {
                        r = probe_once(&cfg, &mut cache, &resolv) => r,
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    if let Some(e) = &r.error {
                        tracing::debug!(endpoint = %cfg.name, error = %e, "endpoint down");
                    }
                    if let Ok(mut m) = latest.lock() {
                        m.insert(cfg.name.clone(), r);
                    }
                    let wait = every.saturating_sub(started.elapsed());
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            });
        }
        Self { names, latest }
    }

    /// The latest result of every endpoint probed at least once, in config order.
    pub fn latest(&self) -> Vec<EndpointReport> {
        let Ok(m) = self.latest.lock() else {
            return Vec::new();
        };
        self.names
            .iter()
            .filter_map(|n| m.get(n).cloned())
            .collect()
    }
}

/// The latest result of each endpoint (probed by their own tasks, not in the collection):
/// the report's `endpoints` and their problems; probe failures are the endpoints' state,
/// not collector errors.
impl Fold for Vec<EndpointReport> {
    fn fold_into(self, a: &mut Assembly<'_>) {
        a.problems
            .extend(classify(&self, &a.config.thresholds, Utc::now()));
        a.report.endpoints = self;
    }
}

/// Problems of the endpoints: down is Critical, slow is Warning, a certificate close to
/// expiry is graded by `tlsCertificateExpiryDays` (lower is worse).
pub fn classify(
    reports: &[EndpointReport],
    t: &ThresholdsConfig,
    now: DateTime<Utc>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for r in reports {
        match r.state {
            EndpointState::Down => out.push(Problem {
                component: "endpoint",
                subject: r.name.clone(),
                severity: Severity::Critical,
                value: 0.0,
                message: format!(
                    "endpoint {} ({}) down: {}",
                    r.name,
                    r.target,
                    r.error.as_deref().unwrap_or("failed")
                ),
            }),
            EndpointState::Slow => out.push(Problem {
                component: "endpoint",
                subject: r.name.clone(),
                severity: Severity::Warning,
                value: r.duration_seconds,
                message: format!(
                    "endpoint {} ({}) slow: {:.3}s",
                    r.name, r.target, r.duration_seconds
                ),
            }),
            EndpointState::Up => {}
        }
        if let Some(days) = r.tls_expiry_days(now) {
            if let Some(severity) = grade(days, &t.tls_certificate_expiry_days, false) {
                out.push(Problem {
                    component: "endpoint",
                    subject: r.name.clone(),
                    severity,
                    value: days,
                    message: format!(
                        "endpoint {} certificate expires in {days:.1} days (warning {}, critical {})",
                        r.name,
                        t.tls_certificate_expiry_days.warning,
                        t.tls_certificate_expiry_days.critical
                    ),
                });
            }
        }
    }
    out
}
