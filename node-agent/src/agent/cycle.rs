//! One collection: the file-reading collectors (rdma, host) inline or on a blocking
//! thread, the ping round concurrently with them, and the latest endpoint results.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use fabricwatch_proto::{agent_config::AgentConfig, report::Peer};

use super::Agent;
use crate::{
    endpoint::EndpointProber,
    host::{HostCollector, HostOutcome},
    ping::{self, PingCollector, PingOutcome, RoundSettings},
    rdma::{RdmaCollector, RdmaOutcome},
};

/// The collectors and what they keep between collections.
#[derive(Default)]
pub(super) struct Collectors {
    pub(super) rdma: Option<Arc<Mutex<RdmaCollector>>>,
    pub(super) host: Option<Arc<Mutex<HostCollector>>>,
    pub(super) ping: PingCollector,
    pub(super) endpoints: Option<EndpointProber>,
}

/// What one collection produced, each collector's outcome with the seconds it took.
pub(super) struct Cycle {
    pub(super) rdma: Option<(RdmaOutcome, f64)>,
    pub(super) host: Option<(HostOutcome, f64)>,
    pub(super) ping: Option<(PingOutcome, f64)>,
    /// Latest endpoint results (probed by their own tasks, not in the cycle).
    pub(super) endpoints: Vec<fabricwatch_proto::endpoint::EndpointReport>,
}

impl Agent {
    pub(super) async fn cycle(
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
}
