//! The `controller` subcommand.

/// Command-line flags of `fabricwatch-operator controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve /metrics, /healthz and /readyz on.
    #[arg(
        long,
        env = "FABRICWATCH_CONTROLLER_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
}

/// Runs the controller until shutdown.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("controller is not built yet")
}
