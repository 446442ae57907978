//! What the builders and reconcilers need from the controller's flags, as plain data.

use std::net::SocketAddr;
use std::time::Duration;

/// Container path of the agent config file.
pub const AGENT_CONFIG_DIR: &str = "/etc/fabricwatch";
/// File name of the agent config inside [`AGENT_CONFIG_DIR`] and key in the ConfigMap.
pub const AGENT_CONFIG_FILE: &str = "agent.yaml";
/// Directory of the projected ServiceAccount token in the agent container.
pub const TOKEN_DIR: &str = "/var/run/secrets/fabricwatch";
/// Token file name inside [`TOKEN_DIR`].
pub const TOKEN_FILE: &str = "token";
/// Lifetime requested for the projected token, seconds (the kubelet refreshes it at 80 %).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// Where the host's sysfs (or `spec.rdma.sysfsRoot`) appears in the agent container.
pub const HOST_SYS: &str = "/host/sys";
/// Where `spec.rdma.ethtool.statisticsDir` (when set) appears in the agent container.
pub const HOST_ETHTOOL: &str = "/host/ethtool";
/// Where the host's procfs appears in the agent container.
pub const HOST_PROC: &str = "/host/proc";
/// Port of the central workloads' HTTP servers (reports, API, /metrics).
pub const CENTRAL_PORT: u16 = 8080;

/// Settings of the objects the controller renders and of its reconciles, from its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Default agent image (`--agent-image`).
    pub agent_image: String,
    /// Default agent image pull policy (`--agent-image-pull-policy`).
    pub agent_image_pull_policy: String,
    /// Analytics base URL written into every agent config.
    pub analytics_url: String,
    /// Audience of the agents' projected ServiceAccount tokens; analytics checks it in its
    /// TokenReview.
    pub token_audience: String,
    /// Namespace of the operator and the central workloads.
    pub namespace: String,
    /// Image of the central workloads (the operator's own image).
    pub operator_image: String,
    /// Pull policy of the central workloads.
    pub operator_image_pull_policy: String,
    /// ServiceAccount of the analytics Deployment (created with its RBAC by the chart).
    pub analytics_service_account: String,
    /// ServiceAccount of the notifier Deployment (created with its RBAC by the chart).
    pub notifier_service_account: String,
    /// Log format passed to the central workloads (`text` or `json`).
    pub log_format: String,
    /// Loopback address of analytics' token-free fleet-view listener (analytics'
    /// `--ui-listen`, passed as `FABRICWATCH_ANALYTICS_UI_LISTEN`); `None`: no such listener.
    pub analytics_ui_listen: Option<SocketAddr>,
    /// How long a converged object waits for its next reconcile without a trigger
    /// (`--resync-seconds`).
    pub resync: Duration,
}

impl Settings {
    #[cfg(test)]
    /// Settings for tests and examples: images `localhost/fabricwatch-*:dev`, namespace
    /// `fabricwatch`.
    pub fn example() -> Self {
        Self {
            agent_image: "localhost/fabricwatch-agent:dev".into(),
            agent_image_pull_policy: "IfNotPresent".into(),
            analytics_url: "http://fabricwatch-analytics.fabricwatch.svc:8080".into(),
            token_audience: "fabricwatch-analytics".into(),
            namespace: "fabricwatch".into(),
            operator_image: "localhost/fabricwatch-operator:dev".into(),
            operator_image_pull_policy: "IfNotPresent".into(),
            analytics_service_account: "fabricwatch-analytics".into(),
            notifier_service_account: "fabricwatch-notifier".into(),
            log_format: "text".into(),
            analytics_ui_listen: None,
            resync: Duration::from_secs(300),
        }
    }
}
