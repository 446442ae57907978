//! [`RunOutcome`] → the analytics-owned part of `AIAnalysis.status`, the persisted ledger
//! read back from status, and the findings notification. Pure.
//!
//! Server-side apply removes fields a manager stops sending, so every function here returns
//! the *whole* analytics-owned status (findings of the last good run are carried over when a
//! run fails). Condition `lastTransitionTime` moves only when a condition's status flips
//! (metav1.Condition convention).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use fabricwatch_ai::{FailureReason, RunOutcome};
use fabricwatch_crds::{
    ai_analysis::{self as aia, AIAnalysisStatus, Phase},
    condition_types,
    conditions::{self, Cond},
    Condition, Severity,
};
use fabricwatch_proto::{
    notify::{AlertStatus, NotificationRequest, SourceKind, NOTIFY_SCHEMA_VERSION},
    ObjectRef,
};
use sha2::{Digest, Sha256};

use crate::rules::{from_time, to_time};

/// What a restart must not lose, read back from status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Persisted {
    /// The spend ledger (`usage`, with `day`).
    pub usage: fabricwatch_ai::Usage,
    /// `cache.hits`.
    pub cache_hits: i64,
    /// `cache.misses`.
    pub cache_misses: i64,
    /// `lastRunTime`.
    pub last_run: Option<DateTime<Utc>>,
}

/// Reads the ledger, cache counters and last run time from `status`. A missing or
/// malformed `usage.day` leaves `day` unset, so the analyzer starts today's spend from the
/// recorded `todayCostUsd` only when it belongs to today.
pub fn persisted(status: Option<&AIAnalysisStatus>) -> Persisted {
    let Some(s) = status else {
        return Persisted::default();
    };
    let u = s.usage.clone().unwrap_or_default();
    let day = u
        .day
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let nonneg = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0).unwrap_or(0.0);
    Persisted {
        usage: fabricwatch_ai::Usage {
            input_tokens: u.input_tokens.unwrap_or(0).max(0) as u64,
            output_tokens: u.output_tokens.unwrap_or(0).max(0) as u64,
            cost_usd: nonneg(u.cost_usd),
            // Spend without a day cannot be attributed: count it as today's (safe side).
            today_cost_usd: nonneg(u.today_cost_usd),
            day,
        },
        cache_hits: s.cache.as_ref().and_then(|c| c.hits).unwrap_or(0).max(0),
        cache_misses: s.cache.as_ref().and_then(|c| c.misses).unwrap_or(0).max(0),
        last_run: s.last_run_time.as_ref().and_then(from_time),
    }
}

fn usage(u: &fabricwatch_ai::Usage) -> aia::Usage {
    // Round money to 1e-6 USD: status is not a ledger of sub-micro-dollar noise.
    let usd = |v: f64| (v * 1e6).round() / 1e6;
    aia::Usage {
        input_tokens: Some(u.input_tokens.min(i64::MAX as u64) as i64),
        output_tokens: Some(u.output_tokens.min(i64::MAX as u64) as i64),
        cost_usd: Some(usd(u.cost_usd)),
        today_cost_usd: Some(usd(u.today_cost_usd)),
        day: u.day.map(|d| d.format("%Y-%m-%d").to_string()),
    }
}

/// Sort key putting the most severe first (also the order byte of the notification id).
fn rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    }
}

/// The analyzer's findings as status findings: most severe first, at most
/// [`aia::MAX_FINDINGS`], lists and texts within the CRD's bounds.
pub fn findings(found: &[fabricwatch_ai::Finding]) -> Vec<aia::Finding> {
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let mut out: Vec<aia::Finding> = found
        .iter()
        .map(|f| aia::Finding {
            severity: f.severity,
            title: cut(&f.title, 200),
            summary: cut(&f.summary, 2000),
            evidence: f.evidence.iter().take(10).map(|e| cut(e, 500)).collect(),
            affected: f.affected.iter().take(20).map(|e| cut(e, 253)).collect(),
            recommendation: Some(cut(&f.recommendation, 2000)).filter(|r| !r.is_empty()),
            confidence: f
                .confidence
                .is_finite()
                .then(|| f.confidence.clamp(0.0, 1.0)),
        })
        .collect();
    out.sort_by_key(|f| rank(f.severity));
    out.truncate(aia::MAX_FINDINGS);
    out
}

/// A condition keeping `lastTransitionTime` from `prev` unless the status flips
/// ([`conditions::set`]; the message is cut to [`conditions::MAX_MESSAGE`]).
pub fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    prev: &[Condition],
    now: DateTime<Utc>,
) -> Condition {
    conditions::set(
        prev,
        &Cond::new(type_, status, reason, message),
        generation,
        &to_time(now),
    )
}

fn reason_str(r: FailureReason) -> &'static str {
    r.as_str()
}

/// What a run needs besides its outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct RunContext {
    /// `metadata.generation` of the AIAnalysis run.
    pub generation: Option<i64>,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// Next scheduled run, when the spec has a schedule.
    pub next_run: Option<DateTime<Utc>>,
    /// Cache counters after this run.
    pub cache_hits: i64,
    /// Cache counters after this run.
    pub cache_misses: i64,
}

/// The analytics-owned status after a run. `prev` is the current status (its findings are
/// kept when the run produced none because it failed or was refused).
pub fn run_status(
    prev: Option<&AIAnalysisStatus>,
    out: &RunOutcome,
    ctx: &RunContext,
    now: DateTime<Utc>,
) -> AIAnalysisStatus {
    let prev_conds = prev.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let g = ctx.generation;
    let failed = out.error.is_some();
    let refused = out.budget_exceeded.is_some();
    let (phase, found) = if failed || refused {
        let keep = prev.map(|s| s.findings.clone()).unwrap_or_default();
        (
            if refused {
                Phase::BudgetExceeded
            } else {
                Phase::Failed
            },
            keep,
        )
    } else {
        (Phase::Succeeded, findings(&out.findings))
    };
    let mut conditions = Vec::with_capacity(3);
    conditions.push(match (&out.error, &out.budget_exceeded) {
        (Some(e), _) => condition(
            condition_types::READY,
            false,
            "ProviderError",
            &e.message,
            g,
            prev_conds,
            now,
        ),
        (None, Some(b)) => condition(
            condition_types::READY,
            false,
            "BudgetExceeded",
            &b.to_string(),
            g,
            prev_conds,
            now,
        ),
        (None, None) => {
            let msg = if out.cache_hit {
                format!("{} findings (answer reused from the cache)", found.len())
            } else {
                format!("{} findings", found.len())
            };
            condition(
                condition_types::READY,
                true,
                "Succeeded",
                &msg,
                g,
                prev_conds,
                now,
            )
        }
    });
    conditions.push(match &out.budget_exceeded {
        Some(b @ fabricwatch_ai::BudgetExceeded::Daily { .. }) => condition(
            condition_types::BUDGET_EXCEEDED,
            true,
            "DailyBudgetSpent",
            &format!("{b}; no provider calls until 00:00 UTC"),
            g,
            prev_conds,
            now,
        ),
        Some(b @ fabricwatch_ai::BudgetExceeded::PerRun { .. }) => condition(
            condition_types::BUDGET_EXCEEDED,
            true,
            "RunTokenLimit",
            &b.to_string(),
            g,
            prev_conds,
            now,
        ),
        None => condition(
            condition_types::BUDGET_EXCEEDED,
            false,
            "WithinBudget",
            &format!("spent {:.4} USD today (UTC)", out.usage.today_cost_usd),
            g,
            prev_conds,
            now,
        ),
    });
    conditions.push(match &out.error {
        Some(e) => {
            let mut msg = format!("{} (after {} attempts)", e.message, e.attempts);
            if let Some(s) = &out.summary {
                msg.push_str("; plain-text answer: ");
                msg.push_str(s);
            }
            condition(
                condition_types::PROVIDER_ERROR,
                true,
                reason_str(e.reason),
                &msg,
                g,
                prev_conds,
                now,
            )
        }
        None => condition(
            condition_types::PROVIDER_ERROR,
            false,
            "NoError",
            "the last run got a valid answer or made no call",
            g,
            prev_conds,
            now,
        ),
    });
    // Written by the reachability check, not by runs: carried over.
    conditions.extend(
        prev_conds
            .iter()
            .filter(|c| c.type_ == condition_types::PROVIDER_REACHABLE)
            .cloned(),
    );
    let top = found.iter().map(|f| f.severity).min_by_key(|s| rank(*s));
    AIAnalysisStatus {
        observed_generation: None,
        conditions,
        phase: Some(phase),
        last_run_time: Some(to_time(ctx.started)),
        next_run_time: ctx.next_run.map(to_time),
        finding_count: Some(found.len() as i32),
        top_severity: top,
        findings: found,
        usage: Some(usage(&out.usage)),
        model: Some(out.model.chars().take(256).collect()).filter(|m: &String| !m.is_empty()),
        cache: Some(aia::CacheStats {
            hits: Some(ctx.cache_hits),
            misses: Some(ctx.cache_misses),
        }),
    }
}

/// The analytics-owned part of `status` (without the operator's `observedGeneration` and
/// `Accepted` condition); what [`run_status`] / [`idle_status`] compare against.
pub fn owned_part(status: &AIAnalysisStatus) -> AIAnalysisStatus {
    let mut s = status.clone();
    s.observed_generation = None;
    s.conditions
        .retain(|c| c.type_ != condition_types::ACCEPTED);
    s
}

/// The status of an analysis that is waiting for a trigger: what `prev` says, with `Ready`
/// set (when absent), `phase: Pending` before the first run, and `nextRunTime` refreshed.
pub fn idle_status(
    prev: Option<&AIAnalysisStatus>,
    generation: Option<i64>,
    next_run: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AIAnalysisStatus {
    let mut s = prev.map(owned_part).unwrap_or_default();
    if s.phase.is_none() {
        s.phase = Some(Phase::Pending);
    }
    if !s
        .conditions
        .iter()
        .any(|c| c.type_ == condition_types::READY)
    {
        s.conditions.push(condition(
            condition_types::READY,
            true,
            "Waiting",
            "accepted; waiting for a trigger",
            generation,
            &[],
            now,
        ));
    }
    s.next_run_time = next_run.map(to_time);
    s
}

/// `current`'s analytics-owned status with the `ProviderReachable` condition set from a
/// reachability check's result (`Ok`: what the provider answered).
pub fn reachability_status(
    current: Option<&AIAnalysisStatus>,
    result: &Result<String, fabricwatch_ai::ProviderFailure>,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> AIAnalysisStatus {
    let mut s = current.map(owned_part).unwrap_or_default();
    let c = match result {
        Ok(seen) => condition(
            condition_types::PROVIDER_REACHABLE,
            true,
            "Reachable",
            seen,
            generation,
            &s.conditions,
            now,
        ),
        Err(f) => condition(
            condition_types::PROVIDER_REACHABLE,
            false,
            reason_str(f.reason),
            &f.message,
            generation,
            &s.conditions,
            now,
        ),
    };
    s.conditions
        .retain(|x| x.type_ != condition_types::PROVIDER_REACHABLE);
    s.conditions.push(c);
    s
}

/// Whether writing `desired` would change the analytics-owned part of `current`.
pub fn changed(current: Option<&AIAnalysisStatus>, desired: &AIAnalysisStatus) -> bool {
    current.map(owned_part).as_ref() != Some(&owned_part(desired))
}

/// A findings notification for the channels of `analysis` (its `spec.notify`), or `None`
/// when there are no findings or they equal `previous` (same severity and title list), so a
/// recurring diagnosis is not re-sent on every run. The id is derived from the analysis and
/// the findings, so a request re-sent after a restart is acknowledged as a duplicate.
pub fn notification(
    analysis: &ObjectRef,
    found: &[aia::Finding],
    previous: &[aia::Finding],
    at: DateTime<Utc>,
) -> Option<NotificationRequest> {
    let sig = |f: &[aia::Finding]| -> Vec<(u8, String)> {
        f.iter()
            .map(|x| (rank(x.severity), x.title.clone()))
            .collect()
    };
    if found.is_empty() || sig(found) == sig(previous) {
        return None;
    }
    let top = found.iter().map(|f| f.severity).min_by_key(|s| rank(*s))?;
    let mut h = Sha256::new();
    h.update(format!(
        "AIAnalysis/{}/{}",
        analysis.namespace, analysis.name
    ));
    for (r, t) in sig(found) {
        h.update([r]);
        h.update(t.as_bytes());
        h.update([0]);
    }
    let digest = hex::encode(h.finalize());
    let labels = BTreeMap::from([
        ("alertname".to_string(), "AIAnalysis".to_string()),
        ("namespace".to_string(), analysis.namespace.clone()),
        ("analysis".to_string(), analysis.name.clone()),
        ("severity".to_string(), top.as_str().to_string()),
    ]);
    let mut description = String::new();
    for f in found {
        let line = format!(
            "- [{}] {}: {}{}\n",
            f.severity.as_str(),
            f.title,
            f.summary,
            f.recommendation
                .as_ref()
                .map(|r| format!(" Recommendation: {r}"))
                .unwrap_or_default()
        );
        if description.len() + line.len() > 4000 {
            description.push_str("- (more findings in the AIAnalysis status)\n");
            break;
        }
        description.push_str(&line);
    }
    let first = &found[0];
    Some(NotificationRequest {
        schema_version: NOTIFY_SCHEMA_VERSION,
        id: digest[..32].to_string(),
        source_kind: SourceKind::AIAnalysis,
        source: analysis.clone(),
        fingerprint: digest[..16].to_string(),
        status: AlertStatus::Firing,
        severity: top,
        labels,
        annotations: BTreeMap::from([
            (
                "summary".to_string(),
                format!("{} finding(s); most severe: {}", found.len(), first.title),
            ),
            (
                "description".to_string(),
                description.trim_end().to_string(),
            ),
        ]),
        value: Some(found.len() as f64),
        starts_at: at,
        ends_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_ai::{BudgetExceeded, ProviderFailure};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn ai_finding(sev: fabricwatch_ai::Severity, title: &str) -> fabricwatch_ai::Finding {
        fabricwatch_ai::Finding {
            severity: sev,
            title: title.into(),
            summary: "s".into(),
            evidence: vec!["e".into()],
            affected: vec!["gpu-a".into(), "gpu-a/mlx5_0/1".into()],
            recommendation: "r".into(),
            confidence: 0.8,
        }
    }

    fn ctx() -> RunContext {
        RunContext {
            generation: Some(3),
            started: t(0),
            next_run: Some(t(3600)),
            cache_hits: 1,
            cache_misses: 2,
        }
    }

    fn ok_outcome() -> RunOutcome {
        RunOutcome {
            findings: vec![
                ai_finding(fabricwatch_ai::Severity::Info, "minor"),
                ai_finding(fabricwatch_ai::Severity::Critical, "link down"),
            ],
            usage: fabricwatch_ai::Usage {
                input_tokens: 1200,
                output_tokens: 300,
                cost_usd: 0.00216,
                today_cost_usd: 0.0123456789,
                day: NaiveDate::from_ymd_opt(2027, 1, 15),
            },
            model: "anthropic.claude-3-5-haiku-20241022-v1:0".into(),
            calls: 1,
            ..RunOutcome::default()
        }
    }

    fn cond<'a>(s: &'a AIAnalysisStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .expect("condition")
    }

    #[test]
    fn success_maps_findings_usage_and_conditions() {
        let s = run_status(None, &ok_outcome(), &ctx(), t(5));
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert_eq!(s.finding_count, Some(2));
        assert_eq!(s.top_severity, Some(Severity::Critical));
        assert_eq!(s.findings[0].title, "link down", "most severe first");
        assert_eq!(s.findings[0].affected, vec!["gpu-a", "gpu-a/mlx5_0/1"]);
        assert_eq!(s.findings[0].recommendation.as_deref(), Some("r"));
        let u = s.usage.as_ref().expect("usage");
        assert_eq!((u.input_tokens, u.output_tokens), (Some(1200), Some(300)));
        assert_eq!(u.today_cost_usd, Some(0.012346));
        assert_eq!(u.day.as_deref(), Some("2027-01-15"));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Ready").observed_generation, Some(3));
        assert_eq!(cond(&s, "BudgetExceeded").status, "False");
        assert_eq!(cond(&s, "ProviderError").status, "False");
        assert_eq!(s.last_run_time, Some(to_time(t(0))));
        assert_eq!(s.next_run_time, Some(to_time(t(3600))));
        assert_eq!(s.cache.as_ref().and_then(|c| c.misses), Some(2));
        assert!(s.observed_generation.is_none(), "operator-owned");
    }

    #[test]
    fn failure_keeps_previous_findings_and_sets_reason() {
        let good = run_status(None, &ok_outcome(), &ctx(), t(5));
        let bad = RunOutcome {
            error: Some(ProviderFailure {
                reason: FailureReason::RateLimited,
                message: "429 slow down".into(),
                attempts: 3,
                status: Some(429),
            }),
            usage: ok_outcome().usage,
            ..RunOutcome::default()
        };
        let s = run_status(Some(&good), &bad, &ctx(), t(100));
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.findings, good.findings);
        let pe = cond(&s, "ProviderError");
        assert_eq!(
            (pe.status.as_str(), pe.reason.as_str()),
            ("True", "RateLimited")
        );
        assert!(pe.message.contains("429 slow down"));
        assert_eq!(pe.last_transition_time, to_time(t(100)), "flipped now");
        let ready = cond(&s, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ProviderError")
        );
        // BudgetExceeded stayed False: its transition time is kept from the first write.
        assert_eq!(
            cond(&s, "BudgetExceeded").last_transition_time,
            to_time(t(5))
        );
    }

    #[test]
    fn budget_refusal() {
        let out = RunOutcome {
            budget_exceeded: Some(BudgetExceeded::Daily {
                spent_usd: 1.0,
                daily_usd: 1.0,
                call_usd: 0.01,
            }),
            ..RunOutcome::default()
        };
        let s = run_status(None, &out, &ctx(), t(0));
        assert_eq!(s.phase, Some(Phase::BudgetExceeded));
        let b = cond(&s, "BudgetExceeded");
        assert_eq!(
            (b.status.as_str(), b.reason.as_str()),
            ("True", "DailyBudgetSpent")
        );
        assert_eq!(cond(&s, "ProviderError").status, "False");
    }

    #[test]
    fn usage_round_trips_through_status() {
        let s = run_status(None, &ok_outcome(), &ctx(), t(5));
        let p = persisted(Some(&s));
        assert_eq!(p.usage.day, NaiveDate::from_ymd_opt(2027, 1, 15));
        assert_eq!(p.usage.today_cost_usd, 0.012346);
        assert_eq!((p.cache_hits, p.cache_misses), (1, 2));
        assert_eq!(p.last_run, Some(t(0)));
        let mut bad = s.clone();
        if let Some(u) = bad.usage.as_mut() {
            u.day = Some("15/01/2027".into());
            u.today_cost_usd = Some(f64::NAN);
        }
        let p = persisted(Some(&bad));
        assert_eq!((p.usage.day, p.usage.today_cost_usd), (None, 0.0));
        assert_eq!(persisted(None), Persisted::default());
    }

    #[test]
    fn reachability_condition_is_set_and_survives_runs() {
        let fail = Err(fabricwatch_ai::ProviderFailure {
            reason: FailureReason::AuthFailed,
            message: "GET /models: HTTP 401: Incorrect API key provided".into(),
            attempts: 1,
            status: Some(401),
        });
        let s = reachability_status(None, &fail, Some(2), t(0));
        let c = cond(&s, condition_types::PROVIDER_REACHABLE);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "AuthFailed")
        );
        assert_eq!(
            c.message,
            "GET /models: HTTP 401: Incorrect API key provided"
        );
        // A successful check flips it; the transition time moves.
        let s = reachability_status(
            Some(&s),
            &Ok("GET /models: 1 models, m listed".into()),
            Some(2),
            t(60),
        );
        let c = cond(&s, condition_types::PROVIDER_REACHABLE);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Reachable")
        );
        assert_eq!(c.last_transition_time, to_time(t(60)));
        assert_eq!(s.conditions.len(), 1);
        // A run keeps it.
        let after = run_status(Some(&s), &ok_outcome(), &ctx(), t(120));
        assert_eq!(
            cond(&after, condition_types::PROVIDER_REACHABLE).status,
            "True"
        );
    }

    #[test]
    fn change_detection_ignores_operator_fields() {
        let s = run_status(None, &ok_outcome(), &ctx(), t(5));
        let mut current = s.clone();
        current.observed_generation = Some(3);
        current
            .conditions
            .push(condition("Accepted", true, "Valid", "", Some(3), &[], t(0)));
        assert!(!changed(Some(&current), &s));
        assert!(changed(None, &s));
        let idle = idle_status(Some(&current), Some(3), Some(t(3600)), t(10));
        assert!(!changed(Some(&current), &idle), "nothing new while idle");
        let fresh = idle_status(None, Some(1), None, t(0));
        assert_eq!(fresh.phase, Some(Phase::Pending));
        assert_eq!(cond(&fresh, "Ready").reason, "Waiting");
    }

    #[test]
    fn notification_only_for_new_findings() {
        let a = ObjectRef {
            namespace: "ns".into(),
            name: "diag".into(),
        };
        let f = findings(&ok_outcome().findings);
        let n = notification(&a, &f, &[], t(0)).expect("notification");
        assert_eq!(n.source_kind, SourceKind::AIAnalysis);
        assert_eq!(n.source, a);
        assert_eq!(n.severity, fabricwatch_proto::Severity::Critical);
        assert!(n.annotations["summary"].contains("link down"));
        assert!(n.annotations["description"].contains("[info] minor"));
        assert_eq!(n.id.len(), 32);
        assert_eq!(
            notification(&a, &f, &[], t(99)).expect("again").id,
            n.id,
            "stable id"
        );
        assert!(
            notification(&a, &f, &f, t(0)).is_none(),
            "same findings as before"
        );
        assert!(notification(&a, &[], &f, t(0)).is_none(), "no findings");
    }
}
