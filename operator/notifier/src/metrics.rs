//! Prometheus metrics of the notifier. Labels are bounded: `channel` is one of five kinds,
//! `result` one of four results, `outcome` one of four request outcomes.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::channel::ChannelKind;
use crate::outcome::DeliveryResult;

/// The notifier's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `fabricwatch_notifier_notifications_total{channel, result}`: alerts per channel by result.
    pub notifications: IntCounterVec,
    /// `fabricwatch_notifier_retries_total{channel}`: delivery attempts beyond the first.
    pub retries: IntCounterVec,
    /// `fabricwatch_notifier_queue_depth`: accepted requests not yet finished.
    pub queue_depth: IntGauge,
    /// `fabricwatch_notifier_delivery_duration_seconds{channel}`: one delivery, retries included.
    pub delivery_seconds: HistogramVec,
    /// `fabricwatch_notifier_requests_total{outcome}`: API requests (accepted, duplicate,
    /// rejected, unavailable).
    pub requests: IntCounterVec,
    /// `fabricwatch_notifier_store_errors_total`: failed saves of the outbox.
    pub store_errors: IntCounter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            notifications: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_notifier_notifications_total",
                    "Alerts handled per channel kind and result (Sent, Failed, Deduplicated, Suppressed).",
                ),
                &["channel", "result"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_notifier_retries_total",
                    "Delivery attempts beyond the first, per channel kind.",
                ),
                &["channel"],
            )?,
            queue_depth: IntGauge::new(
                "fabricwatch_notifier_queue_depth",
                "Accepted notification requests not yet delivered to all channels.",
            )?,
            delivery_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "fabricwatch_notifier_delivery_duration_seconds",
                    "Time to deliver one message to one channel, retries included.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
                &["channel"],
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "fabricwatch_notifier_requests_total",
                    "Notification API requests by outcome (accepted, duplicate, rejected, unavailable).",
                ),
                &["outcome"],
            )?,
            store_errors: IntCounter::new(
                "fabricwatch_notifier_store_errors_total",
                "Failed saves of the notification outbox.",
            )?,
        };
        registry.register(Box::new(m.notifications.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.delivery_seconds.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.store_errors.clone()))?;
        for k in ChannelKind::ALL {
            for r in DeliveryResult::ALL {
                m.notifications.with_label_values(&[k.as_str(), r.as_str()]);
            }
            m.retries.with_label_values(&[k.as_str()]);
        }
        for o in ["accepted", "duplicate", "rejected", "unavailable"] {
            m.requests.with_label_values(&[o]);
        }
        Ok(m)
    }

    /// Metrics registered in a private registry (tests).
    pub fn unregistered() -> Self {
        match Self::new(&Registry::new()) {
            Ok(m) => m,
            // A fresh registry has no names registered, so this cannot collide.
            Err(e) => unreachable!("fresh registry rejected metrics: {e}"),
        }
    }
}
