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
    Analytics(AnalyticsCli),
    /// Deliver notifications to Slack, Telegram, email, webhooks and Alertmanager.
    Notifier(fabricwatch_notifier::Args),
}

/// `analytics` runs the workload; `analytics replay` is an offline tool over the same code.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AnalyticsCli {
    #[command(subcommand)]
    tool: Option<AnalyticsTool>,
    #[command(flatten)]
    args: fabricwatch_analytics::Args,
}

#[derive(Debug, Subcommand)]
enum AnalyticsTool {
    /// Feed `timestamp,value` CSV files through the anomaly detector, one series per file;
    /// print `file<TAB>timestamp<TAB>score<TAB>flag` per point.
    Replay(fabricwatch_analytics::anomaly::replay::ReplayArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::start(cli.log_format);
    let result = match cli.command {
        Command::Controller(args) => controller::run(args).await,
        Command::Analytics(AnalyticsCli {
            tool: Some(AnalyticsTool::Replay(replay)),
            ..
        }) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            fabricwatch_analytics::anomaly::replay::run(&replay, &mut out)
        }
        Command::Analytics(AnalyticsCli { args, .. }) => fabricwatch_analytics::run(args).await,
        Command::Notifier(args) => fabricwatch_notifier::run(args).await,
    };
    process::exit("fabricwatch-operator", result)
}
