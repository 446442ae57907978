//! What evaluation says: the rule's [`RuleState`], the [`SeriesKey`] naming one instance of
//! its metric, the [`FiringSeries`] status records, the [`AlertEvent`]s to notify and the
//! [`Evaluation`] of one pass.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// State of a rule as shown in AlertRule status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RuleState {
    /// No series pending or firing.
    #[default]
    Inactive,
    /// Some series holds the condition, waiting for `for` (or cooldown).
    Pending,
    /// Some series fires.
    Firing,
    /// A maintenance window is active (or the rule is flapping).
    Suppressed,
    /// `spec.silence` covers the whole rule, or every firing series.
    Silenced,
    /// `spec.acknowledge` covers every firing series.
    Acknowledged,
}

impl RuleState {
    /// Name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Inactive => "Inactive",
            RuleState::Pending => "Pending",
            RuleState::Firing => "Firing",
            RuleState::Suppressed => "Suppressed",
            RuleState::Silenced => "Silenced",
            RuleState::Acknowledged => "Acknowledged",
        }
    }
}

/// One instance of a rule's metric. All fields empty for a `target` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesKey {
    /// Node name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// RDMA device (or mount point for disk metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// RDMA port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Ping peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Endpoint probe (`spec.endpoints[].name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl SeriesKey {
    /// The key of a per-node series.
    pub fn node(node: &str) -> Self {
        Self {
            node: Some(node.to_string()),
            ..Self::default()
        }
    }

    /// Human-readable form: `node`, `node mlx5_0/1`, `node → peer`, or `target`.
    pub fn describe(&self) -> String {
        let mut out = self.node.clone().unwrap_or_else(|| "target".into());
        if let Some(d) = &self.device {
            out.push(' ');
            out.push_str(d);
            if let Some(p) = self.port {
                out.push_str(&format!("/{p}"));
            }
        }
        if let Some(p) = &self.peer {
            out.push_str(" → ");
            out.push_str(p);
        }
        if let Some(e) = &self.endpoint {
            out.push_str(" → endpoint ");
            out.push_str(e);
        }
        out
    }
}

/// A firing series, for AlertRule `status.firing`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FiringSeries {
    /// Which instance.
    #[serde(flatten)]
    pub key: SeriesKey,
    /// When it started firing.
    pub since: DateTime<Utc>,
    /// Last value.
    pub value: Option<f64>,
}

/// Something to send because a series changed.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertEvent {
    /// Firing (first notification, or a repeat with `index ≥ 1`).
    Firing {
        /// Which instance.
        key: SeriesKey,
        /// Value that fired.
        value: Option<f64>,
        /// Start of the episode.
        starts_at: DateTime<Utc>,
        /// Repeat index: `⌊(now − startsAt) / repeatInterval⌋`, 0 without repeats.
        index: i64,
    },
    /// Resolved.
    Resolved {
        /// Which instance.
        key: SeriesKey,
        /// Last value.
        value: Option<f64>,
        /// Start of the episode.
        starts_at: DateTime<Utc>,
        /// When it resolved.
        ends_at: DateTime<Utc>,
    },
}

/// Who set a silence or an acknowledgement that is in effect, and until when: what AlertRule
/// status shows as `silencedBy`/`silencedUntil` and `acknowledgedBy`/`acknowledgedUntil`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handling {
    /// `spec.silence.by` / `spec.acknowledge.by` (free text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `spec.silence.until` / `spec.acknowledge.until`; `None`: an acknowledgement that lasts
    /// until its episodes resolve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// Result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Rule state.
    pub state: RuleState,
    /// Earliest start among firing (else pending) series.
    pub active_since: Option<DateTime<Utc>>,
    /// The value that decides the state: the worst value among series (max for `>`/`>=`,
    /// min for `<`/`<=`, else the first).
    pub last_value: Option<f64>,
    /// Firing series, by node.
    pub firing: Vec<FiringSeries>,
    /// Notifications to send.
    pub events: Vec<AlertEvent>,
    /// The silence, while in effect (`until` not yet passed), whatever it covers.
    pub silenced: Option<Handling>,
    /// The acknowledgement, while it covers at least one firing series.
    pub acknowledged: Option<Handling>,
}
