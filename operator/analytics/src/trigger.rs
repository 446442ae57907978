//! Hook for AI analyses: what analytics emits when an AlertRule with `analysisRef` starts
//! firing or a node turns anomalous. A consumer (the AI runner) receives these on a channel.

use chrono::{DateTime, Utc};
use fabricwatch_proto::ObjectRef;
use serde::Serialize;

use crate::{alert::SeriesKey, fleet::AnomalyState};

/// A reason to run an analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Trigger {
    /// An AlertRule series started firing and the rule names an AIAnalysis.
    #[serde(rename_all = "camelCase")]
    Alert {
        /// The AIAnalysis named in `analysisRef` (same namespace as the rule).
        analysis: ObjectRef,
        /// The AlertRule.
        rule: ObjectRef,
        /// The MonitorTarget the rule watches.
        target: ObjectRef,
        /// The firing series.
        series: SeriesKey,
        /// Value that fired.
        value: Option<f64>,
        /// Start of the episode.
        starts_at: DateTime<Utc>,
    },
    /// A node went from no anomalous series to some (AIAnalyses with `trigger.onAnomaly`
    /// whose targets include `target` should run).
    #[serde(rename_all = "camelCase")]
    Anomaly {
        /// The MonitorTarget.
        target: ObjectRef,
        /// The node.
        node: String,
        /// Its anomaly state.
        anomaly: AnomalyState,
        /// When it was seen.
        at: DateTime<Utc>,
    },
}
