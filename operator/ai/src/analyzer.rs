//! One diagnosis run: context → cache → budget → provider → validation → (repair) →
//! findings, with the usage ledger updated in place.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::budget::{self, Budget, BudgetExceeded, PriceSource, Usage};
use crate::cache::{AnswerCache, CacheStats};
use crate::context::{self, ContextLimits};
use crate::findings::{self, Finding, FindingLimits};
use crate::prompt;
use crate::provider::{
    self, AnyProvider, ChatRequest, ChatResponse, FailureReason, ProviderConfig, ProviderFailure,
    ProviderKind, RetryPolicy,
};
use crate::situation::Situation;
use crate::tokens;

/// Tokens the chat framing adds around the two messages (role markers, message separators);
/// a generous allowance since providers do not publish it exactly.
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 32;

/// Process-wide settings of an [`Analyzer`].
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyzerConfig {
    /// Caps applied while building the context.
    pub context_limits: ContextLimits,
    /// Caps applied to the findings.
    pub finding_limits: FindingLimits,
    /// Retry policy of provider calls.
    pub retry: RetryPolicy,
    /// Answers kept in the cache.
    pub cache_capacity: usize,
    /// How long a cached answer is reused.
    pub cache_ttl: Duration,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            context_limits: ContextLimits::default(),
            finding_limits: FindingLimits::default(),
            retry: RetryPolicy::default(),
            cache_capacity: 256,
            cache_ttl: Duration::from_secs(3600),
        }
    }
}

/// What one AIAnalysis asks for (its spec, with credentials resolved by the caller).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisSettings {
    /// `spec.provider`.
    pub provider: ProviderConfig,
    /// `spec.budget`.
    pub budget: Budget,
    /// `spec.anonymize` (default `true`).
    pub anonymize: bool,
}

/// The result of one run; maps onto `AIAnalysis.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutcome {
    /// Validated findings with real names (empty when nothing is wrong or the run failed).
    pub findings: Vec<Finding>,
    /// Bounded plain-text summary when the answer stayed invalid after one repair.
    pub summary: Option<String>,
    /// The ledger after the run (also written back into the caller's `Usage`).
    pub usage: Usage,
    /// The answer came from the cache (no provider call).
    pub cache_hit: bool,
    /// Provider failure (`ProviderError` condition); `InvalidResponse` when the answer was
    /// unusable.
    pub error: Option<ProviderFailure>,
    /// Set when the budget refused the call (`BudgetExceeded` condition); no call was made.
    pub budget_exceeded: Option<BudgetExceeded>,
    /// The model asked.
    pub model: String,
    /// Provider calls made (0, 1, or 2 with a repair).
    pub calls: u32,
    /// Estimated tokens of the prompt (system + user message + framing).
    pub prompt_tokens_estimate: u64,
    /// Context lines cut to fit `maxTokensPerRun`.
    pub omitted_lines: usize,
    /// Findings dropped as invalid or over the count limit.
    pub dropped_findings: usize,
    /// Where the price came from.
    pub price_source: Option<PriceSource>,
}

/// The diagnosis engine: holds the answer cache and the provider clients; share one per
/// process (it is `Send + Sync`).
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    cache: Mutex<AnswerCache>,
    providers: tokio::sync::Mutex<Vec<(ProviderConfig, Arc<AnyProvider>)>>,
}

/// Provider clients kept for reuse (one per distinct provider config).
const MAX_PROVIDERS: usize = 16;

impl Analyzer {
    /// A new analyzer with an empty cache.
    pub fn new(config: AnalyzerConfig) -> Self {
        let cache = AnswerCache::new(config.cache_capacity, config.cache_ttl);
        Analyzer {
            config,
            cache: Mutex::new(cache),
            providers: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Cache hit and miss counters since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.lock().map(|c| c.stats()).unwrap_or_default()
    }

    /// [`Analyzer::run_at`] with the current time.
    pub async fn run(
        &self,
        situation: &Situation,
        settings: &AnalysisSettings,
        usage: &mut Usage,
    ) -> RunOutcome {
        self.run_at(situation, settings, usage, Utc::now()).await
    }

    /// Runs one diagnosis at `now` (UTC day boundaries decide the daily budget). `usage` is
    /// the persisted ledger: it is rolled over to `now`'s day, charged with this run's
    /// tokens and cost, and must be persisted again by the caller. Never panics; every
    /// failure is in the outcome.
    pub async fn run_at(
        &self,
        situation: &Situation,
        settings: &AnalysisSettings,
        usage: &mut Usage,
        now: DateTime<Utc>,
    ) -> RunOutcome {
        let cfg = &settings.provider;
        usage.roll_over(now.date_naive());
        usage.input_tokens = 0;
        usage.output_tokens = 0;
        usage.cost_usd = 0.0;
        let (price, price_source) = settings
            .budget
            .price_for(&cfg.model, cfg.kind == ProviderKind::Ollama);
        let mut out = RunOutcome {
            model: cfg.model.clone(),
            price_source: Some(price_source),
            ..Default::default()
        };
        let max_out = u64::from(cfg.max_output_tokens);
        let secrets = cfg.credentials.secrets();

        // Context budget: what is left of maxTokensPerRun after the answer and the prompt.
        let overhead = tokens::estimate(prompt::SYSTEM_PROMPT)
            + tokens::estimate(&prompt::user_message(""))
            + MESSAGE_OVERHEAD_TOKENS;
        let context_budget = settings
            .budget
            .max_tokens_per_run
            .saturating_sub(max_out + overhead);
        let mut ctx = context::build(
            situation,
            settings.anonymize,
            context_budget,
            &self.config.context_limits,
        );
        if secrets
            .iter()
            .any(|s| !s.is_empty() && ctx.text.contains(s))
        {
            // A workload logged the provider's own secret: it must not reach the prompt.
            ctx.text = provider::redact(&ctx.text, &secrets);
            ctx.estimated_tokens = tokens::estimate(&ctx.text);
            ctx.fingerprint = hex::encode(Sha256::digest(ctx.text.as_bytes()));
        }
        out.omitted_lines = ctx.omitted_lines;
        let user = prompt::user_message(&ctx.text);
        let prompt_tokens = tokens::estimate(prompt::SYSTEM_PROMPT)
            + tokens::estimate(&user)
            + MESSAGE_OVERHEAD_TOKENS;
        out.prompt_tokens_estimate = prompt_tokens;

        let key = AnswerCache::key(&[
            cfg.kind.as_str(),
            &cfg.model,
            prompt::PROMPT_VERSION,
            if settings.anonymize { "anon" } else { "plain" },
            &ctx.fingerprint,
        ]);
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|mut c| c.get(&key, Instant::now()));
        if let Some(answer) = cached {
            if let Ok(parsed) =
                findings::parse(&answer, &self.config.finding_limits, &ctx.anonymizer)
            {
                out.cache_hit = true;
                out.findings = parsed.findings;
                out.dropped_findings = parsed.dropped;
                out.usage = usage.clone();
                return out;
            }
        }

        if let Err(e) = budget::check(&settings.budget, usage, price, 0, prompt_tokens, max_out) {
            tracing::info!(model = %cfg.model, reason = %e, "AI analysis skipped: budget");
            out.budget_exceeded = Some(e);
            out.usage = usage.clone();
            return out;
        }

        let provider = match self.provider_for(cfg).await {
            Ok(p) => p,
            Err(mut e) => {
                e.message = provider::redact_message(&e.message, &secrets);
                out.error = Some(e);
                out.usage = usage.clone();
                return out;
            }
        };
        let request = ChatRequest {
            system: prompt::SYSTEM_PROMPT.to_string(),
            user,
            max_output_tokens: cfg.max_output_tokens,
        };
        let first = match self
            .call(&provider, cfg, &request, &secrets, &mut out)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(e);
                out.usage = usage.clone();
                return out;
            }
        };
        charge(usage, price, &first, prompt_tokens);

        let first_error =
            match findings::parse(&first.text, &self.config.finding_limits, &ctx.anonymizer) {
                Ok(parsed) => {
                    self.remember(key, first.text);
                    out.findings = parsed.findings;
                    out.dropped_findings = parsed.dropped;
                    out.usage = usage.clone();
                    return out;
                }
                Err(e) => e,
            };

        // One repair request, if the run's token and money budget allows it.
        let repair = ChatRequest {
            system: prompt::SYSTEM_PROMPT.to_string(),
            user: prompt::repair_message(&first.text, &first_error.to_string()),
            max_output_tokens: cfg.max_output_tokens,
        };
        let repair_tokens = tokens::estimate(&repair.system)
            + tokens::estimate(&repair.user)
            + MESSAGE_OVERHEAD_TOKENS;
        let run_tokens = usage.input_tokens.saturating_add(usage.output_tokens);
        let mut last_text = first.text;
        let mut last_error = first_error;
        let mut repair_note = String::new();
        match budget::check(
            &settings.budget,
            usage,
            price,
            run_tokens,
            repair_tokens,
            max_out,
        ) {
            Ok(()) => match self.call(&provider, cfg, &repair, &secrets, &mut out).await {
                Ok(second) => {
                    charge(usage, price, &second, repair_tokens);
                    match findings::parse(
                        &second.text,
                        &self.config.finding_limits,
                        &ctx.anonymizer,
                    ) {
                        Ok(parsed) => {
                            self.remember(key, second.text);
                            out.findings = parsed.findings;
                            out.dropped_findings = parsed.dropped;
                            out.usage = usage.clone();
                            return out;
                        }
                        Err(e) => {
                            if !second.text.trim().is_empty() {
                                last_text = second.text;
                            }
                            last_error = e;
                        }
                    }
                }
                Err(e) => repair_note = format!("; repair request failed: {e}"),
            },
            Err(e) => repair_note = format!("; repair request skipped: {e}"),
        }
        out.summary =
            findings::fallback_summary(&last_text, &self.config.finding_limits, &ctx.anonymizer);
        out.error = Some(ProviderFailure {
            reason: FailureReason::InvalidResponse,
            message: provider::redact_message(&format!("{last_error}{repair_note}"), &secrets),
            attempts: out.calls,
            status: None,
        });
        out.usage = usage.clone();
        out
    }

    async fn call(
        &self,
        provider: &AnyProvider,
        cfg: &ProviderConfig,
        req: &ChatRequest,
        secrets: &[&str],
        out: &mut RunOutcome,
    ) -> Result<ChatResponse, ProviderFailure> {
        out.calls += 1;
        let started = Instant::now();
        let result = provider::complete(
            provider,
            req,
            &self.config.retry,
            cfg.timeout,
            cfg.effective_attempt_timeout(),
            secrets,
        )
        .await;
        match &result {
            Ok(r) => {
                tracing::debug!(model = %cfg.model, attempts = r.attempts, elapsed = ?started.elapsed(), "provider answered")
            }
            Err(e) => {
                tracing::warn!(model = %cfg.model, reason = e.reason.as_str(), attempts = e.attempts, error = %e.message, "provider call failed")
            }
        }
        result
    }

    fn remember(&self, key: String, answer: String) {
        if let Ok(mut c) = self.cache.lock() {
            c.put(key, answer, Instant::now());
        }
    }

    async fn provider_for(
        &self,
        cfg: &ProviderConfig,
    ) -> Result<Arc<AnyProvider>, ProviderFailure> {
        let mut providers = self.providers.lock().await;
        if let Some((_, p)) = providers.iter().find(|(c, _)| c == cfg) {
            return Ok(p.clone());
        }
        let p = Arc::new(AnyProvider::build(cfg).await?);
        if providers.len() >= MAX_PROVIDERS {
            providers.remove(0);
        }
        providers.push((cfg.clone(), p.clone()));
        Ok(p)
    }
}

/// Charges a call on the provider's reported tokens (the estimate when it reports none).
fn charge(usage: &mut Usage, price: budget::Price, resp: &ChatResponse, estimated_input: u64) {
    let input = resp.input_tokens.unwrap_or(estimated_input);
    let output = resp
        .output_tokens
        .unwrap_or_else(|| tokens::estimate(&resp.text));
    let cost = price.cost(input, output);
    // Saturating: the counts come from the provider's answer.
    usage.input_tokens = usage.input_tokens.saturating_add(input);
    usage.output_tokens = usage.output_tokens.saturating_add(output);
    usage.cost_usd += cost;
    usage.today_cost_usd += cost;
}
