//! Per-channel delivery results and where they are reported.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::ChannelKind;
use fabricwatch_proto::notify::SourceKind;
use fabricwatch_proto::ObjectRef;

/// Result of a notification on one channel (the `result` of AlertRule
/// `status.notifications[]` and of the `result` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryResult {
    /// Delivered (the receiver answered success).
    Sent,
    /// Not delivered after the allowed attempts, or a final error.
    Failed,
    /// Not sent because the same alert was already delivered.
    Deduplicated,
    /// Not sent on purpose: cooldown, rate limit, resolved without firing.
    Suppressed,
}

impl DeliveryResult {
    /// Name, as in the status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "Sent",
            Self::Failed => "Failed",
            Self::Deduplicated => "Deduplicated",
            Self::Suppressed => "Suppressed",
        }
    }

    /// All results, for pre-registering metric series.
    pub const ALL: [DeliveryResult; 4] = [
        Self::Sent,
        Self::Failed,
        Self::Deduplicated,
        Self::Suppressed,
    ];
}

/// What happened on one channel of a source object in one delivery round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOutcome {
    /// Channel name.
    pub channel: String,
    /// Channel kind.
    pub kind: ChannelKind,
    /// Overall result: `Sent` if any alert was delivered, else `Failed` if any failed,
    /// else `Suppressed` if any was suppressed, else `Deduplicated`.
    pub result: DeliveryResult,
    /// Delivery attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// When the round finished.
    pub time: DateTime<Utc>,
    /// Last error or the reason for not sending; never contains secret values.
    pub message: String,
    /// Id of the newest request in the round.
    pub last_request_id: String,
    /// Alerts in the round.
    pub alerts: u32,
}

/// Where outcomes go (AlertRule status in production).
pub trait StatusSink: Send + Sync + 'static {
    /// Records the outcomes of one source object's channels. Failures are the sink's to log.
    fn record(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
        outcomes: &[ChannelOutcome],
    ) -> impl Future<Output = ()> + Send;
}

/// Keeps outcomes in memory (tests, runs without Kubernetes).
#[derive(Clone, Debug, Default)]
pub struct MemoryStatus(pub Arc<Mutex<Vec<(SourceKind, ObjectRef, ChannelOutcome)>>>);

impl MemoryStatus {
    /// Everything recorded so far.
    pub fn all(&self) -> Vec<(SourceKind, ObjectRef, ChannelOutcome)> {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl StatusSink for MemoryStatus {
    async fn record(&self, kind: SourceKind, source: &ObjectRef, outcomes: &[ChannelOutcome]) {
        if let Ok(mut g) = self.0.lock() {
            g.extend(outcomes.iter().map(|o| (kind, source.clone(), o.clone())));
        }
    }
}
