//! `AlertRule`: a threshold on a fabricwatch metric of one MonitorTarget.

// Each `printcolumn(...)` repeats keys such as `type_ = "date"`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    check_duration, conditions_schema, default_severity, Condition, CronSchedule, Duration,
    LocalObjectRef, Severity, Time,
};
use crate::notify::NotifySpec;
use crate::validation::Errors;

/// Most entries of `status.firing`.
pub const MAX_FIRING: usize = 50;

/// An alert on a fabricwatch metric of one MonitorTarget. Analytics evaluates it every
/// interval, writes its state to status and asks the notifier to deliver it.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fabricwatch.io",
    version = "v1alpha1",
    kind = "AlertRule",
    plural = "alertrules",
    singular = "alertrule",
    shortname = "ar",
    category = "fabricwatch",
    namespaced,
    status = "AlertRuleStatus",
    derive = "PartialEq",
    doc = "AlertRule fires when a fabricwatch metric of a MonitorTarget crosses a threshold for a while, and notifies the listed channels.",
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Inactive, Pending, Firing, Suppressed, Silenced or Acknowledged"
    ),
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(
        name = "Value",
        type_ = "number",
        json_path = ".status.lastValue",
        description = "Last evaluated value"
    ),
    printcolumn(
        name = "Since",
        type_ = "date",
        json_path = ".status.activeSince",
        description = "When the current Pending/Firing episode began"
    ),
    printcolumn(
        name = "Silenced-Until",
        type_ = "date",
        json_path = ".spec.silence.until",
        description = "End of the ad-hoc silence (spec.silence)"
    ),
    printcolumn(
        name = "Acknowledged-By",
        type_ = "string",
        json_path = ".spec.acknowledge.by",
        priority = 1,
        description = "Who acknowledged the firing alerts (spec.acknowledge)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleSpec {
    /// The MonitorTarget (same namespace) whose metrics are evaluated.
    pub target_ref: LocalObjectRef,
    /// Metric to evaluate (per node, or aggregated over the target with `scope: target`).
    pub metric: Metric,
    /// Comparison of the metric against `threshold`.
    pub operator: Operator,
    /// Value compared against, in the metric's unit.
    pub threshold: f64,
    /// How long the condition must hold before the alert fires (Pending until then).
    #[serde(default = "zero", rename = "for")]
    pub for_: Duration,
    /// `perNode`: one alert per node (and per device/port/peer where the metric has them);
    /// `target`: one alert on the worst value over the target.
    #[serde(default)]
    pub scope: Scope,
    /// Severity of the alert.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Human text of the notification. Templates may use `{{ metric }}`, `{{ value }}`,
    /// `{{ threshold }}`, `{{ node }}`, `{{ target }}`, `{{ device }}`, `{{ port }}`,
    /// `{{ peer }}`.
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    /// Where to send notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
    /// Least time between two notifications of the same alert.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
    /// Re-notify a still-firing alert this often.
    #[serde(default = "default_repeat")]
    pub repeat_interval: Duration,
    /// Recurring windows during which the alert is Suppressed (evaluated, not notified).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// Ad-hoc silence: until `until`, no Firing notification of this rule (or of one node of
    /// it) leaves on any channel, and the rule shows `Silenced`. After `until` a still-firing
    /// alert is notified; resolves of alerts notified before the silence still notify. A spec
    /// field rather than an annotation because it is desired state with an end: declared,
    /// reviewed and kept by GitOps like the rest of the rule, it survives restarts with the
    /// object, and nothing needs to clear it when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<Silence>,
    /// Acknowledgement of what fires now: the alerts firing at `at` send no further Firing
    /// notification (repeats) on any channel until they resolve or `until` passes, and the
    /// rule shows `Acknowledged`. An alert that starts firing after `at` is notified as
    /// usual, so an acknowledgement never hides a new episode; when `until` passes while an
    /// acknowledged alert still fires, it is notified again. Resolves still notify unless
    /// `notifyResolved` is false. A spec field for the same reasons as `silence`; it needs no
    /// clean-up, since it only ever covers episodes that began before `at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledgement>,
    /// Damping of alerts that flip between firing and resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_damping: Option<FlapDamping>,
    /// An AIAnalysis (same namespace) to run when this alert fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_ref: Option<LocalObjectRef>,
    /// Also render this rule as a Prometheus Operator PrometheusRule over the agents' metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_rule: Option<PrometheusRuleSpec>,
}

fn zero() -> Duration {
    Duration::new("0s")
}
fn default_cooldown() -> Duration {
    Duration::new("5m")
}
fn default_repeat() -> Duration {
    Duration::new("4h")
}

/// The metrics an AlertRule can evaluate. Units are in the names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Ping loss to a peer over the last interval, percent (0-100).
    PingLossPercent,
    /// Ping RTT 99th percentile to a peer, seconds.
    PingRttP99Seconds,
    /// Ping jitter (mean absolute difference of consecutive RTTs, RFC 3550 §6.4.1) to a peer, seconds.
    PingJitterSeconds,
    /// RDMA `symbol_error` counter increments per minute, per port.
    RdmaSymbolErrorsPerMinute,
    /// RDMA `link_error_recovery` + `link_downed` increments per minute, per port.
    RdmaLinkErrorsPerMinute,
    /// RDMA `port_rcv_errors` increments per minute, per port.
    RdmaRcvErrorsPerMinute,
    /// RDMA ports not in state ACTIVE (per node, or over the target).
    RdmaPortsDown,
    /// RDMA link state changes over the last 10 minutes, per port.
    RdmaLinkFlaps,
    /// CPU busy percent (0-100).
    CpuUsagePercent,
    /// Memory used percent (0-100; MemTotal - MemAvailable).
    MemoryUsedPercent,
    /// Free space percent of a filesystem (0-100).
    DiskFreePercent,
    /// Network score 0-100 (100: no loss, RTT at baseline), per node.
    NetworkScore,
    /// Anomaly score of the node's series (robust z-score; above 3 is unusual).
    AnomalyScore,
    /// Agents of the target not reporting (per target), or 1 when a node's agent is silent.
    AgentsNotReporting,
    /// RoCE: Congestion Notification Packets sent as notification point (`np_cnp_sent`),
    /// per second, per port.
    RdmaCnpSentPerSecond,
    /// RoCE: CNPs handled as reaction point (`rp_cnp_handled`), per second, per port.
    RdmaCnpHandledPerSecond,
    /// RoCE: ECN-marked RoCE packets received (`np_ecn_marked_roce_packets`), per second,
    /// per port.
    RdmaEcnMarkedPerSecond,
    /// Packets dropped for lack of a receive WQE (`out_of_buffer`, else the netdev's
    /// `rx_out_of_buffer`), per second, per port.
    RdmaOutOfBufferPerSecond,
    /// RoCE: PFC (or link-level) pause frames received plus sent on the busiest priority,
    /// per second, per port.
    RdmaPauseFramesPerSecond,
    /// RoCE: share of time paused or pausing on the busiest priority, percent, per port.
    RdmaPausePercent,
    /// RoCE: packets dropped for buffers or congestion (`rx_discards_phy`,
    /// `rx_prio*_buf_discard`, `rx_prio*_cong_discard` or the driver's equivalents), per
    /// minute, per port.
    RdmaDiscardsPerMinute,
    /// RoCE: pause-storm events the NIC reported (mlx5 `tx_pause_storm_*_events`), per
    /// minute, per port.
    RdmaPauseStormEventsPerMinute,
    /// Fleet consistency findings about the node (firmware differing within a board type,
    /// PFC or DCQCN on for a priority on some nodes only, a link below the fleet's usual
    /// rate or width), per node.
    RdmaInconsistencies,
    /// Fault localization's confidence (0-1) that the node is where a fault is; 0 when it is
    /// not a suspect (per node; the highest over the target).
    NodeSuspect,
    /// 1 when the endpoint's last probe from the node succeeded, else 0, per (node,
    /// endpoint); the lowest over the target.
    EndpointUp,
    /// Duration of the endpoint's last probe from the node, seconds, per (node, endpoint).
    EndpointDurationSeconds,
    /// Days until the earliest certificate of a TLS endpoint expires, as the node saw it,
    /// per (node, endpoint); the lowest over the target.
    TlsCertificateExpiryDays,
}

impl Metric {
    /// The snake_case name used in the API and in notification labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PingLossPercent => "ping_loss_percent",
            Self::PingRttP99Seconds => "ping_rtt_p99_seconds",
            Self::PingJitterSeconds => "ping_jitter_seconds",
            Self::RdmaSymbolErrorsPerMinute => "rdma_symbol_errors_per_minute",
            Self::RdmaLinkErrorsPerMinute => "rdma_link_errors_per_minute",
            Self::RdmaRcvErrorsPerMinute => "rdma_rcv_errors_per_minute",
            Self::RdmaPortsDown => "rdma_ports_down",
            Self::RdmaLinkFlaps => "rdma_link_flaps",
            Self::CpuUsagePercent => "cpu_usage_percent",
            Self::MemoryUsedPercent => "memory_used_percent",
            Self::DiskFreePercent => "disk_free_percent",
            Self::NetworkScore => "network_score",
            Self::AnomalyScore => "anomaly_score",
            Self::AgentsNotReporting => "agents_not_reporting",
            Self::RdmaCnpSentPerSecond => "rdma_cnp_sent_per_second",
            Self::RdmaCnpHandledPerSecond => "rdma_cnp_handled_per_second",
            Self::RdmaEcnMarkedPerSecond => "rdma_ecn_marked_per_second",
            Self::RdmaOutOfBufferPerSecond => "rdma_out_of_buffer_per_second",
            Self::RdmaPauseFramesPerSecond => "rdma_pause_frames_per_second",
            Self::RdmaPausePercent => "rdma_pause_percent",
            Self::RdmaDiscardsPerMinute => "rdma_discards_per_minute",
            Self::RdmaPauseStormEventsPerMinute => "rdma_pause_storm_events_per_minute",
            Self::RdmaInconsistencies => "rdma_inconsistencies",
            Self::NodeSuspect => "node_suspect",
            Self::EndpointUp => "endpoint_up",
            Self::EndpointDurationSeconds => "endpoint_duration_seconds",
            Self::TlsCertificateExpiryDays => "tls_certificate_expiry_days",
        }
    }
}

/// Comparison of the metric value against the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    /// value > threshold
    Gt,
    /// value >= threshold
    Gte,
    /// value < threshold
    Lt,
    /// value <= threshold
    Lte,
    /// value == threshold
    Eq,
    /// value != threshold
    Ne,
}

impl Operator {
    /// Whether `value <op> threshold` holds (false for NaN).
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Gte => value >= threshold,
            Self::Lt => value < threshold,
            Self::Lte => value <= threshold,
            // Exact comparison is what the user asked for (counts and states are integral).
            Self::Eq => value == threshold,
            Self::Ne => !value.is_nan() && value != threshold,
        }
    }

    /// PromQL spelling (`>`, `>=`, ...).
    pub fn promql(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Gte => ">=",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

/// Evaluation scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// One alert per node (and device/port/peer).
    #[default]
    PerNode,
    /// One alert for the whole target on the worst value.
    Target,
}

/// Notification text templates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// One line, e.g. `Loss {{ value }}% from {{ node }} to {{ peer }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub summary: Option<String>,
    /// Longer text, e.g. what to check first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// A runbook link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub runbook_url: Option<String>,
}

impl Annotations {
    /// Whether no text is set.
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.description.is_none() && self.runbook_url.is_none()
    }
}

/// A recurring maintenance window: starts at each `schedule` time (UTC) and lasts `duration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    /// Start times, cron syntax in UTC, e.g. `0 2 * * SAT`.
    pub schedule: CronSchedule,
    /// Length of each window, e.g. `2h`.
    pub duration: Duration,
}

/// An ad-hoc silence of an AlertRule (see `AlertRuleSpec::silence`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// End of the silence (RFC 3339). A time in the past silences nothing.
    pub until: Time,
    /// Only this node's alerts are silenced; absent: the whole rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub node: Option<String>,
    /// Who silenced the rule and why (free text; the fleet view records the signed-in user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub by: Option<String>,
}

/// An acknowledgement of an AlertRule's current alerts (see `AlertRuleSpec::acknowledge`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    /// When it was acknowledged (RFC 3339): alerts firing since this time or earlier are
    /// acknowledged.
    pub at: Time,
    /// Who acknowledged and why (free text; the fleet view records the signed-in user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub by: Option<String>,
    /// When the acknowledgement expires (RFC 3339); absent: when the alerts resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    /// Whether the resolve of an acknowledged alert is notified.
    #[serde(default = "default_true")]
    pub notify_resolved: bool,
}

fn default_true() -> bool {
    true
}

/// Flap damping: holds an alert Firing until the condition stayed false for `resolveFor`,
/// and suppresses notifications after `maxTransitions` state changes within `window`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlapDamping {
    /// How long the condition must stay false before the alert resolves.
    #[serde(default = "zero")]
    pub resolve_for: Duration,
    /// State changes within `window` after which the alert is Suppressed until it settles.
    #[serde(default = "default_transitions")]
    #[schemars(range(min = 2, max = 100))]
    pub max_transitions: u32,
    /// Window over which state changes are counted.
    #[serde(default = "default_flap_window")]
    pub window: Duration,
}

fn default_transitions() -> u32 {
    4
}
fn default_flap_window() -> Duration {
    Duration::new("1h")
}

/// PrometheusRule twin settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    /// Render the twin (only when the `monitoring.coreos.com` API exists).
    #[serde(default)]
    pub enabled: bool,
    /// Labels of the PrometheusRule object (to match a Prometheus `ruleSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub labels: BTreeMap<String, String>,
}

/// Alert state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlertState {
    /// The condition does not hold.
    #[default]
    Inactive,
    /// The condition holds, for less than `for`.
    Pending,
    /// The condition held for `for`; notifications are sent.
    Firing,
    /// Firing, but inside a maintenance window or damped: not notified.
    Suppressed,
    /// Silenced by `spec.silence` (the whole rule, or every firing node of it): not notified.
    Silenced,
    /// Every firing alert is acknowledged by `spec.acknowledge`: not notified again until it
    /// resolves or the acknowledgement expires.
    Acknowledged,
}

/// Observed state: the operator writes `observedGeneration` and the Accepted condition,
/// analytics the evaluation, the notifier `notifications`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleStatus {
    /// The `metadata.generation` the operator last validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted (spec valid, references resolve), Ready (evaluated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Current state (the worst over the firing nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlertState>,
    /// When the current Pending/Firing episode began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,
    /// When analytics last evaluated the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
    /// The value at the last evaluation (the worst one with `scope: perNode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// What is pending or firing, worst first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub firing: Vec<FiringInstance>,
    /// Who silenced the rule (`spec.silence.by`), while the silence is in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub silenced_by: Option<String>,
    /// When the silence in effect ends (`spec.silence.until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_until: Option<Time>,
    /// Who acknowledged the firing alerts (`spec.acknowledge.by`), while the acknowledgement
    /// covers at least one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub acknowledged_by: Option<String>,
    /// When that acknowledgement expires (`spec.acknowledge.until`); absent while it lasts
    /// until the acknowledged alerts resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_until: Option<Time>,
    /// Last delivery per channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["channel"]))]
    pub notifications: Vec<ChannelNotification>,
}

/// One pending or firing instance of the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiringInstance {
    /// Node (absent with `scope: target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub node: Option<String>,
    /// RDMA device, e.g. `mlx5_0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub device: Option<String>,
    /// RDMA port number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Ping peer (node name or external target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub peer: Option<String>,
    /// Endpoint (`spec.endpoints[].name` of the MonitorTarget), for endpoint metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub endpoint: Option<String>,
    /// Value at the last evaluation.
    pub value: f64,
    /// Pending or Firing.
    pub state: AlertState,
    /// When this instance became pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// Outcome of a delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeliveryResult {
    /// Delivered.
    Sent,
    /// Delivery failed after retries.
    Failed,
    /// Same notification already delivered.
    Deduplicated,
    /// Not sent: cooldown, maintenance window or damping.
    Suppressed,
}

/// Last delivery to one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelNotification {
    /// Channel name from `spec.notify.channels`.
    #[schemars(length(min = 1, max = 63))]
    pub channel: String,
    /// When delivery was last attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    /// When a notification was last delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_time: Option<Time>,
    /// Result of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<DeliveryResult>,
    /// Detail, e.g. the receiver's HTTP status; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// Consecutive failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<i32>,
}

impl AlertRuleSpec {
    /// Every Secret this rule refers to, as `(field path, secret name)`.
    pub fn secret_refs(&self) -> Vec<(String, String)> {
        self.notify
            .as_ref()
            .map(|n| n.secret_refs("spec.notify"))
            .unwrap_or_default()
    }

    /// Checks what the schema cannot: durations and cron schedules parse, channels are
    /// well-formed, the threshold is finite. References are checked by the controller.
    ///
    /// # Errors
    /// Every problem, each with its field path.
    pub fn validate(&self) -> Result<(), Errors> {
        let mut e = Errors::default();
        let zero = std::time::Duration::ZERO;
        if !self.threshold.is_finite() {
            e.push("spec.threshold", "must be a finite number");
        }
        check_duration(&mut e, "spec.for", &self.for_, zero);
        check_duration(&mut e, "spec.cooldown", &self.cooldown, zero);
        check_duration(
            &mut e,
            "spec.repeatInterval",
            &self.repeat_interval,
            std::time::Duration::from_secs(60),
        );
        for (i, w) in self.maintenance_windows.iter().enumerate() {
            let p = format!("spec.maintenanceWindows[{i}]");
            if let Err(msg) = w.schedule.parse() {
                e.push(
                    format!("{p}.schedule"),
                    format!("invalid cron {:?}: {msg}", w.schedule.as_str()),
                );
            }
            check_duration(
                &mut e,
                &format!("{p}.duration"),
                &w.duration,
                std::time::Duration::from_secs(60),
            );
        }
        if let Some(f) = &self.flap_damping {
            check_duration(&mut e, "spec.flapDamping.resolveFor", &f.resolve_for, zero);
            check_duration(
                &mut e,
                "spec.flapDamping.window",
                &f.window,
                std::time::Duration::from_secs(60),
            );
        }
        if let Some(n) = &self.notify {
            n.validate_into(&mut e, "spec.notify");
        }
        if let Some(a) = &self.acknowledge {
            if a.until.as_ref().is_some_and(|u| u.0 <= a.at.0) {
                e.push(
                    "spec.acknowledge.until",
                    "must be later than spec.acknowledge.at",
                );
            }
        }
        e.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "targetRef: {name: fabric}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\n";

    fn spec(extra: &str) -> AlertRuleSpec {
        serde_yaml::from_str(&format!("{BASE}{extra}")).expect("spec parses")
    }

    #[test]
    fn acknowledgement_parses_and_its_expiry_must_follow_it() {
        let ok = spec("acknowledge: {at: \"2026-12-06T20:00:00Z\", by: alice}\n");
        let a = ok.acknowledge.as_ref().expect("acknowledge");
        assert!(a.notify_resolved, "resolves notify by default");
        assert!(a.until.is_none());
        assert!(ok.validate().is_ok());
        let bad =
            spec("acknowledge: {at: \"2026-12-06T20:00:00Z\", until: \"2026-12-06T19:00:00Z\"}\n");
        let err = bad.validate().expect_err("until before at");
        assert!(
            format!("{err:?}").contains("spec.acknowledge.until"),
            "{err:?}"
        );
    }

    #[test]
    fn defaults() {
        let s = spec("");
        assert_eq!(s.for_.as_str(), "0s");
        assert_eq!(s.cooldown.as_str(), "5m");
        assert_eq!(s.repeat_interval.as_str(), "4h");
        assert_eq!(s.scope, Scope::PerNode);
        assert_eq!(s.severity, Severity::Warning);
        s.validate().expect("valid");
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["for"], "0s", "{json}");
        assert!(json.get("notify").is_none());
    }

    #[test]
    fn operators() {
        assert!(Operator::Gt.holds(2.0, 1.0));
        assert!(!Operator::Gt.holds(1.0, 1.0));
        assert!(Operator::Gte.holds(1.0, 1.0));
        assert!(Operator::Lt.holds(0.5, 1.0));
        assert!(Operator::Lte.holds(1.0, 1.0));
        assert!(Operator::Eq.holds(0.0, 0.0));
        assert!(Operator::Ne.holds(1.0, 0.0));
        assert!(!Operator::Ne.holds(f64::NAN, 0.0));
        assert!(!Operator::Gt.holds(f64::NAN, 0.0));
        assert_eq!(Operator::Gte.promql(), ">=");
    }

    #[test]
    fn metric_names_round_trip() {
        for m in [
            Metric::RdmaSymbolErrorsPerMinute,
            Metric::AnomalyScore,
            Metric::PingRttP99Seconds,
            Metric::NodeSuspect,
            Metric::EndpointUp,
            Metric::TlsCertificateExpiryDays,
        ] {
            let json = serde_json::to_value(m).expect("json");
            assert_eq!(json, m.as_str());
        }
    }

    #[test]
    fn validation_catalogue() {
        let cases = [
            ("for: 5", "spec.for: invalid duration \"5\": missing unit"),
            ("repeatInterval: 10s", "spec.repeatInterval: must be at least 60s, got 10s"),
            (
                "maintenanceWindows: [{schedule: '61 * * * *', duration: 1h}]",
                "spec.maintenanceWindows[0].schedule: invalid cron \"61 * * * *\"",
            ),
            (
                "maintenanceWindows: [{schedule: '0 2 * * SAT', duration: 10s}]",
                "spec.maintenanceWindows[0].duration: must be at least 60s",
            ),
            ("flapDamping: {window: 1s}", "spec.flapDamping.window: must be at least 60s"),
            (
                "notify: {channels: [{name: a}]}",
                "spec.notify.channels[0]: set exactly one of slack, telegram, email, webhook, alertmanager",
            ),
            (
                "notify: {channels: [{name: a, slack: {webhookUrlSecretRef: {name: s, key: k}}, telegram: {botTokenSecretRef: {name: s, key: k}, chatId: '1'}}]}",
                "spec.notify.channels[0]: set exactly one of",
            ),
            (
                "notify: {channels: [{name: a, alertmanager: {}}]}",
                "spec.notify.channels[0].alertmanager: set exactly one of url and urlSecretRef",
            ),
            (
                "notify: {channels: [{name: a, alertmanager: {url: 'http://am:9093'}}, {name: a, alertmanager: {url: 'http://am:9093'}}]}",
                "spec.notify.channels[1].name: duplicate channel name \"a\"",
            ),
            (
                "notify: {channels: [{name: m, email: {to: [ops.example.com], from: fw@example.com, smtpHost: smtp}}]}",
                "spec.notify.channels[0].email.to[0]: \"ops.example.com\" is not an email address",
            ),
            ("notify: {groupWait: soon}", "spec.notify.groupWait: invalid duration"),
        ];
        for (extra, want) in cases {
            let err = spec(extra).validate().expect_err(extra).to_string();
            assert!(err.contains(want), "{extra}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn full_example_is_valid() {
        spec(
            "for: 1m\nnotify:\n  groupBy: [alertname, node]\n  groupWait: 30s\n  channels:\n  - name: ops\n    slack: {webhookUrlSecretRef: {name: slack, key: url}}\n  - name: tg\n    telegram: {botTokenSecretRef: {name: tg, key: token}, chatId: '-100123'}\n  - name: mail\n    email: {to: [ops@example.com], from: fw@example.com, smtpHost: smtp.example.com, tls: tls, smtpPort: 465}\n  - name: hook\n    webhook: {urlSecretRef: {name: hook, key: url}, hmacSecretRef: {name: hook, key: hmac}}\n  - name: am\n    alertmanager: {url: 'http://am:9093'}\nmaintenanceWindows: [{schedule: '0 2 * * SAT', duration: 2h}]\nflapDamping: {resolveFor: 2m}\n",
        )
        .validate()
        .expect("valid");
    }
}
