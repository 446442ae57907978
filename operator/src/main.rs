//! `fabricwatch-operator`: one binary, three workloads (the chart runs the controller from
//! the smaller `fabricwatch-controller`; see the crate doc).

use clap::{Parser, Subcommand};
use fabricwatch_common::telemetry::LogFormat;
use fabricwatch_operator::{controller, process};

#[derive(Debug, Parser)]
#[command(
    name = "fabricwatch-operator",
    version,
    about = "fabricwatch Kubernetes operator"
)]
struct Cli {
    /// Log format: text or json.
    #[arg(
        long,
        env = "FABRICWATCH_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reconcile MonitorTargets, AlertRules and AIAnalyses into agents and central workloads.
    Controller(controller::Args),
    /// Ingest agent reports, compute health, evaluate alerts, run AI analyses, write status.
    Analytics(fabricwatch_analytics::Args),
    /// Deliver notifications to Slack, Telegram, email, webhooks and Alertmanager.
    Notifier(fabricwatch_notifier::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::start(cli.log_format);
    let result = match cli.command {
        Command::Controller(args) => controller::run(args).await,
        Command::Analytics(args) => fabricwatch_analytics::run(args).await,
        Command::Notifier(args) => fabricwatch_notifier::run(args).await,
    };
    process::exit("fabricwatch-operator", result)
}
