//! The `fabricwatch.io/v1alpha1` API: [`MonitorTarget`], [`AlertRule`], [`AIAnalysis`].
//!
//! * [`monitor_target`], [`alert_rule`], [`ai_analysis`]: the kinds, their specs and status.
//! * [`endpoint`]: MonitorTarget endpoint probes (HTTP, TCP, DNS).
//! * [`notify`]: notification channels shared by AlertRule and AIAnalysis.
//! * [`common`]: references, durations, cron schedules, severities, the conditions schema.
//! * [`conditions`]: building `status.conditions` (transition times, message length,
//!   whether a write changes anything), shared by every status writer.
//! * [`validation`]: what the OpenAPI schema cannot check (`validate()` on each spec).
//! * [`crd`]: the CustomResourceDefinitions, made structural for Kubernetes 1.20+, and their YAML.
//! * [`cel`]: CEL rules (`x-kubernetes-validations`) mirroring `validate()`'s cross-field
//!   checks, for API servers that evaluate them.
//!
//! Status is shared by several writers through server-side apply, each with its own field
//! manager ([`FIELD_MANAGER_OPERATOR`], [`FIELD_MANAGER_ANALYTICS`], [`FIELD_MANAGER_NOTIFIER`]);
//! every status field is optional and skipped when unset so an apply patch carries only what
//! its writer owns.
//!
//! [`Health`] and [`Severity`] are `fabricwatch-proto`'s, re-exported here: the same types
//! travel on the wire and in the API.

#![warn(missing_docs)]

pub mod ai_analysis;
pub mod alert_rule;
pub mod cel;
pub mod common;
pub mod conditions;
pub mod crd;
pub mod endpoint;
pub mod monitor_target;
pub mod names;
pub mod notify;
pub mod validation;

pub use ai_analysis::{AIAnalysis, AIAnalysisSpec, AIAnalysisStatus};
pub use alert_rule::{AlertRule, AlertRuleSpec, AlertRuleStatus};
pub use common::{Condition, CronSchedule, Duration, Severity, Time};
pub use monitor_target::{Health, MonitorTarget, MonitorTargetSpec, MonitorTargetStatus};
pub use validation::{Errors, FieldError};

/// API group.
pub const GROUP: &str = "fabricwatch.io";
/// API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of the three kinds.
pub const API_VERSION: &str = "fabricwatch.io/v1alpha1";
/// Category listing all three kinds (`kubectl get fabricwatch`).
pub const CATEGORY: &str = "fabricwatch";

/// Field manager of the operator's controller (spec children, `observedGeneration`,
/// conditions Accepted and Ready, `status.nodes.desired`/`ready`).
pub const FIELD_MANAGER_OPERATOR: &str = "fabricwatch-operator";
/// Field manager of analytics (health, summaries, alert state, AI results).
pub const FIELD_MANAGER_ANALYTICS: &str = "fabricwatch-analytics";
/// Field manager of the notifier (AlertRule `status.notifications`).
pub const FIELD_MANAGER_NOTIFIER: &str = "fabricwatch-notifier";

/// Condition types used across the kinds.
pub mod condition_types {
    /// The spec is valid and its references resolve (operator).
    pub const ACCEPTED: &str = "Accepted";
    /// MonitorTarget: agents rolled out (operator). AlertRule/AIAnalysis: evaluated (analytics).
    pub const READY: &str = "Ready";
    /// MonitorTarget: every node within thresholds (analytics).
    pub const HEALTHY: &str = "Healthy";
    /// MonitorTarget: some node beyond a threshold or silent (analytics).
    pub const DEGRADED: &str = "Degraded";
    /// AIAnalysis: the daily budget is spent (analytics).
    pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";
    /// AIAnalysis: the last provider call failed (analytics); reasons Timeout, RateLimited,
    /// AuthFailed, InvalidResponse.
    pub const PROVIDER_ERROR: &str = "ProviderError";
    /// AIAnalysis: the provider answered the last reachability check, which costs no
    /// tokens (analytics); reasons Reachable or a failure reason (AuthFailed, ...).
    pub const PROVIDER_REACHABLE: &str = "ProviderReachable";
}
