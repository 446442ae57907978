//! `fabricwatch-operator`: one binary, three workloads.

use clap::{Parser, Subcommand};
use fabricwatch_common::telemetry::{self, LogFormat};

mod controller;

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

/// jemalloc instead of the system allocator: it hands freed memory back to the OS, which
/// glibc's malloc did not after bursts of reconciles (see BENCHMARKS.md, controller RSS).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's run-time options (its `malloc_conf` global, read before `main`; the
/// `_RJEM_MALLOC_CONF` environment variable is read after it and overrides it).
/// `tcache:false`: the per-thread caches kept ~6 MiB of freed objects after the controller's
/// start-up sync of 1,000 targets; `narenas:1`: one arena instead of four per CPU (each
/// holds its own free pages). Measured in BENCHMARKS.md (controller RSS); every subcommand
/// waits on the network far more than on `malloc`.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &u8 = &b"narenas:1,tcache:false\0"[0];

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Both `ring` (kube) and `aws-lc-rs` (AWS SDK) are linked; pick one explicitly. An error
    // only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    telemetry::init(cli.log_format, "info,kube=warn,tower=warn,hyper=warn");
    let result = match cli.command {
        Command::Controller(args) => controller::run(args).await,
        Command::Analytics(args) => fabricwatch_analytics::run(args).await,
        Command::Notifier(args) => fabricwatch_notifier::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("fabricwatch-operator: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
