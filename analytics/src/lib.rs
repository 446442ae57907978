//! Central analytics workload (`fabricwatch-operator analytics`). See the crate README.

pub mod alert;
pub mod anomaly;
pub mod derive;
pub mod evaluator;
pub mod fleet;
pub mod health;
pub mod http;
pub mod k8s;
pub mod metrics;
pub mod notify;
pub mod peers;
pub mod policy;
pub mod rules;
pub mod score;
pub mod state;
pub mod stats;
pub mod trigger;
pub mod window;

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
