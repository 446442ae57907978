//! Runs analytics with the library's own flags (for benchmarks and local runs):
//! `cargo run --release -p fabricwatch-analytics --example serve -- --without-kubernetes --insecure-skip-auth`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: fabricwatch_analytics::Args,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    fabricwatch_common::telemetry::init(fabricwatch_common::telemetry::LogFormat::Text, "warn");
    fabricwatch_analytics::run(Cli::parse().args).await
}
