//! LLM diagnosis for AIAnalysis, free of Kubernetes and of the CRD types.
//!
//! Analytics turns what it knows into a [`Situation`], resolves the AIAnalysis spec into
//! [`AnalysisSettings`] (credentials read from the referenced Secret), keeps the persisted
//! [`Usage`] ledger, and calls [`Analyzer::run`]; the [`RunOutcome`] maps onto the AIAnalysis
//! status (findings, usage, cache, `ProviderError` / `BudgetExceeded` conditions).
//!
//! Module map: [`situation`] (input), [`anonymize`] and [`context`] (what the model sees),
//! [`tokens`] (estimator), [`prompt`], [`provider`] (Bedrock Converse, OpenAI-compatible,
//! retries), [`findings`] (validation of the untrusted answer), [`budget`], [`cache`],
//! [`analyzer`] (the run); `testing` (feature `testing`) holds the wire-protocol stand-ins.

pub mod analyzer;
pub mod anonymize;
pub mod budget;
pub mod cache;
pub mod context;
pub mod findings;
pub mod prompt;
pub mod provider;
pub mod situation;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

pub use analyzer::{AnalysisSettings, Analyzer, AnalyzerConfig, RunOutcome};
pub use budget::{Budget, BudgetExceeded, ModelPrice, Price, Usage};
pub use cache::CacheStats;
pub use findings::{Finding, Severity};
pub use provider::{
    FailureReason, ProviderConfig, ProviderCredentials, ProviderFailure, ProviderKind, SecretString,
};
pub use situation::Situation;
