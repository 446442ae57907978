//! `fabricwatch-agent`: the per-node agent (see README.md).
//!
//! * `fabricwatch-agent [--standalone] [--config FILE] [flags]`: run the agent.
//! * `fabricwatch-agent probe [options] TARGET...`: one ping round printed as JSON (for
//!   troubleshooting, tests and benchmarks).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use fabricwatch_agent::{
    agent::{Agent, Identity},
    config::{self, FlagOverrides},
    ping::{build_targets, PingCollector, RoundSettings},
};
use fabricwatch_common::telemetry::{self, LogFormat};
use fabricwatch_proto::report::ProbeProtocol;

#[derive(Parser, Debug)]
#[command(
    name = "fabricwatch-agent",
    version,
    about = "fabricwatch node agent: RDMA, ping-mesh and host collectors"
)]
struct Cli {
    /// YAML config file (every field optional; see README.md).
    #[arg(long, env = "FABRICWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Monitor this host only: no analytics, probe the default gateway unless
    /// `ping.externalTargets` says otherwise.
    #[arg(long)]
    standalone: bool,
    /// Root under which `class/infiniband` is read (overrides `sysfsRoot`).
    #[arg(long)]
    sysfs_root: Option<String>,
    /// Root of the proc filesystem (overrides `procfsRoot`).
    #[arg(long)]
    procfs_root: Option<String>,
    /// Address of `/metrics`, `/healthz`, `/readyz`, `/status` (overrides `listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Directory for periodic JSON snapshots (overrides `snapshotDir`).
    #[arg(long)]
    snapshot_dir: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "FABRICWATCH_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Probe targets once (COUNT probes each, INTERVAL apart) and print per-peer JSON.
    Probe {
        /// Probes per target.
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Milliseconds between probes to one target.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Per-probe timeout in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// icmp or tcp.
        #[arg(long, default_value = "icmp")]
        protocol: String,
        /// Port for TCP probes.
        #[arg(long, default_value_t = 22)]
        tcp_port: u16,
        /// Start ICMP RTTs at a user-space stamp taken before `sendto` instead of the
        /// kernel's transmit stamp (what `ping` and `fping` measure; for comparisons).
        #[arg(long)]
        user_tx_stamps: bool,
        /// Targets (IPs, IP:port, host names).
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Probe one endpoint COUNT times, INTERVAL apart, and print each result as a JSON
    /// line (the agent config's `endpoints[]` entry format, e.g.
    /// `{"name":"api","http":{"url":"https://api.example.com/"}}`).
    Endpoint {
        /// Probes.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Milliseconds between probes.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// The endpoint, as JSON.
        config: String,
    },
}

fn main() -> ExitCode {
    // Each collection allocates and frees some 100 KiB; with glibc's default 128 KiB trim
    // threshold the heap top is returned to the kernel and faulted back in every interval
    // (`brk` and page faults). Keep up to 4 MiB of free heap instead (`mallopt(3)`).
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20) };
    let cli = Cli::parse();
    telemetry::init(cli.log_format, "info");
    // Single-threaded runtimes (this one for the loop and the pusher, one for the HTTP
    // server, see `Agent::run`): the work is a few milliseconds a second, and cross-thread
    // wake-ups (futex, context switches) cost more CPU than the work itself. Collections
    // that may block (a network filesystem's statvfs) go to the blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fabricwatch-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fabricwatch-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Endpoint {
        count,
        interval_ms,
        config,
    }) = &cli.command
    {
        let cfg: fabricwatch_proto::endpoint::EndpointConfig =
            serde_json::from_str(config).map_err(|e| anyhow::anyhow!("endpoint config: {e}"))?;
        let mut cache = fabricwatch_agent::endpoint::CachedTlsHandle::default();
        for i in 0..(*count).max(1) {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(*interval_ms)).await;
            }
            let r = fabricwatch_agent::endpoint::probe_once(
                &cfg,
                &mut cache,
                fabricwatch_agent::endpoint::RESOLV_CONF,
            )
            .await;
            println!("{}", serde_json::to_string(&r)?);
        }
        return Ok(());
    }
    if let Some(Command::Probe {
        count,
        interval_ms,
        timeout_ms,
        protocol,
        tcp_port,
        user_tx_stamps,
        targets,
    }) = cli.command
    {
        let protocol = match protocol.as_str() {
            "icmp" => ProbeProtocol::Icmp,
            "tcp" => ProbeProtocol::Tcp,
            other => anyhow::bail!("--protocol: {other:?} is not icmp or tcp"),
        };
        let timeout = Duration::from_millis(timeout_ms);
        let settings = RoundSettings {
            protocol,
            tcp_port,
            timeout,
            packets: count.max(1),
            window: Duration::from_millis(interval_ms) * count.max(1) + timeout,
        };
        let mut c = if user_tx_stamps {
            PingCollector::with_user_tx_stamps()
        } else {
            PingCollector::new()
        };
        let out = c.run_round(&build_targets(&[], &targets), &settings).await;
        if let Some(e) = out.setup_error {
            anyhow::bail!(e);
        }
        let json = serde_json::json!({
            "socket": c.icmp_kind(),
            "timestamps": c.icmp_timestamps(),
            "peers": out.reports,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let flags = FlagOverrides {
        sysfs_root: cli.sysfs_root,
        procfs_root: cli.procfs_root,
        listen: cli.listen,
        snapshot_dir: cli.snapshot_dir,
    };
    let cfg = config::load(cli.config.as_deref(), std::env::vars(), &flags)?;
    if !cli.standalone && cfg.analytics.is_none() {
        anyhow::bail!(
            "analytics.url is not configured: set it (config file or FABRICWATCH_ANALYTICS__URL) or run with --standalone"
        );
    }
    let identity = Identity::from_env(|k| std::env::var(k).ok());
    let agent = Agent::new(cfg, identity, cli.standalone)?;
    agent.run(fabricwatch_common::shutdown::signal()).await
}
