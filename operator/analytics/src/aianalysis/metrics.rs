//! Prometheus metrics of AI analyses, registered in analytics' registry. Labels come from
//! fixed lists (`result`, `direction`, `reason`), never from object or secret values.

use prometheus::{Counter, IntCounter, IntCounterVec, Opts, Registry};

/// The AI runner's metrics.
#[derive(Clone)]
pub struct AiMetrics {
    /// `fabricwatch_analytics_ai_runs_total{result}`: runs by result
    /// (`succeeded`, `cached`, `failed`, `budget_exceeded`).
    pub runs: IntCounterVec,
    /// `fabricwatch_analytics_ai_tokens_total{direction}`: provider-reported tokens
    /// (`input`, `output`).
    pub tokens: IntCounterVec,
    /// `fabricwatch_analytics_ai_cost_usd_total`: spend, USD (token counts × price table).
    pub cost_usd: Counter,
    /// `fabricwatch_analytics_ai_cache_hits_total`: runs answered from the answer cache.
    pub cache_hits: IntCounter,
    /// `fabricwatch_analytics_ai_cache_misses_total`: runs that called the provider.
    pub cache_misses: IntCounter,
    /// `fabricwatch_analytics_ai_provider_errors_total{reason}`: failed runs by reason
    /// (`Timeout`, `RateLimited`, `AuthFailed`, `InvalidResponse`, `Unavailable`,
    /// `InvalidConfig`).
    pub provider_errors: IntCounterVec,
    /// `fabricwatch_analytics_ai_triggers_debounced_total{reason}`: triggers that joined a
    /// pending run or were dropped within `minInterval`.
    pub debounced: IntCounterVec,
}

impl AiMetrics {
    /// Creates and registers the metrics in `r`.
    ///
    /// # Errors
    /// When a name is already registered.
    pub fn register(r: &Registry) -> prometheus::Result<Self> {
        let cv = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let ic = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let cost_usd = Counter::new(
            "fabricwatch_analytics_ai_cost_usd_total",
            "LLM spend of AI analyses, USD.",
        )?;
        r.register(Box::new(cost_usd.clone()))?;
        Ok(Self {
            runs: cv(
                "fabricwatch_analytics_ai_runs_total",
                "AI analysis runs, by result.",
                &["result"],
            )?,
            tokens: cv(
                "fabricwatch_analytics_ai_tokens_total",
                "LLM tokens of AI analyses, by direction.",
                &["direction"],
            )?,
            cost_usd,
            cache_hits: ic(
                "fabricwatch_analytics_ai_cache_hits_total",
                "AI analysis runs answered from the answer cache.",
            )?,
            cache_misses: ic(
                "fabricwatch_analytics_ai_cache_misses_total",
                "AI analysis runs that called the provider.",
            )?,
            provider_errors: cv(
                "fabricwatch_analytics_ai_provider_errors_total",
                "Failed AI analysis runs, by reason.",
                &["reason"],
            )?,
            debounced: cv(
                "fabricwatch_analytics_ai_triggers_debounced_total",
                "AI triggers coalesced into a pending run or dropped within minInterval, by reason.",
                &["reason"],
            )?,
        })
    }

    /// Records one run's outcome.
    pub fn record(&self, out: &fabricwatch_ai::RunOutcome) {
        let result = if out.budget_exceeded.is_some() {
            "budget_exceeded"
        } else if let Some(e) = &out.error {
            self.provider_errors
                .with_label_values(&[e.reason.as_str()])
                .inc();
            "failed"
        } else if out.cache_hit {
            "cached"
        } else {
            "succeeded"
        };
        self.runs.with_label_values(&[result]).inc();
        if out.cache_hit {
            self.cache_hits.inc();
        } else if out.calls > 0 {
            self.cache_misses.inc();
        }
        if out.calls > 0 {
            self.tokens
                .with_label_values(&["input"])
                .inc_by(out.usage.input_tokens);
            self.tokens
                .with_label_values(&["output"])
                .inc_by(out.usage.output_tokens);
            if out.usage.cost_usd.is_finite() && out.usage.cost_usd > 0.0 {
                self.cost_usd.inc_by(out.usage.cost_usd);
            }
        }
    }
}
