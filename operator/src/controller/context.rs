//! State shared by the reconcilers: client, settings, event recorder, metrics, API
//! availability, per-object backoff, and the children's indexes and apply ledger
//! ([`super::cache::children`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;

use super::cache::children::{ChildIndexes, Ledger};
use super::events::{EventType, Publisher};
use super::metrics::Metrics;
use super::settings::Settings;

/// Which optional APIs the cluster serves (re-checked periodically by discovery).
#[derive(Debug, Default)]
pub struct OptionalApis {
    pod_monitor: AtomicBool,
    prometheus_rule: AtomicBool,
}

impl OptionalApis {
    /// Whether `monitoring.coreos.com/v1` PodMonitor exists.
    pub fn pod_monitor(&self) -> bool {
        self.pod_monitor.load(Ordering::Relaxed)
    }
    /// Whether `monitoring.coreos.com/v1` PrometheusRule exists.
    pub fn prometheus_rule(&self) -> bool {
        self.prometheus_rule.load(Ordering::Relaxed)
    }
    /// Records discovery results; returns whether anything changed.
    pub fn set(&self, pod_monitor: bool, prometheus_rule: bool) -> bool {
        let a = self.pod_monitor.swap(pod_monitor, Ordering::Relaxed) != pod_monitor;
        let b = self
            .prometheus_rule
            .swap(prometheus_rule, Ordering::Relaxed)
            != prometheus_rule;
        a || b
    }
}

/// Per-object exponential backoff: 5 s doubling per consecutive failure, capped at 5 min.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

impl Backoff {
    /// Records a failure of `key` and returns the delay before the next attempt.
    pub fn fail(&self, key: &str) -> Duration {
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = map.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// Forgets the failures of `key` (after a success or deletion).
    pub fn reset(&self, key: &str) {
        let mut map = match self.failures.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.remove(key);
    }
}

/// Delay after `failures` consecutive failures (`failures >= 1`).
pub fn delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_MAX)
}

/// Everything a reconciler needs.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Rendering settings from the flags.
    pub settings: Settings,
    /// The one shared Event publisher.
    pub events: Publisher,
    /// Metrics.
    pub metrics: Metrics,
    /// Optional APIs.
    pub apis: OptionalApis,
    /// Per-object backoff.
    pub backoff: Backoff,
    /// Indexes of the agent children, fed by their watches.
    pub children: ChildIndexes,
    /// Last applies of children (skips applies of children already in place).
    pub ledger: Ledger,
}

impl Context {
    /// Publishes an Event about `reference`; failures are logged, never fatal.
    pub async fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let note = super::status::truncate(&note, 1000);
        if let Err(e) = self
            .events
            .publish(reference, type_, reason, "Reconcile", note)
            .await
        {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_and_resets() {
        assert_eq!(delay(1), Duration::from_secs(5));
        assert_eq!(delay(2), Duration::from_secs(10));
        assert_eq!(delay(4), Duration::from_secs(40));
        assert_eq!(delay(10), BACKOFF_MAX);
        assert_eq!(delay(u32::MAX), BACKOFF_MAX);
        let b = Backoff::default();
        assert_eq!(b.fail("a"), Duration::from_secs(5));
        assert_eq!(b.fail("a"), Duration::from_secs(10));
        assert_eq!(b.fail("b"), Duration::from_secs(5));
        b.reset("a");
        assert_eq!(b.fail("a"), Duration::from_secs(5));
    }

    #[test]
    fn optional_apis_report_changes() {
        let a = OptionalApis::default();
        assert!(!a.set(false, false));
        assert!(a.set(true, false));
        assert!(a.pod_monitor() && !a.prometheus_rule());
        assert!(!a.set(true, false));
    }
}
