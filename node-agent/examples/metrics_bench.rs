//! `/metrics` encode cost after one collection of the RoCE fixture tree and the real /proc:
//! the registry's gather + `TextEncoder` (proto messages), the direct text renderer the
//! server uses once per snapshot, and a scrape that reuses the cached snapshot text.
//!
//! `cargo run --release -p fabricwatch-agent --example metrics_bench -- [iterations]`

use std::{path::Path, time::Instant};

use fabricwatch_agent::{
    host::HostCollector,
    metrics::{self, AgentMetrics},
    rdma::{RdmaCollector, ReadMode},
    snapshot::Snapshot,
};
use fabricwatch_proto::agent_config::{HostConfig, RdmaConfig};
use prometheus::{Encoder, TextEncoder};

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/roce/sys");
    let rdma = RdmaCollector::new(ReadMode::KeepOpen).collect(&sysfs, &RdmaConfig::default(), 0.0);
    let host = HostCollector::new(Path::new("/proc")).collect(&HostConfig::default(), 0.0);
    let m = AgentMetrics::new().expect("metrics");
    let mut s = Snapshot {
        rdma_ports: rdma.ports,
        disks: host.disks,
        netdevs: host.netdevs,
        ..Snapshot::default()
    };
    s.report.host = host.report;
    m.publish(s);
    let mut buf = Vec::with_capacity(64 * 1024);
    let fams = m.registry.gather();
    let samples: usize = fams.iter().map(|f| f.get_metric().len()).sum();
    let t = Instant::now();
    for _ in 0..iterations {
        buf.clear();
        let fams = m.registry.gather();
        TextEncoder::new().encode(&fams, &mut buf).expect("encode");
    }
    let per = t.elapsed() / iterations;
    println!(
        "{samples} samples, {} bytes: {:.1} µs per gather+encode, {:.0} ns per sample",
        buf.len(),
        per.as_secs_f64() * 1e6,
        per.as_secs_f64() * 1e9 / samples as f64
    );
    let snap = m.latest();
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..iterations {
        len = metrics::render_text(&snap).text.len();
    }
    let per = t.elapsed() / iterations;
    println!(
        "render_text: {len} bytes, {:.1} µs per snapshot",
        per.as_secs_f64() * 1e6
    );
    let t = Instant::now();
    for _ in 0..iterations {
        len = m.encode().expect("encode").len();
    }
    let per = t.elapsed() / iterations;
    println!(
        "encode() with the snapshot text cached: {len} bytes, {:.1} µs per scrape",
        per.as_secs_f64() * 1e6
    );
}
