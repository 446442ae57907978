//! `fabricwatch-controller`: the controller alone, with the flags of
//! `fabricwatch-operator controller`. It links none of the analytics, notifier and AI code,
//! so fewer pages of code end up mapped into the process (see the crate doc).

use clap::Parser;
use fabricwatch_common::telemetry::LogFormat;
use fabricwatch_operator::{controller, process};

/// Reconcile MonitorTargets, AlertRules and AIAnalyses into agents and central workloads.
#[derive(Debug, Parser)]
#[command(name = "fabricwatch-controller", version)]
struct Cli {
    /// Log format: text or json.
    #[arg(long, env = "FABRICWATCH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    args: controller::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::start(cli.log_format);
    process::exit("fabricwatch-controller", controller::run(cli.args).await)
}
