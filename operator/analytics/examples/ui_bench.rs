//! Render cost of the fleet view: the overview of 50 targets (20 nodes each) and the page of
//! one 500-node target (32 peers per node, its two heatmaps), plus the size of the embedded
//! assets. `cargo run --release -p fabricwatch-analytics --example ui_bench [-- ROUNDS]`
//! prints the median and worst of ROUNDS renders (default 20). Goals (issue 19): ≤ 200 ms
//! per page, ≤ 2 MiB of embedded assets.

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use fabricwatch_analytics::{
    authz::{Access, Caller, Scope},
    fleet::{Fleet, Settings, TargetConfig},
    http::Api,
    metrics::Metrics,
    state::{EventLog, OpenCatalog, Shared},
    ui,
};
use fabricwatch_proto::ObjectRef;

fn feed(fleet: &mut Fleet, mesh: &synthetic::Mesh, reports: u64) {
    fleet.configure(mesh.target.clone(), TargetConfig::default());
    let start = Utc::now() - chrono::Duration::seconds(10 * reports as i64);
    for seq in 1..=reports {
        let at = start + chrono::Duration::seconds(10 * seq as i64);
        for i in 1..=mesh.nodes {
            fleet.ingest(&mesh.report(i, seq, at), None, at);
        }
    }
}

fn measure(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut bytes = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        bytes = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[times.len() - 1], bytes)
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let mut fleet = Fleet::new(Settings::default());
    for t in 0..50 {
        let mesh = synthetic::Mesh {
            target: ObjectRef {
                namespace: format!("ns{}", t % 10),
                name: format!("fabric-{t}"),
            },
            nodes: 20,
            peers: 8,
            lossy: (t % 7 == 0).then_some((2, 3, 20)),
            down: (t % 5 == 0).then_some(4),
        };
        feed(&mut fleet, &mesh, 3);
    }
    let big = synthetic::Mesh {
        target: ObjectRef {
            namespace: "big".into(),
            name: "fabric".into(),
        },
        nodes: 500,
        peers: 32,
        lossy: Some((17, 40, 25)),
        down: Some(99),
    };
    feed(&mut fleet, &big, 3);
    fleet.localize_all(Utc::now());
    let shared = Arc::new(Shared {
        fleet: Mutex::new(fleet),
        events: Mutex::new(EventLog::new(1000)),
        ..Shared::new(Metrics::new()?, Arc::new(OpenCatalog))
    });
    let api = Api::new(shared, Arc::new(Access::open()));
    let caller = Caller::Trusted;
    let (med, max, bytes) = measure(rounds, || {
        ui::overview_html(&api, &Scope::All, &caller)
            .map(|h| h.len())
            .unwrap_or(0)
    });
    println!(
        "overview, 50 targets × 20 nodes: median {:.1} ms, max {:.1} ms, {} KiB of HTML",
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        bytes / 1024
    );
    let (med, max, bytes) = measure(rounds, || {
        ui::target_html(&api, &big.target, &caller)
            .and_then(Result::ok)
            .map(|h| h.len())
            .unwrap_or(0)
    });
    println!(
        "target page, 500 nodes × 32 peers (2 heatmaps of 16,000 cells): median {:.1} ms, max {:.1} ms, {} KiB of HTML",
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        bytes / 1024
    );
    println!(
        "embedded assets (templates + stylesheet): {} bytes",
        ui::embedded_asset_bytes()
    );
    Ok(())
}
