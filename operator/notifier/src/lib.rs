//! Notification delivery workload (`fabricwatch-operator notifier`). See the crate README.
//!
//! Pure parts: [`channel`], [`batch`], [`policy`], [`secret`], the payload builders in
//! [`channels`], [`crd_map`]. IO: the senders in [`channels`], [`engine`] (outbox worker),
//! [`api`] (HTTP), [`kube_edge`] (API server).

pub mod api;
pub mod batch;
pub mod channel;
pub mod channels;
pub mod crd_map;
pub mod deliver;
pub mod engine;
pub mod kube_edge;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod resolve;
pub mod secret;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use fabricwatch_common::auth::TokenReviewAuthenticator;
use fabricwatch_common::serve::{ops_router, serve, Readiness};

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
    /// Namespace of the notifier (its outbox ConfigMap lives there).
    #[arg(long, env = "POD_NAMESPACE", default_value = "fabricwatch")]
    pub namespace: String,
    /// Name of the ConfigMap holding the outbox.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_STATE_CONFIGMAP",
        default_value = "fabricwatch-notifier-state"
    )]
    pub state_configmap: String,
    /// Usernames allowed to send notifications (comma-separated). Default:
    /// `system:serviceaccount:<namespace>:fabricwatch-analytics`.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_ALLOWED_CLIENTS",
        value_delimiter = ','
    )]
    pub allowed_clients: Vec<String>,
    /// Audiences a client token must carry (comma-separated; empty: the API server's default).
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_value = "fabricwatch-notifier"
    )]
    pub token_audiences: Vec<String>,
    /// Telegram Bot API base URL.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_TELEGRAM_API",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_api: String,
    /// Link shown as `externalURL` / `generatorURL` in webhook and Alertmanager payloads.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_EXTERNAL_URL", default_value = "")]
    pub external_url: String,
    /// Timeout of one delivery attempt, e.g. `10s`.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub send_timeout: Duration,
    /// Delivery attempts per message, the first included.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Messages per minute per channel (0: unlimited).
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_RATE_PER_MINUTE",
        default_value_t = 20
    )]
    pub rate_per_minute: u32,
    /// Messages a channel may send at once before the per-minute rate applies.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_RATE_BURST", default_value_t = 5)]
    pub rate_burst: u32,
    /// Most requests waiting in the outbox.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_MAX_PENDING", default_value_t = 1000)]
    pub max_pending: usize,
}

/// Runs the notifier until SIGTERM: loads the outbox, serves the API and delivers.
///
/// # Errors
/// No Kubernetes client, an unreadable outbox, or a failing listener.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Already installed when called from fabricwatch-operator; an error only means that.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = fabricwatch_common::kube_client::infer(Default::default())
        .await
        .context("cannot build a Kubernetes client")?;
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry).context("registering metrics")?;
    let ready = Readiness::default();
    let ctx = channels::SendContext::new(&args.telegram_api, &args.external_url, args.send_timeout)
        .context("building the HTTP client")?;
    let cfg = engine::EngineConfig {
        retry: deliver::RetryPolicy {
            max_attempts: args.max_attempts,
            ..deliver::RetryPolicy::default()
        },
        max_pending: args.max_pending,
        rate_per_minute: args.rate_per_minute,
        rate_burst: args.rate_burst,
        ..engine::EngineConfig::default()
    };
    let store =
        kube_edge::ConfigMapStore::new(client.clone(), &args.namespace, &args.state_configmap);
    let engine = Arc::new(
        engine::Engine::start(
            cfg,
            ctx,
            store,
            kube_edge::KubeResolver::new(client.clone()),
            kube_edge::KubeStatus::new(client.clone()),
            metrics,
        )
        .await
        .context("loading the notification outbox")?,
    );
    let allowed = if args.allowed_clients.is_empty() {
        vec![format!(
            "system:serviceaccount:{}:fabricwatch-analytics",
            args.namespace
        )]
    } else {
        args.allowed_clients.clone()
    };
    let audiences: Vec<String> = args
        .token_audiences
        .iter()
        .filter(|a| !a.is_empty())
        .cloned()
        .collect();
    let access = api::Access {
        authenticator: Arc::new(TokenReviewAuthenticator::new(client, audiences)),
        allowed: Arc::new(allowed),
    };
    let router = api::router(engine.clone(), access).merge(ops_router(registry, ready.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = {
        let engine = engine.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            engine
                .run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
        })
    };
    ready.set(true);
    let served = serve(args.listen, router, async move {
        fabricwatch_common::shutdown::signal().await;
        let _ = stop_tx.send(true);
    })
    .await;
    ready.set(false);
    if let Err(e) = worker.await {
        tracing::error!(error = %e, "delivery worker ended abnormally");
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_parse_with_defaults_and_reject_bad_values() {
        let c = Cli::try_parse_from([
            "notifier",
            "--allowed-clients",
            "a,b",
            "--send-timeout",
            "3s",
        ])
        .expect("parse");
        assert_eq!(
            c.args.allowed_clients,
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(c.args.send_timeout, Duration::from_secs(3));
        assert_eq!(c.args.max_attempts, 5);
        assert_eq!(
            c.args.token_audiences,
            vec!["fabricwatch-notifier".to_string()]
        );
        assert!(Cli::try_parse_from(["notifier", "--max-attempts", "0"]).is_err());
        assert!(Cli::try_parse_from(["notifier", "--send-timeout", "soon"]).is_err());
    }
}
