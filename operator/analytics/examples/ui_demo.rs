//! Runs analytics locally (`--without-kubernetes --insecure-skip-auth`) fed by a synthetic
//! mesh over HTTP, to look at the fleet view without a cluster:
//! `cargo run -p fabricwatch-analytics --example ui_demo -- [--listen 127.0.0.1:8080]`, then
//! open `http://127.0.0.1:8080/ui/`. Target `fw/fabric` has 12 nodes, `n2` loses 30 % of its
//! probes to `n9`, and `n3`'s RDMA port is down; `lab/calm` is healthy.

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use std::time::Duration;

use clap::Parser;
use fabricwatch_proto::{report::REPORT_PATH, ObjectRef};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: fabricwatch_analytics::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabricwatch_common::telemetry::init(fabricwatch_common::telemetry::LogFormat::Text, "warn");
    let mut argv: Vec<String> = std::env::args().collect();
    argv.extend(["--without-kubernetes".into(), "--insecure-skip-auth".into()]);
    let args = Cli::parse_from(argv).args;
    let base = format!("http://{}", args.listen);
    let server = tokio::spawn(fabricwatch_analytics::run(args));
    let meshes = [
        synthetic::Mesh {
            target: ObjectRef {
                namespace: "fw".into(),
                name: "fabric".into(),
            },
            nodes: 12,
            peers: 11,
            lossy: Some((2, 9, 30)),
            down: Some(3),
        },
        synthetic::Mesh {
            target: ObjectRef {
                namespace: "lab".into(),
                name: "calm".into(),
            },
            nodes: 4,
            peers: 3,
            lossy: None,
            down: None,
        },
    ];
    let http = reqwest::Client::new();
    let mut seq = 0;
    loop {
        seq += 1;
        for m in &meshes {
            for i in 1..=m.nodes {
                let r = m.report(i, seq, chrono::Utc::now());
                if let Err(e) = http
                    .post(format!("{base}{REPORT_PATH}"))
                    .json(&r)
                    .send()
                    .await
                {
                    tracing::warn!("push: {e}");
                }
            }
        }
        if server.is_finished() {
            return server.await?;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}
