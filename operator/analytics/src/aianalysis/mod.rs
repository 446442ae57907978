//! AIAnalysis: LLM diagnosis of MonitorTargets and AlertRules, run inside analytics.
//!
//! | module | what | IO |
//! | --- | --- | --- |
//! | [`debounce`] | per-analysis trigger state: coalescing, `minInterval`, cron next run | pure |
//! | [`situation`] | fleet node views + firing rules + Events → `fabricwatch_ai::Situation` | pure |
//! | [`settings`] | spec → `AnalysisSettings`; which Secret keys the provider needs | pure |
//! | [`status`] | `RunOutcome` → status, ledger read-back, findings notification | pure |
//! | [`execute`](mod@execute) | one run without Kubernetes (used by the runner and the tests) | LLM |
//! | [`kube_events`] | Events of the affected nodes and pods (field selectors, bounded) | kube |
//! | [`metrics`] | `fabricwatch_analytics_ai_*` | — |
//! | [`select`] | which analyses act (`Accepted`) and which ones a trigger reaches | pure |
//! | [`kube_calls`] | provider Secret read, status apply (`status_patch`), run-now annotation clear | kube |
//! | [`runner`] | the AIAnalysis reflector, the trigger loop, Events, notify | kube |

pub mod debounce;
pub mod execute;
pub mod kube_calls;
pub mod kube_events;
pub mod metrics;
pub mod runner;
pub mod select;
pub mod settings;
pub mod situation;
pub mod status;

pub use execute::{execute, Executed};
pub use runner::{start, RunnerConfig, RunnerHandle};
