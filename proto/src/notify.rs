//! Analytics → notifier request (`POST /api/v1/notifications`, `schemaVersion` 1).
//!
//! The request names the object whose `spec.notify` lists the channels (an AlertRule or an
//! AIAnalysis); the notifier reads the channels and their Secret references from that object
//! itself, so the sender can never redirect a notification to a channel the user did not
//! configure. The notifier answers 202 with a [`NotificationAck`]; a request whose `id` it has
//! already accepted is acknowledged with `duplicate: true` and not sent again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ObjectRef, Severity};

/// Path of the notification endpoint on the notifier.
pub const NOTIFY_PATH: &str = "/api/v1/notifications";
/// Schema version of [`NotificationRequest`] this crate writes.
pub const NOTIFY_SCHEMA_VERSION: u32 = 1;

/// Kind of object that owns the channel list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    /// A `fabricwatch.io/v1alpha1` AlertRule.
    AlertRule,
    /// A `fabricwatch.io/v1alpha1` AIAnalysis (findings of a run).
    AIAnalysis,
}

/// Whether the alert is starting/ongoing or over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// One notification to deliver to every channel of the source object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRequest {
    /// Always [`NOTIFY_SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// Idempotency key: the same id is delivered at most once. Analytics derives it from
    /// the fingerprint, the status and `startsAt`, so a re-sent request after a restart is
    /// recognised.
    pub id: String,
    /// Kind of the source object.
    pub source_kind: SourceKind,
    /// The source object (its `spec.notify` lists the channels).
    pub source: ObjectRef,
    /// Stable hash of the alert's identifying labels (Alertmanager-style fingerprint).
    pub fingerprint: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Severity, written `Critical` / `Warning` / `Info` as this request always carried it
    /// (a notifier of any version reads it); read in either case.
    #[serde(serialize_with = "Severity::serialize_pascal")]
    pub severity: Severity,
    /// Identifying labels: `alertname`, `namespace`, `target`, `node`, `device`, `port`, `peer`, ...
    pub labels: BTreeMap<String, String>,
    /// Human text: `summary`, `description`, ...
    pub annotations: BTreeMap<String, String>,
    /// The metric value that triggered the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved (only for `Resolved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

/// The notifier's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationAck {
    /// The request id.
    pub id: String,
    /// `true` when the id had been accepted before; nothing new is sent.
    pub duplicate: bool,
}
