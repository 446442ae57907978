//! How a MonitorTarget's agent Pods run (`spec.agent`) and how Prometheus scrapes them
//! (`spec.scrape`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Duration;

/// Image pull policy of the agent container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every Pod start.
    Always,
    /// Pull only when the node lacks the image.
    IfNotPresent,
    /// Never pull (the image must be preloaded).
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Agent Pod settings; unset fields take the operator's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Agent image; default: the operator's `--agent-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Image pull policy; default: the operator's `--agent-image-pull-policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// CPU and memory requests and limits of the agent container, quantities written as
    /// strings (`cpu: "1"`, `memory: 64Mi`); default: requests 10m CPU and 32Mi memory,
    /// limit 128Mi memory.
    // Strings only: see `crd::structural` (Kubernetes 1.20 and int-or-string maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// PriorityClass of the agent Pods (e.g. `system-node-critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
}

/// Whether to create a PodMonitor for the agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodMonitorMode {
    /// Create one when the `monitoring.coreos.com` API is installed.
    #[default]
    Auto,
    /// Always create one (the target is not Ready while the API is missing).
    Enabled,
    /// Never create one.
    Disabled,
}

/// Prometheus Operator integration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeSpec {
    /// PodMonitor creation.
    #[serde(default)]
    pub pod_monitor: PodMonitorMode,
    /// Scrape interval of the PodMonitor; default: `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Extra labels of the PodMonitor (to match a Prometheus `podMonitorSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub labels: BTreeMap<String, String>,
}
