//! The controller's Prometheus metrics (`fabricwatch_controller_*`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Metrics of the controller. Labels: `kind` (MonitorTarget, AlertRule, AIAnalysis, Central),
/// `result` (success, error, invalid), `category` ([`super::error::Error::category`]).
#[derive(Clone)]
pub struct Metrics {
    /// `fabricwatch_controller_reconciles_total{kind,result}`.
    pub reconciles: IntCounterVec,
    /// `fabricwatch_controller_reconcile_duration_seconds{kind}`.
    pub duration: HistogramVec,
    /// `fabricwatch_controller_reconcile_errors_total{kind,category}`.
    pub errors: IntCounterVec,
    /// `fabricwatch_controller_managed_objects{kind}`: objects of the kind in the cache.
    pub managed: IntGaugeVec,
    /// `fabricwatch_controller_status_writes_total{kind}`.
    pub status_writes: IntCounterVec,
    /// `fabricwatch_controller_child_applies_total{kind,result}`: server-side applies of
    /// children (`result="applied"`) and applies skipped because the child was already in
    /// place (`result="skipped"`, see [`super::cache::children`]).
    pub child_applies: IntCounterVec,
    /// `fabricwatch_controller_leader`: 1 while this replica holds the lease.
    pub leader: prometheus::IntGauge,
    /// `fabricwatch_controller_watch_errors_total{kind}`: failed lists and watches of the
    /// streams that trigger a kind's reconciles (the API server unreachable, 403, 410 Gone).
    /// While it rises, changes to that kind are not seen; nothing else says so.
    pub watch_errors: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    ///
    /// # Errors
    /// When a metric with the same name is already registered.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            reconciles: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_controller_reconciles_total",
                    "Reconciles by kind and result (success, error, invalid).",
                ),
                &["kind", "result"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "fabricwatch_controller_reconcile_duration_seconds",
                    "Duration of one reconcile, seconds.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["kind"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_controller_reconcile_errors_total",
                    "Failed reconciles by kind and error category.",
                ),
                &["kind", "category"],
            )?,
            managed: IntGaugeVec::new(
                Opts::new(
                    "fabricwatch_controller_managed_objects",
                    "Objects of each kind the controller manages.",
                ),
                &["kind"],
            )?,
            status_writes: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_controller_status_writes_total",
                    "Status writes by kind (only when status changed).",
                ),
                &["kind"],
            )?,
            child_applies: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_controller_child_applies_total",
                    "Server-side applies of children by child kind and result (applied, skipped).",
                ),
                &["kind", "result"],
            )?,
            leader: prometheus::IntGauge::new(
                "fabricwatch_controller_leader",
                "1 while this replica holds the leader lease.",
            )?,
            watch_errors: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_controller_watch_errors_total",
                    "Failed lists and watches of the streams that trigger a kind's reconciles.",
                ),
                &["kind"],
            )?,
        };
        registry.register(Box::new(m.reconciles.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.managed.clone()))?;
        registry.register(Box::new(m.status_writes.clone()))?;
        registry.register(Box::new(m.child_applies.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        registry.register(Box::new(m.watch_errors.clone()))?;
        Ok(m)
    }
}
