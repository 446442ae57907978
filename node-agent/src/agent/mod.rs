//! The agent's main loop: collect every interval, publish the snapshot for `/metrics` and
//! `/status`, hand the report to the pusher (never waiting on it), apply the peers and
//! interval analytics sends back, and optionally write JSON snapshots.
//!
//! Here the loop and the server; `identity`: who this agent is (node, pod, address);
//! `cycle`: one collection, the collectors run side by side; `assemble`: each collector's
//! outcome folded into the report and the snapshot ([`Fold`]).

mod assemble;
mod cycle;
mod identity;

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
    report::{AgentState, Peer, PushResponse},
};
use rand::Rng;
use tokio::sync::watch;

use crate::{
    endpoint::{self, EndpointProber},
    health,
    host::HostCollector,
    metrics::AgentMetrics,
    ping::{self, PingCollector},
    push::{self, PushQueue, PushSettings},
    rdma::{RdmaCollector, ReadMode},
    snapshot::{self, PeerTotals, Snapshot},
};

/// Bounded `kind` label for a ping error text (defined with the ping collector).
pub use crate::ping::error_kind as ping_error_kind;
pub use assemble::{Assembly, Fold};
use cycle::Collectors;
pub use identity::Identity;

/// Most collector errors carried in one report.
pub const MAX_REPORT_ERRORS: usize = 20;
/// Snapshot files kept in standalone mode.
pub const SNAPSHOTS_KEPT: usize = 60;
/// Bounds applied to an interval analytics asks for, seconds.
pub const INTERVAL_BOUNDS: (f64, f64) = (1.0, 3600.0);

/// Everything the loop needs.
pub struct Agent {
    config: AgentConfig,
    identity: Identity,
    standalone: bool,
    metrics: AgentMetrics,
    ready: Readiness,
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
