//! The controller's command-line flags (shared by `fabricwatch-controller` and
//! `fabricwatch-operator controller`) and the builders' [`Settings`] derived from them.

use std::net::SocketAddr;
use std::time::Duration;

use super::build;
use super::settings::Settings;

/// Command-line flags of `fabricwatch-controller` and `fabricwatch-operator controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve /metrics, /healthz and /readyz on.
    #[arg(
        long,
        env = "FABRICWATCH_CONTROLLER_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Namespace of the operator, its Lease and the central workloads.
    #[arg(long, env = "POD_NAMESPACE", default_value = "fabricwatch")]
    pub namespace: String,
    /// Default agent image (a MonitorTarget's spec.agent.image overrides it).
    #[arg(
        long,
        env = "FABRICWATCH_AGENT_IMAGE",
        default_value = "localhost/fabricwatch-agent:dev"
    )]
    pub agent_image: String,
    /// Default agent image pull policy: Always, IfNotPresent or Never.
    #[arg(long, env = "FABRICWATCH_AGENT_IMAGE_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub agent_image_pull_policy: String,
    /// Analytics URL written into agent configs; default: the analytics Service in --namespace.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_URL")]
    pub analytics_url: Option<String>,
    /// Audience of the agents' projected ServiceAccount tokens (analytics checks it).
    #[arg(
        long,
        env = "FABRICWATCH_TOKEN_AUDIENCE",
        default_value = "fabricwatch-analytics"
    )]
    pub token_audience: String,
    /// Image of the central workloads (normally the operator's own image).
    #[arg(
        long,
        env = "FABRICWATCH_OPERATOR_IMAGE",
        default_value = "localhost/fabricwatch-operator:dev"
    )]
    pub operator_image: String,
    /// Pull policy of the central workloads: Always, IfNotPresent or Never.
    #[arg(long, env = "FABRICWATCH_OPERATOR_IMAGE_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub operator_image_pull_policy: String,
    /// Keep the analytics and notifier Deployments and Services in --namespace.
    #[arg(long, env = "FABRICWATCH_MANAGE_CENTRAL_WORKLOADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub manage_central_workloads: bool,
    /// The operator's own Deployment; when set, it owns the central workloads so that
    /// uninstalling the operator removes them.
    #[arg(long, env = "FABRICWATCH_OWNER_DEPLOYMENT")]
    pub owner_deployment: Option<String>,
    /// ServiceAccount of the analytics Deployment.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_SERVICE_ACCOUNT",
        default_value = "fabricwatch-analytics"
    )]
    pub analytics_service_account: String,
    /// ServiceAccount of the notifier Deployment.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_SERVICE_ACCOUNT",
        default_value = "fabricwatch-notifier"
    )]
    pub notifier_service_account: String,
    /// Loopback address (e.g. `127.0.0.1:8081`) on which analytics also serves the fleet
    /// view and read API without tokens, for `kubectl port-forward` (analytics'
    /// `--ui-listen`); unset: no such listener. A non-loopback address is refused here, as
    /// analytics would refuse it.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_UI_LISTEN", value_parser = loopback_address)]
    pub analytics_ui_listen: Option<SocketAddr>,
    /// Log format passed on to the central workloads: text or json.
    #[arg(long, env = "FABRICWATCH_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub workload_log_format: String,
    /// Elect a leader through a coordination.k8s.io Lease (only the leader reconciles).
    #[arg(long, env = "FABRICWATCH_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease in --namespace.
    #[arg(
        long,
        env = "FABRICWATCH_LEASE_NAME",
        default_value = "fabricwatch-operator"
    )]
    pub lease_name: String,
    /// Identity in the Lease; default: the Pod name (POD_NAME) or the host name plus pid.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration, seconds (a new leader takes over at most this long after a crash).
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// How often to re-check whether the monitoring.coreos.com API exists, seconds.
    #[arg(long, default_value_t = 60)]
    pub discovery_interval_seconds: u64,
    /// How often to re-apply the central workloads, seconds.
    #[arg(long, default_value_t = 60)]
    pub central_interval_seconds: u64,
    /// Watch only this namespace (for a namespaced install or tests); default: all namespaces.
    #[arg(long, env = "FABRICWATCH_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconciles run in parallel per kind. They wait on the API server, not on CPU; 64
    /// keeps 1,000 new targets converging at the API server's own write rate (BENCHMARKS.md).
    #[arg(long, default_value_t = 64)]
    pub concurrency: u16,
    /// Idle connections to the API server kept open after a burst; more are closed as
    /// their requests finish (watches keep their own connections).
    #[arg(long, default_value_t = 16)]
    pub api_max_idle_connections: usize,
    /// An idle API server connection unused this long is closed, seconds.
    #[arg(long, default_value_t = 30)]
    pub api_idle_timeout_seconds: u64,
    /// A converged object is reconciled again after this long without a trigger, seconds:
    /// children are re-applied where an edit may have gone unseen, references re-checked.
    #[arg(long, env = "FABRICWATCH_RESYNC_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_seconds: u64,
}

/// Parses `--analytics-ui-listen`: a socket address on a loopback IP. That listener answers
/// without a token, so only `kubectl port-forward` may reach it.
///
/// # Errors
/// Text naming the value when it is no socket address or not a loopback one.
fn loopback_address(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|e| format!("{s:?} is not an address like 127.0.0.1:8081: {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not a loopback address: the listener answers without a token, so only kubectl port-forward may reach it"
        ))
    }
}

impl Args {
    /// The builders' settings.
    pub fn settings(&self) -> Settings {
        Settings {
            agent_image: self.agent_image.clone(),
            agent_image_pull_policy: self.agent_image_pull_policy.clone(),
            analytics_url: self
                .analytics_url
                .clone()
                .unwrap_or_else(|| build::central::Component::Analytics.url(&self.namespace)),
            token_audience: self.token_audience.clone(),
            namespace: self.namespace.clone(),
            operator_image: self.operator_image.clone(),
            operator_image_pull_policy: self.operator_image_pull_policy.clone(),
            analytics_service_account: self.analytics_service_account.clone(),
            notifier_service_account: self.notifier_service_account.clone(),
            log_format: self.workload_log_format.clone(),
            analytics_ui_listen: self.analytics_ui_listen,
            resync: Duration::from_secs(self.resync_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytics_url_defaults_to_the_service_in_the_namespace() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from(["x", "--namespace", "ops"]).expect("parse");
        let s = cli.args.settings();
        assert_eq!(s.analytics_url, "http://fabricwatch-analytics.ops.svc:8080");
        assert_eq!(s.agent_image, "localhost/fabricwatch-agent:dev");
        assert!(Cli::try_parse_from(["x", "--agent-image-pull-policy", "Sometimes"]).is_err());
        let cli = Cli::try_parse_from(["x", "--manage-central-workloads=false"]).expect("parse");
        assert!(!cli.args.manage_central_workloads);
        assert_eq!(
            s.analytics_ui_listen, None,
            "no token-free listener by default"
        );
        let cli =
            Cli::try_parse_from(["x", "--analytics-ui-listen", "127.0.0.1:8081"]).expect("parse");
        assert_eq!(
            cli.args.settings().analytics_ui_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
        assert!(Cli::try_parse_from(["x", "--analytics-ui-listen", "[::1]:8081"]).is_ok());
        for bad in ["0.0.0.0:8081", "10.0.0.1:8081", "localhost:8081"] {
            assert!(
                Cli::try_parse_from(["x", "--analytics-ui-listen", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
