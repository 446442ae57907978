//! Central analytics workload (`fabricwatch-operator analytics`).

/// Command-line flags of `fabricwatch-operator analytics`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve agent reports, the JSON API, /metrics and health on.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
}

/// Runs analytics until shutdown.
///
/// # Errors
/// Fatal start-up or serving errors.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("analytics is not built yet")
}
