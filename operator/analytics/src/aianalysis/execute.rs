//! One run of one AIAnalysis, without Kubernetes: settings from the spec, the analyzer call,
//! the status to write and the notification to send. The runner does the IO around it
//! (reading the Secret and Events, applying status, publishing Events).

use chrono::{DateTime, Utc};
use fabricwatch_ai::{
    Analyzer, FailureReason, ProviderCredentials, ProviderFailure, RunOutcome, Situation,
};
use fabricwatch_crds::{ai_analysis::AIAnalysisStatus, AIAnalysis};
use fabricwatch_proto::notify::NotificationRequest;

use super::{
    settings::settings,
    status::{notification, run_status, Persisted, RunContext},
};
use crate::rules::object_ref;

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Executed {
    /// The analyzer's outcome (for metrics and Events).
    pub outcome: RunOutcome,
    /// The analytics-owned status to apply.
    pub status: AIAnalysisStatus,
    /// The ledger and counters to keep in memory until the next run.
    pub persisted: Persisted,
    /// Findings notification, when `spec.notify` has channels and the findings are new.
    pub notification: Option<NotificationRequest>,
}

/// Runs `analysis` once on `situation`.
///
/// `credentials` is what the runner read from the referenced Secret (an `Err` carries a
/// message naming the Secret and key, never a value; it fails the run with reason
/// `AuthFailed` and no provider call). `persisted` is the ledger read back from status or
/// kept from the previous run. Never panics; every failure ends up in the status.
pub async fn execute(
    analyzer: &Analyzer,
    analysis: &AIAnalysis,
    situation: &Situation,
    credentials: Result<ProviderCredentials, String>,
    persisted: Persisted,
    next_run: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
) -> Executed {
    let mut p = persisted;
    let spec = &analysis.spec;
    let failed =
        |reason: FailureReason, message: String, usage: fabricwatch_ai::Usage| RunOutcome {
            error: Some(ProviderFailure {
                reason,
                message,
                attempts: 0,
                status: None,
            }),
            usage,
            model: spec.provider.model.clone(),
            ..RunOutcome::default()
        };
    let outcome = match credentials {
        Err(msg) => failed(FailureReason::AuthFailed, msg, p.usage.clone()),
        Ok(creds) => match settings(spec, creds) {
            Err(msg) => failed(FailureReason::InvalidConfig, msg, p.usage.clone()),
            Ok(s) => analyzer.run_at(situation, &s, &mut p.usage, started).await,
        },
    };
    p.usage = outcome.usage.clone();
    if outcome.cache_hit {
        p.cache_hits += 1;
    } else if outcome.calls > 0 {
        p.cache_misses += 1;
    }
    p.last_run = Some(started);
    let prev = analysis.status.as_ref();
    let status = run_status(
        prev,
        &outcome,
        &RunContext {
            generation: analysis.metadata.generation,
            started,
            next_run,
            cache_hits: p.cache_hits,
            cache_misses: p.cache_misses,
        },
        Utc::now().max(started),
    );
    let has_channels = spec.notify.as_ref().is_some_and(|n| !n.channels.is_empty());
    let notification =
        if has_channels && outcome.error.is_none() && outcome.budget_exceeded.is_none() {
            notification(
                &object_ref(&analysis.metadata),
                &status.findings,
                prev.map(|s| s.findings.as_slice()).unwrap_or(&[]),
                started,
            )
        } else {
            None
        };
    Executed {
        outcome,
        status,
        persisted: p,
        notification,
    }
}
