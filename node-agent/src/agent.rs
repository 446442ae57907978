//! The agent's main loop: collect every interval, publish the snapshot for `/metrics` and
//! `/status`, hand the report to the pusher (never waiting on it), apply the peers and
//! interval analytics sends back, and optionally write JSON snapshots.

use std::{
    collections::BTreeMap,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use fabricwatch_common::serve::Readiness;
use fabricwatch_proto::{
    agent_config::AgentConfig,
    report::{AgentReport, AgentState, CollectorError, Peer, PushResponse, REPORT_SCHEMA_VERSION},
};
use rand::Rng;
use tokio::sync::watch;

use crate::{
    endpoint::{self, EndpointProber},
    health::{self, CollectorResult},
    host::{HostCollector, HostOutcome},
    metrics::AgentMetrics,
    ping::{self, PingCollector, PingOutcome, RoundSettings},
    push::{self, PushQueue, PushSettings},
    rdma::{parse::BadValue, FileErrorKind, RdmaCollector, RdmaOutcome, ReadMode},
    snapshot::{self, ErrorCount, PeerTotals, Snapshot},
};

/// Most collector errors carried in one report.
pub const MAX_REPORT_ERRORS: usize = 20;
/// Snapshot files kept in standalone mode.
pub const SNAPSHOTS_KEPT: usize = 60;
/// Bounds applied to an interval analytics asks for, seconds.
pub const INTERVAL_BOUNDS: (f64, f64) = (1.0, 3600.0);

/// Who this agent is, from the downward API (`NODE_NAME`, `POD_NAME`, `POD_IP`) or the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Node name (hostname when `NODE_NAME` is unset).
    pub node: String,
    /// Address peers should probe (`POD_IP` of a hostNetwork pod).
    pub node_ip: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
}

impl Identity {
    /// Reads the identity through `env` (a `std::env::var`-like lookup); the hostname from
    /// `gethostname(2)` stands in for a missing `NODE_NAME`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        Self {
            node: non_empty("NODE_NAME").unwrap_or_else(hostname),
            node_ip: non_empty("POD_IP"),
            pod: non_empty("POD_NAME"),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its full length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Everything the loop needs.
pub struct Agent {
    config: AgentConfig,
    identity: Identity,
    standalone: bool,
    metrics: AgentMetrics,
    ready: Readiness,
}

#[derive(Default)]
struct Collectors {
    rdma: Option<Arc<Mutex<RdmaCollector>>>,
    host: Option<Arc<Mutex<HostCollector>>>,
    ping: PingCollector,
    endpoints: Option<EndpointProber>,
}

impl Agent {
    /// An agent for `config`. In standalone mode nothing is pushed.
    ///
    /// # Errors
    /// When metrics cannot be registered.
    pub fn new(config: AgentConfig, identity: Identity, standalone: bool) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            identity,
            standalone,
            metrics: AgentMetrics::new()?,
            ready: Readiness::default(),
        })
    }

    /// The metrics (for tests and embedding).
    pub fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    /// The HTTP router: `/metrics`, `/healthz`, `/readyz`, `/status`.
    pub fn router(&self) -> Router {
        // Not `fabricwatch_common::serve::ops_router`: its `/metrics` re-renders the whole
        // registry on every scrape, where this one reuses the text of the latest snapshot
        // (see `AgentMetrics::encode`). `/healthz` and `/readyz` answer as it does.
        let ready = self.ready.clone();
        Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/status", get(status_handler))
            .with_state(self.metrics.clone())
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || {
                    let ready = ready.get();
                    async move {
                        if ready {
                            (StatusCode::OK, "ready")
                        } else {
                            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                        }
                    }
                }),
            )
    }

    /// Serves the endpoints and collects until `shutdown` resolves.
    ///
    /// # Errors
    /// When the listen address cannot be parsed or bound.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr: SocketAddr = self
            .config
            .listen
            .parse()
            .map_err(|e| anyhow::anyhow!("listen {:?}: {e}", self.config.listen))?;
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, standalone = self.standalone, node = %self.identity.node, "fabricwatch agent serving");
        let (stop_tx, stop_rx) = watch::channel(false);
        let router = self.router();
        let mut server_stop = stop_rx.clone();
        // The server has a thread and a single-threaded runtime of its own: a collection
        // runs inline on the loop's thread (see `cycle`), and a read stuck in a driver must
        // not stall `/healthz` and `/metrics`; neither side wakes the other's thread.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "server runtime failed to start");
                        return;
                    }
                };
                rt.block_on(async move {
                    let r = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            axum::serve(l, router)
                                .with_graceful_shutdown(async move {
                                    let _ = server_stop.wait_for(|s| *s).await;
                                })
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        tracing::error!(error = %e, "server failed");
                    }
                });
                let _ = done_tx.send(());
            })
            .map_err(|e| anyhow::anyhow!("cannot start the server thread: {e}"))?;
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        self.collect_loop(stop_rx).await;
        let _ = done_rx.await;
        Ok(())
    }

    async fn collect_loop(self, mut stop: watch::Receiver<bool>) {
        let cfg = self.config.clone();
        let queue = PushQueue::new(cfg.analytics.as_ref().map_or(1, |a| a.buffer_reports));
        let (resp_tx, mut resp_rx) = watch::channel::<Option<PushResponse>>(None);
        if let (false, Some(a)) = (self.standalone, &cfg.analytics) {
            let settings = PushSettings {
                url: a.url.clone(),
                token_file: PathBuf::from(&a.token_file),
                timeout: Duration::from_secs_f64(a.timeout_seconds),
                max_jitter: Duration::from_secs_f64((cfg.interval_seconds / 4.0).min(2.0)),
                backoff_start: push::BACKOFF_START,
                backoff_max: push::backoff_max_for(
                    Duration::try_from_secs_f64(cfg.interval_seconds).unwrap_or(push::BACKOFF_MAX),
                ),
            };
            tokio::spawn(push::run(
                settings,
                queue.clone(),
                resp_tx,
                Some(self.metrics.clone()),
                stop.clone(),
            ));
        }
        let mut collectors = Collectors {
            rdma: cfg
                .rdma
                .enabled
                .then(|| Arc::new(Mutex::new(RdmaCollector::new(ReadMode::KeepOpen)))),
            host: cfg.host.enabled.then(|| {
                Arc::new(Mutex::new(HostCollector::new(&PathBuf::from(
                    &cfg.procfs_root,
                ))))
            }),
            ping: PingCollector::new(),
            endpoints: (!cfg.endpoints.is_empty()).then(|| {
                EndpointProber::start(
                    &cfg.endpoints,
                    cfg.interval_seconds,
                    endpoint::RESOLV_CONF,
                    stop.clone(),
                )
            }),
        };
        let mut peers: Vec<Peer> = cfg.ping.peers.clone();
        let mut externals = cfg.ping.external_targets.clone();
        if externals.is_empty() && self.standalone {
            if let Some(gw) = ping::gateway::default_gateway(&PathBuf::from(&cfg.procfs_root)) {
                tracing::info!(gateway = %gw, "probing the default gateway");
                externals.push(gw.to_string());
            }
        }
        let mut interval = cfg.interval_seconds;
        let mut state = AgentState::Starting;
        let mut seq = 0u64;
        let mut totals: BTreeMap<String, PeerTotals> = BTreeMap::new();
        let clock = Instant::now();
        self.metrics.publish(Snapshot::default());
        if !self.standalone {
            // A random phase so that a DaemonSet's agents do not collect and push in step.
            let phase = rand::rng().random_range(0.0..interval.min(5.0));
            if sleep_or_stop(Duration::from_secs_f64(phase), &mut stop).await {
                return;
            }
        }
        loop {
            let started = Instant::now();
            if resp_rx.has_changed().unwrap_or(false) {
                if let Some(r) = resp_rx.borrow_and_update().clone() {
                    peers = r.peers;
                    if let Some(i) = r.interval_seconds.filter(|i| i.is_finite() && *i > 0.0) {
                        interval = i.clamp(INTERVAL_BOUNDS.0, INTERVAL_BOUNDS.1);
                    }
                }
            }
            seq += 1;
            // A ping round can take most of an interval; shutdown must not wait for it.
            let cycle = tokio::select! {
                c = self.cycle(&cfg, &mut collectors, &peers, &externals, interval, clock) => c,
                _ = stop.wait_for(|s| *s) => break,
            };
            let (report, mut snap, results) =
                self.assemble(&cfg, cycle, seq, interval, &mut totals, &collectors);
            state = health::next_state(state, &results);
            snap.state = state;
            let mut report = report;
            report.agent_state = state;
            let pushing = !self.standalone && cfg.analytics.is_some();
            // Only a report that is pushed needs its own copy.
            let to_push = if pushing {
                snap.report = report.clone();
                Some(report)
            } else {
                snap.report = report;
                None
            };
            if let Some(dir) = &cfg.snapshot_dir {
                let dir = PathBuf::from(dir);
                let s = snap.clone();
                let r = tokio::task::spawn_blocking(move || {
                    snapshot::write_snapshot(&dir, &s, SNAPSHOTS_KEPT)
                })
                .await;
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "snapshot not written");
                }
            }
            self.metrics.publish(snap);
            self.ready.set(true);
            if let Some(report) = to_push {
                let dropped = queue.enqueue(report);
                if dropped > 0 {
                    self.metrics.push_dropped.inc_by(dropped as u64);
                }
                self.metrics
                    .push_buffered
                    .set(i64::try_from(queue.len()).unwrap_or(i64::MAX));
            }
            let next = started + Duration::from_secs_f64(interval);
            let wait = next.saturating_duration_since(Instant::now());
            if sleep_or_stop(wait, &mut stop).await {
                break;
            }
        }
        let mut last = (*self.metrics.latest()).clone();
        last.state = AgentState::Stopped;
        last.report.agent_state = AgentState::Stopped;
        self.metrics.publish(last);
        self.ready.set(false);
        tracing::info!("agent stopped");
    }

    async fn cycle(
        &self,
        cfg: &AgentConfig,
        c: &mut Collectors,
        peers: &[Peer],
        externals: &[String],
        interval: f64,
        clock: Instant,
    ) -> Cycle {
        let sysfs = PathBuf::from(&cfg.sysfs_root);
        let rdma_cfg = cfg.rdma.clone();
        let host_cfg = cfg.host.clone();
        let (rdma, host) = (c.rdma.clone(), c.host.clone());
        // A statvfs of a network or FUSE filesystem can block for its timeout; only then do
        // the collectors run on a blocking thread.
        let may_block = host
            .as_ref()
            .is_some_and(|h| h.lock().map(|h| h.may_block()).unwrap_or(true));
        let files = move || {
            let rdma = rdma.map(|r| {
                let t = Instant::now();
                let now = clock.elapsed().as_secs_f64();
                let out = r
                    .lock()
                    .map(|mut r| r.collect(&sysfs, &rdma_cfg, now))
                    .unwrap_or_default();
                (out, t.elapsed().as_secs_f64())
            });
            let host = host.map(|h| {
                let t = Instant::now();
                let now = clock.elapsed().as_secs_f64();
                let out = h
                    .lock()
                    .map(|mut h| h.collect(&host_cfg, now))
                    .unwrap_or_default();
                (out, t.elapsed().as_secs_f64())
            });
            (rdma, host)
        };
        // Otherwise they run inline: reads of sysfs attributes and procfs files kept open
        // (half a millisecond on the fixtures; more where a driver asks its firmware for
        // counters) cost less than the two thread wake-ups of a hand-off to the blocking
        // pool and back, and the server runs on its own thread (see `run`).
        let (files_now, files_task) = if !may_block {
            (Some(files()), None)
        } else {
            (None, Some(tokio::task::spawn_blocking(files)))
        };
        let ping = if cfg.ping.enabled {
            let targets = ping::build_targets(peers, externals);
            let settings = RoundSettings {
                protocol: cfg.ping.protocol,
                tcp_port: cfg.ping.tcp_port,
                timeout: Duration::from_secs_f64(cfg.ping.timeout_seconds),
                packets: cfg.ping.packets_per_probe,
                window: Duration::from_secs_f64(interval * 0.8),
            };
            let t = Instant::now();
            let out = c.ping.run_round(&targets, &settings).await;
            Some((out, t.elapsed().as_secs_f64()))
        } else {
            None
        };
        let (rdma, host) = match (files_now, files_task) {
            (Some(r), _) => r,
            (None, Some(t)) => t.await.unwrap_or_default(),
            (None, None) => (None, None),
        };
        let endpoints = c
            .endpoints
            .as_ref()
            .map(EndpointProber::latest)
            .unwrap_or_default();
        Cycle {
            rdma,
            host,
            ping,
            endpoints,
        }
    }

    fn assemble(
        &self,
        cfg: &AgentConfig,
        cycle: Cycle,
        seq: u64,
        interval: f64,
        totals: &mut BTreeMap<String, PeerTotals>,
        collectors: &Collectors,
    ) -> (AgentReport, Snapshot, Vec<CollectorResult>) {
        let mut snap = Snapshot::default();
        let mut errors: Vec<CollectorError> = Vec::new();
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut results = Vec::new();
        let mut count = |collector: &str, kind: &str| {
            *counts
                .entry((collector.to_string(), kind.to_string()))
                .or_default() += 1;
        };
        let mut report = AgentReport {
            schema_version: REPORT_SCHEMA_VERSION,
            target: cfg.target.clone().unwrap_or_default(),
            node: self.identity.node.clone(),
            node_ip: self.identity.node_ip.clone(),
            pod: self.identity.pod.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            seq,
            collected_at: chrono::Utc::now(),
            interval_seconds: interval,
            ..AgentReport::default()
        };
        let mut problems = Vec::new();
        match cycle.rdma {
            Some((out, secs)) => {
                snap.durations_seconds.insert("rdma".into(), secs);
                results.push(rdma_result(&out));
                if let Some(f) = &out.fatal {
                    count("rdma", f.kind.as_str());
                    errors.push(CollectorError {
                        collector: "rdma".into(),
                        subject: f.path.display().to_string(),
                        message: f.message.clone(),
                    });
                }
                for e in &out.errors {
                    count("rdma", e.kind.as_str());
                    errors.push(CollectorError {
                        collector: "rdma".into(),
                        subject: e.path.display().to_string(),
                        message: format!("{}: {}", e.kind.as_str(), e.message),
                    });
                }
                for e in &out.ethtool_errors {
                    count("ethtool", e.kind);
                    errors.push(CollectorError {
                        collector: "ethtool".into(),
                        subject: e.subject.clone(),
                        message: format!("{}: {}", e.kind, e.message),
                    });
                }
                let wire: Vec<_> = out
                    .ports
                    .iter()
                    .map(|p| (p.to_report(), p.error_rate()))
                    .collect();
                problems.extend(health::classify_rdma(&wire, &cfg.thresholds));
                report.rdma = wire.into_iter().map(|(r, _)| r).collect();
                snap.rdma_ports = out.ports;
            }
            None => results.push(if cfg.rdma.enabled {
                CollectorResult::Failed
            } else {
                CollectorResult::Disabled
            }),
        }
        match cycle.host {
            Some((
                HostOutcome {
                    report: host,
                    disks,
                    netdevs,
                    errors: herr,
                },
                secs,
            )) => {
                snap.durations_seconds.insert("host".into(), secs);
                results.push(match (&host, herr.is_empty()) {
                    (None, _) => CollectorResult::Failed,
                    (Some(_), false) => CollectorResult::Partial,
                    (Some(_), true) => CollectorResult::Ok,
                });
                for (subject, message) in herr {
                    count("host", "read");
                    errors.push(CollectorError {
                        collector: "host".into(),
                        subject,
                        message,
                    });
                }
                if let Some(h) = &host {
                    problems.extend(health::classify_host(h, &cfg.thresholds));
                }
                report.host = host;
                snap.disks = disks;
                snap.netdevs = netdevs;
            }
            None => results.push(if cfg.host.enabled {
                CollectorResult::Failed
            } else {
                CollectorResult::Disabled
            }),
        }
        if let Some((
            PingOutcome {
                reports,
                setup_error,
            },
            secs,
        )) = cycle.ping
        {
            snap.durations_seconds.insert("ping".into(), secs);
            let mut result = CollectorResult::Ok;
            if let Some(e) = setup_error {
                count("ping", "setup");
                errors.push(CollectorError {
                    collector: "ping".into(),
                    subject: "socket".into(),
                    message: e,
                });
                result = CollectorResult::Failed;
            }
            for r in &reports {
                let t = totals.entry(r.peer.clone()).or_default();
                t.sent += u64::from(r.sent);
                t.received += u64::from(r.received);
                if let Some(e) = &r.last_error {
                    let kind = ping_error_kind(e);
                    count("ping", kind);
                    if kind != "timeout" && result == CollectorResult::Ok {
                        result = CollectorResult::Partial;
                    }
                    errors.push(CollectorError {
                        collector: "ping".into(),
                        subject: r.peer.clone(),
                        message: e.clone(),
                    });
                }
            }
            let live: std::collections::HashSet<&String> =
                reports.iter().map(|r| &r.peer).collect();
            totals.retain(|k, _| live.contains(k));
            problems.extend(health::classify_ping(&reports, &cfg.thresholds));
            results.push(result);
            report.ping = reports;
        }
        problems.extend(endpoint::classify(
            &cycle.endpoints,
            &cfg.thresholds,
            chrono::Utc::now(),
        ));
        report.endpoints = cycle.endpoints;
        for ((collector, kind), n) in &counts {
            self.metrics
                .collector_errors
                .with_label_values(&[collector.as_str(), kind.as_str()])
                .inc_by(*n);
            snap.errors.push(ErrorCount {
                collector: collector.clone(),
                kind: kind.clone(),
                count: *n,
            });
        }
        errors.truncate(MAX_REPORT_ERRORS);
        report.collector_errors = errors;
        snap.health = health::overall(&problems);
        snap.problems = problems;
        snap.ping_totals = totals.clone();
        snap.icmp_socket = collectors.ping.icmp_kind();
        snap.icmp_timestamps = collectors.ping.icmp_timestamps();
        (report, snap, results)
    }
}

struct Cycle {
    rdma: Option<(RdmaOutcome, f64)>,
    host: Option<(HostOutcome, f64)>,
    ping: Option<(PingOutcome, f64)>,
    /// Latest endpoint results (probed by their own tasks, not in the cycle).
    endpoints: Vec<fabricwatch_proto::endpoint::EndpointReport>,
}

/// `N/A (no PMA)` is how devices without a PMA (iWARP) say "unsupported": it is counted
/// and reported but does not degrade the agent; every other skipped file does. Likewise a
/// netdev whose driver has no statistics, or that is gone (a RoCE port whose netdev was
/// renamed or removed since sysfs was read), is counted but does not degrade it.
fn rdma_result(out: &RdmaOutcome) -> CollectorResult {
    if out.fatal.is_some() {
        CollectorResult::Failed
    } else if out
        .errors
        .iter()
        .any(|e| e.kind != FileErrorKind::Bad(BadValue::NotAvailable))
        || out
            .ethtool_errors
            .iter()
            .any(|e| !matches!(e.kind, "unsupported" | "not_found"))
    {
        CollectorResult::Partial
    } else {
        CollectorResult::Ok
    }
}

/// Bounded `kind` label for a ping error text.
pub fn ping_error_kind(e: &str) -> &'static str {
    if e == "timeout" {
        "timeout"
    } else if e.contains("unreachable") {
        "unreachable"
    } else if e.starts_with("cannot resolve") || e.contains("resolves to no address") {
        "resolve"
    } else {
        "probe_error"
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        // Ok: stop requested; Err: the sender is gone, so nobody can ask any more.
        _ = stop.wait_for(|s| *s) => return true,
    }
    *stop.borrow()
}

async fn metrics_handler(State(m): State<AgentMetrics>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match m.encode() {
        Ok(body) => (
            StatusCode::OK,
            [("content-type", prometheus::TEXT_FORMAT)],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}"),
        )
            .into_response(),
    }
}

async fn status_handler(State(m): State<AgentMetrics>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let snap = m.latest();
    Json(&*snap).into_response()
}
