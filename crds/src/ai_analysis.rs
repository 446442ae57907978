//! `AIAnalysis`: an LLM that explains the state of MonitorTargets and AlertRules.

// Each `printcolumn(...)` repeats keys such as `type_ = "date"`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    check_duration, conditions_schema, Condition, CronSchedule, Duration, SecretKeyRef, SecretRef,
    Severity, Time,
};
use crate::notify::NotifySpec;
use crate::validation::Errors;

/// Annotation that requests a run now: set it to any new value (e.g. a timestamp) and
/// analytics runs the analysis once per distinct value.
pub const RUN_NOW_ANNOTATION: &str = "fabricwatch.io/run-now";
/// Most findings kept in `status.findings`.
pub const MAX_FINDINGS: usize = 10;

/// Asks an LLM to explain what the referenced MonitorTargets and AlertRules show, on alert,
/// on a schedule, on anomalies or on demand, within a budget. Findings land in status and
/// may be notified.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fabricwatch.io",
    version = "v1alpha1",
    kind = "AIAnalysis",
    plural = "aianalyses",
    singular = "aianalysis",
    shortname = "aia",
    category = "fabricwatch",
    namespaced,
    status = "AIAnalysisStatus",
    derive = "PartialEq",
    doc = "AIAnalysis asks an LLM (Bedrock, OpenAI-compatible or Ollama) to explain the state of MonitorTargets and AlertRules, within a token and cost budget.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Findings",
        type_ = "integer",
        json_path = ".status.findingCount",
        description = "Findings of the last run"
    ),
    printcolumn(
        name = "Top-Severity",
        type_ = "string",
        json_path = ".status.topSeverity",
        description = "Most severe finding of the last run"
    ),
    printcolumn(
        name = "Cost-Today",
        type_ = "number",
        json_path = ".status.usage.todayCostUsd",
        description = "Spend since 00:00 UTC, USD"
    ),
    printcolumn(name = "Last-Run", type_ = "date", json_path = ".status.lastRunTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AIAnalysisSpec {
    /// Objects whose state and history are analysed (same namespace).
    #[schemars(length(min = 1, max = 16))]
    pub target_refs: Vec<AnalysisTargetRef>,
    /// When to run. A run can also be requested with the annotation `fabricwatch.io/run-now`.
    #[serde(default)]
    pub trigger: Trigger,
    /// The LLM.
    pub provider: Provider,
    /// Spending limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Replace node names, IPs and host names in the prompt by stable pseudonyms (and map them
    /// back in the findings).
    #[serde(default = "default_true")]
    pub anonymize: bool,
    /// How much history goes into the prompt, e.g. `1h`.
    #[serde(default = "default_window")]
    pub window: Duration,
    /// Where to send findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
}

fn default_true() -> bool {
    true
}
fn default_window() -> Duration {
    Duration::new("1h")
}

/// Kind of an analysed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AnalysisTargetKind {
    /// A MonitorTarget: health, summary, problems, series.
    MonitorTarget,
    /// An AlertRule: its state and firing instances.
    AlertRule,
}

/// An analysed object in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTargetRef {
    /// Kind of the object.
    pub kind: AnalysisTargetKind,
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// When the analysis runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Run when a referenced AlertRule (or one whose `analysisRef` names this) starts firing.
    #[serde(default = "default_true")]
    pub on_alert: bool,
    /// Also run on this cron schedule (UTC), e.g. `0 */6 * * *`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// Run when analytics flags a new anomaly on a referenced MonitorTarget.
    #[serde(default)]
    pub on_anomaly: bool,
    /// Least time between two triggered runs (schedule and run-now are exempt).
    #[serde(default = "default_min_interval")]
    pub min_interval: Duration,
}

fn default_min_interval() -> Duration {
    Duration::new("10m")
}

impl Default for Trigger {
    fn default() -> Self {
        Self {
            on_alert: true,
            schedule: None,
            on_anomaly: false,
            min_interval: default_min_interval(),
        }
    }
}

/// LLM API flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// Amazon Bedrock Converse API.
    Bedrock,
    /// OpenAI-compatible `POST /v1/chat/completions`.
    Openai,
    /// Ollama through its OpenAI-compatible API: `POST {endpoint}/chat/completions`, with
    /// `endpoint` such as `http://ollama:11434/v1`.
    Ollama,
}

/// The LLM to call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// API flavour.
    #[serde(rename = "type")]
    pub type_: ProviderType,
    /// Model id, e.g. `anthropic.claude-3-5-sonnet-20240620-v1:0`, `gpt-4o-mini`, `llama3.1`.
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// AWS region (bedrock), e.g. `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Base URL; required for ollama, optional for openai (default `https://api.openai.com`)
    /// and bedrock (default: the regional endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Credentials. openai/ollama: a Secret key holding the API key (sent as a bearer token).
    /// bedrock: use `awsCredentialsSecretRef` instead, or neither for the default AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// bedrock only: a Secret with keys `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// optionally `AWS_SESSION_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_credentials_secret_ref: Option<SecretRef>,
    /// Most output tokens per call.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 64, max = 32768))]
    pub max_tokens: u32,
    /// Per-call timeout.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
}

fn default_max_tokens() -> u32 {
    1024
}
fn default_timeout() -> Duration {
    Duration::new("60s")
}

/// Spending limits. When exceeded the analysis stops running until the next UTC day and sets
/// the BudgetExceeded condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Most spend per UTC day, USD (needs `prices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub daily_usd: Option<f64>,
    /// Most input + output tokens per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 256))]
    pub max_tokens_per_run: Option<u32>,
    /// Token prices used to compute cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<Prices>,
}

/// Token prices in USD per 1,000 tokens (from the provider's price list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// USD per 1,000 input tokens.
    #[schemars(range(min = 0.0))]
    pub input_per1k_tokens: f64,
    /// USD per 1,000 output tokens.
    #[schemars(range(min = 0.0))]
    pub output_per1k_tokens: f64,
}

/// Phase of the analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Never run yet.
    Pending,
    /// A run is in progress.
    Running,
    /// The last run produced findings.
    Succeeded,
    /// The last run failed (see the ProviderError condition).
    Failed,
    /// Runs are paused until the budget resets.
    BudgetExceeded,
}

/// Observed state: the operator writes `observedGeneration` and the Accepted condition,
/// analytics everything else.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AIAnalysisStatus {
    /// The `metadata.generation` the operator last validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Accepted, Ready, BudgetExceeded, ProviderError (reasons Timeout, RateLimited,
    /// AuthFailed, InvalidResponse).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// When the last run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,
    /// Next scheduled run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<Time>,
    /// Findings of the last successful run, most severe first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub findings: Vec<Finding>,
    /// Number of findings of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_count: Option<i32>,
    /// Most severe finding of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_severity: Option<Severity>,
    /// Token and cost accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Model that answered the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// Prompt cache statistics (identical inputs are not sent twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStats>,
}

/// One finding of the LLM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Short title.
    #[schemars(length(max = 200))]
    pub title: String,
    /// What is going on.
    #[schemars(length(max = 2000))]
    pub summary: String,
    /// Observations supporting the finding (metric values, events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(max = 500)))]
    pub evidence: Vec<String>,
    /// Affected nodes, devices, links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 253)))]
    pub affected: Vec<String>,
    /// What to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub recommendation: Option<String>,
    /// The model's confidence, 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: Option<f64>,
}

/// Token and cost accounting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Input tokens of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    /// Output tokens of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    /// Cost of the last run, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Spend since 00:00 UTC, USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today_cost_usd: Option<f64>,
    /// The UTC date `todayCostUsd` belongs to, `YYYY-MM-DD`; a reader on a later day starts
    /// the daily spend from zero, so a restart neither resets nor carries over the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 10, max = 10),
        regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    )]
    pub day: Option<String>,
}

/// Prompt cache statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// Runs answered from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits: Option<i64>,
    /// Runs that called the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misses: Option<i64>,
}

impl AIAnalysisSpec {
    /// Checks what the schema cannot: cron and durations parse, provider fields fit the
    /// provider type, a daily budget has prices, channels are well-formed. References are
    /// checked by the controller.
    ///
    /// # Errors
    /// Every problem, each with its field path.
    pub fn validate(&self) -> Result<(), Errors> {
        let mut e = Errors::default();
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.target_refs.iter().enumerate() {
            if !seen.insert((r.kind as u8, r.name.as_str())) {
                e.push(
                    format!("spec.targetRefs[{i}]"),
                    format!("duplicate reference {:?}/{}", r.kind, r.name),
                );
            }
        }
        if let Some(s) = &self.trigger.schedule {
            if let Err(msg) = s.parse() {
                e.push(
                    "spec.trigger.schedule",
                    format!("invalid cron {:?}: {msg}", s.as_str()),
                );
            }
        }
        check_duration(
            &mut e,
            "spec.trigger.minInterval",
            &self.trigger.min_interval,
            std::time::Duration::ZERO,
        );
        let p = &self.provider;
        match p.type_ {
            ProviderType::Bedrock => {
                if p.region.is_none() && p.endpoint.is_none() {
                    e.push(
                        "spec.provider.region",
                        "required for bedrock (or set endpoint)",
                    );
                }
                if p.credentials_secret_ref.is_some() {
                    e.push(
                        "spec.provider.credentialsSecretRef",
                        "not used by bedrock: use awsCredentialsSecretRef",
                    );
                }
            }
            ProviderType::Ollama => {
                if p.endpoint.is_none() {
                    e.push(
                        "spec.provider.endpoint",
                        "required for ollama, e.g. http://ollama.ollama.svc:11434",
                    );
                }
            }
            ProviderType::Openai => {}
        }
        if p.type_ != ProviderType::Bedrock && p.aws_credentials_secret_ref.is_some() {
            e.push(
                "spec.provider.awsCredentialsSecretRef",
                "only used by bedrock: use credentialsSecretRef",
            );
        }
        check_duration(
            &mut e,
            "spec.provider.timeout",
            &p.timeout,
            std::time::Duration::from_secs(1),
        );
        if let Some(b) = &self.budget {
            if b.daily_usd.is_some() && b.prices.is_none() {
                e.push(
                    "spec.budget.prices",
                    "required with dailyUsd (cost is computed from token prices)",
                );
            }
            for (name, v) in [
                ("dailyUsd", b.daily_usd),
                (
                    "prices.inputPer1kTokens",
                    b.prices.as_ref().map(|p| p.input_per1k_tokens),
                ),
                (
                    "prices.outputPer1kTokens",
                    b.prices.as_ref().map(|p| p.output_per1k_tokens),
                ),
            ] {
                if let Some(v) = v {
                    if !v.is_finite() || v < 0.0 {
                        e.push(
                            format!("spec.budget.{name}"),
                            format!("must be >= 0, got {v}"),
                        );
                    }
                }
            }
        }
        check_duration(
            &mut e,
            "spec.window",
            &self.window,
            std::time::Duration::from_secs(60),
        );
        if let Some(n) = &self.notify {
            n.validate_into(&mut e, "spec.notify");
        }
        e.into_result()
    }

    /// Every Secret this analysis refers to, as `(field path, secret name)`.
    pub fn secret_refs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(r) = &self.provider.credentials_secret_ref {
            out.push(("spec.provider.credentialsSecretRef".into(), r.name.clone()));
        }
        if let Some(r) = &self.provider.aws_credentials_secret_ref {
            out.push((
                "spec.provider.awsCredentialsSecretRef".into(),
                r.name.clone(),
            ));
        }
        if let Some(n) = &self.notify {
            out.extend(n.secret_refs("spec.notify"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "targetRefs: [{kind: MonitorTarget, name: fabric}]\n";

    fn spec(extra: &str) -> AIAnalysisSpec {
        serde_yaml::from_str(&format!("{BASE}{extra}")).expect("spec parses")
    }

    #[test]
    fn defaults() {
        let s = spec("provider: {type: openai, model: gpt-4o-mini}");
        assert!(s.anonymize);
        assert!(s.trigger.on_alert);
        assert!(!s.trigger.on_anomaly);
        assert_eq!(s.window.as_str(), "1h");
        assert_eq!(s.provider.max_tokens, 1024);
        assert_eq!(s.provider.timeout.as_str(), "60s");
        s.validate().expect("valid");
    }

    #[test]
    fn validation_catalogue() {
        let cases = [
            (
                "provider: {type: bedrock, model: m}",
                "spec.provider.region: required for bedrock",
            ),
            (
                "provider: {type: bedrock, model: m, region: us-east-1, credentialsSecretRef: {name: a, key: b}}",
                "spec.provider.credentialsSecretRef: not used by bedrock",
            ),
            ("provider: {type: ollama, model: m}", "spec.provider.endpoint: required for ollama"),
            (
                "provider: {type: openai, model: m, awsCredentialsSecretRef: {name: a}}",
                "spec.provider.awsCredentialsSecretRef: only used by bedrock",
            ),
            (
                "provider: {type: openai, model: m, timeout: 100ms}",
                "spec.provider.timeout: must be at least 1s",
            ),
            (
                "provider: {type: openai, model: m}\ntrigger: {schedule: 'every day'}",
                "spec.trigger.schedule: invalid cron \"every day\"",
            ),
            (
                "provider: {type: openai, model: m}\nbudget: {dailyUsd: 5}",
                "spec.budget.prices: required with dailyUsd",
            ),
            (
                "provider: {type: openai, model: m}\nwindow: 10s",
                "spec.window: must be at least 60s",
            ),
            (
                "provider: {type: openai, model: m}\nnotify: {channels: [{name: x}]}",
                "spec.notify.channels[0]: set exactly one of",
            ),
        ];
        for (extra, want) in cases {
            let err = spec(extra).validate().expect_err(extra).to_string();
            assert!(err.contains(want), "{extra}\n got: {err}\nwant: {want}");
        }
        let dup: AIAnalysisSpec = serde_yaml::from_str(
            "targetRefs: [{kind: AlertRule, name: a}, {kind: AlertRule, name: a}]\nprovider: {type: openai, model: m}",
        )
        .expect("parse");
        assert!(dup
            .validate()
            .expect_err("dup")
            .to_string()
            .contains("spec.targetRefs[1]: duplicate reference AlertRule/a"));
    }

    #[test]
    fn secret_refs_are_listed_with_paths() {
        let s = spec("provider: {type: openai, model: m, credentialsSecretRef: {name: key, key: k}}\nnotify: {channels: [{name: s, slack: {webhookUrlSecretRef: {name: slack, key: url}}}]}");
        assert_eq!(
            s.secret_refs(),
            vec![
                (
                    "spec.provider.credentialsSecretRef".to_string(),
                    "key".to_string()
                ),
                (
                    "spec.notify.channels[0].slack.webhookUrlSecretRef".to_string(),
                    "slack".to_string()
                ),
            ]
        );
    }
}
