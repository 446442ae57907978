//! Notification delivery workload (`fabricwatch-operator notifier`).

/// Command-line flags of `fabricwatch-operator notifier`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve the notification API, /metrics and health on.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
}

/// Runs the notifier until shutdown.
///
/// # Errors
/// Fatal start-up or serving errors.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("notifier is not built yet")
}
