//! Congestion of RoCE ports as a signal of its own: DCQCN (CNPs, ECN marks), receive
//! buffer exhaustion and lossless-Ethernet flow control (PFC pauses, pause duration, pause
//! storms, discards), from one port of an agent report.
//!
//! Inputs are the agent's per-second rates: RDMA `hw_counters` under their kernel names
//! (`np_cnp_sent`, `rp_cnp_handled`, `np_ecn_marked_roce_packets`, `out_of_buffer`; mlx5,
//! `Documentation/ABI/testing/sysfs-class-infiniband` and the mlx5 counter document) and the
//! Ethernet driver statistics the agent maps to signals (`ethtool.rates`, keys
//! `<signal>` or `<signal>/<priority>`, see `fabricwatch_proto::report::EthtoolReport`).
//! Rates the agent did not send (first report, reset) give `None`, not 0.

use std::collections::BTreeMap;

use fabricwatch_crds::alert_rule::Metric;
use fabricwatch_proto::{agent_config::ThresholdsConfig, report::RdmaPortReport};
use serde::Serialize;

use crate::health::{grade, Direction, Finding, Health};

/// Microseconds per second over 100: a pause-duration rate in µs/s divided by this is the
/// percent of time paused.
const MICROSECONDS_PER_PERCENT: f64 = 1e4;

/// Congestion figures of one port over the last interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Congestion {
    /// CNPs sent as notification point (`np_cnp_sent`), per second.
    pub cnp_sent_per_second: Option<f64>,
    /// CNPs handled as reaction point (`rp_cnp_handled`), per second.
    pub cnp_handled_per_second: Option<f64>,
    /// ECN-marked RoCE packets received (`np_ecn_marked_roce_packets`), per second.
    pub ecn_marked_per_second: Option<f64>,
    /// Receive-WQE exhaustion drops (`out_of_buffer`, else the netdev's `rx_out_of_buffer`),
    /// per second.
    pub out_of_buffer_per_second: Option<f64>,
    /// Pause frames received plus sent on the busiest priority (or link-level pause), per
    /// second.
    pub pause_frames_per_second: Option<f64>,
    /// Share of the interval the port was paused or pausing on its busiest priority,
    /// percent (pause duration in µs per second / 10⁴).
    pub pause_percent: Option<f64>,
    /// The priority of [`Self::pause_frames_per_second`] / [`Self::pause_percent`]
    /// (`None`: link-level pause).
    pub pause_priority: Option<u8>,
    /// Packets dropped for buffers or congestion (`discards_received`, `buffer_discards`,
    /// `congestion_discards`, all priorities), per minute.
    pub discards_per_minute: Option<f64>,
    /// Pause-storm error events (mlx5 `tx_pause_storm_error_events`: pauses sent so long
    /// that the device stopped sending them), per minute.
    pub pause_storm_errors_per_minute: Option<f64>,
    /// Pause-storm warning events (`tx_pause_storm_warning_events`), per minute.
    pub pause_storm_warnings_per_minute: Option<f64>,
    /// Every non-zero congestion rate by name, per second (what the AI situation carries).
    pub per_second: BTreeMap<String, f64>,
}

fn rate(rates: &BTreeMap<String, f64>, key: &str) -> Option<f64> {
    rates
        .get(key)
        .copied()
        .filter(|r| r.is_finite() && *r >= 0.0)
}

fn sum(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    it.flatten().reduce(|a, b| a + b)
}

/// Splits an ethtool key into signal and priority (`pause_received/3` → (`pause_received`,
/// Some(3))). A priority that is not 0–7 makes the key unusable.
fn split(key: &str) -> Option<(&str, Option<u8>)> {
    match key.split_once('/') {
        None => Some((key, None)),
        Some((s, p)) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p < 8)
            .map(|p| (s, Some(p))),
    }
}

/// RDMA `hw_counters` exported to the AI situation by kernel name.
const HW_SIGNALS: &[&str] = &[
    "np_cnp_sent",
    "rp_cnp_handled",
    "rp_cnp_ignored",
    "np_ecn_marked_roce_packets",
    "out_of_buffer",
    "out_of_sequence",
    "packet_seq_err",
    "local_ack_timeout_err",
];

/// The congestion figures of `port`.
pub fn of_port(port: &RdmaPortReport) -> Congestion {
    let hw = &port.rates;
    let empty = BTreeMap::new();
    let eth = port.ethtool.as_ref().map_or(&empty, |e| &e.rates);
    // Per priority (None = link level): frames and pause-time rates.
    let mut frames: BTreeMap<Option<u8>, f64> = BTreeMap::new();
    let mut paused: BTreeMap<Option<u8>, f64> = BTreeMap::new();
    let mut discards = None;
    for (key, r) in eth {
        let Some((signal, prio)) = split(key) else {
            continue;
        };
        if !r.is_finite() || *r < 0.0 {
            continue;
        }
        match signal {
            "pause_received" | "pause_transmitted" => *frames.entry(prio).or_default() += r,
            "pause_duration_received_microseconds" | "pause_duration_transmitted_microseconds" => {
                let e = paused.entry(prio).or_default();
                *e = e.max(*r / MICROSECONDS_PER_PERCENT);
            }
            "discards_received" | "buffer_discards" | "congestion_discards" => {
                *discards.get_or_insert(0.0) += r * 60.0
            }
            _ => {}
        }
    }
    let busiest = |m: &BTreeMap<Option<u8>, f64>| {
        m.iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(p, v)| (*p, *v))
    };
    let pause_percent = busiest(&paused);
    let pause_frames = busiest(&frames);
    let mut per_second: BTreeMap<String, f64> = HW_SIGNALS
        .iter()
        .filter_map(|k| rate(hw, k).map(|r| (k.to_string(), r)))
        .collect();
    per_second.extend(
        eth.iter()
            .filter(|(k, _)| split(k).is_some())
            .map(|(k, r)| (k.clone(), *r)),
    );
    per_second.retain(|_, v| v.is_finite() && *v > 0.0);
    Congestion {
        cnp_sent_per_second: rate(hw, "np_cnp_sent"),
        cnp_handled_per_second: rate(hw, "rp_cnp_handled"),
        ecn_marked_per_second: rate(hw, "np_ecn_marked_roce_packets"),
        out_of_buffer_per_second: rate(hw, "out_of_buffer").or_else(|| rate(eth, "out_of_buffer")),
        pause_frames_per_second: pause_frames.map(|(_, v)| v),
        pause_percent: pause_percent.map(|(_, v)| v.min(100.0)),
        pause_priority: pause_percent.or(pause_frames).and_then(|(p, _)| p),
        discards_per_minute: discards,
        pause_storm_errors_per_minute: rate(eth, "pause_storm_error_events").map(|r| r * 60.0),
        pause_storm_warnings_per_minute: rate(eth, "pause_storm_warning_events").map(|r| r * 60.0),
        per_second,
    }
}

/// The AlertRule metrics of this module, per port.
pub const METRICS: &[Metric] = &[
    Metric::RdmaCnpSentPerSecond,
    Metric::RdmaCnpHandledPerSecond,
    Metric::RdmaEcnMarkedPerSecond,
    Metric::RdmaOutOfBufferPerSecond,
    Metric::RdmaPauseFramesPerSecond,
    Metric::RdmaPausePercent,
    Metric::RdmaDiscardsPerMinute,
    Metric::RdmaPauseStormEventsPerMinute,
];

/// The value of a congestion `metric` for one port; `None` for other metrics and for
/// values the port does not have.
pub fn metric_value(c: &Congestion, metric: Metric) -> Option<f64> {
    match metric {
        Metric::RdmaCnpSentPerSecond => c.cnp_sent_per_second,
        Metric::RdmaCnpHandledPerSecond => c.cnp_handled_per_second,
        Metric::RdmaEcnMarkedPerSecond => c.ecn_marked_per_second,
        Metric::RdmaOutOfBufferPerSecond => c.out_of_buffer_per_second,
        Metric::RdmaPauseFramesPerSecond => c.pause_frames_per_second,
        Metric::RdmaPausePercent => c.pause_percent,
        Metric::RdmaDiscardsPerMinute => c.discards_per_minute,
        Metric::RdmaPauseStormEventsPerMinute => sum([
            c.pause_storm_errors_per_minute,
            c.pause_storm_warnings_per_minute,
        ]
        .into_iter()),
        _ => None,
    }
}

fn prio_text(p: Option<u8>) -> String {
    p.map_or_else(
        || "link-level pause".to_string(),
        |p| format!("priority {p}"),
    )
}

/// Findings of one port: a pause storm error event is Critical and a warning event Warning
/// whatever the thresholds (the device itself declared the storm); pause time and discards
/// are graded against `rdmaPausePercent` and `rdmaDiscardsPerMinute`.
pub fn findings(
    device: &str,
    port: u32,
    netdev: Option<&str>,
    c: &Congestion,
    t: &ThresholdsConfig,
    out: &mut Vec<Finding>,
) {
    let comp = format!("rdma/{device}/{port}");
    let on = match netdev {
        Some(n) => format!("{device}/{port} ({n})"),
        None => format!("{device}/{port}"),
    };
    let storm = match (
        c.pause_storm_errors_per_minute,
        c.pause_storm_warnings_per_minute,
    ) {
        (Some(e), _) if e > 0.0 => Some((Health::Critical, e, "tx_pause_storm_error_events")),
        (_, Some(w)) if w > 0.0 => Some((Health::Warning, w, "tx_pause_storm_warning_events")),
        _ => None,
    };
    if let Some((severity, per_min, counter)) = storm {
        let frames = c
            .pause_frames_per_second
            .map(|f| format!(", {f:.0} pause frames/s"))
            .unwrap_or_default();
        out.push(Finding {
            component: format!("{comp}/pause-storm"),
            severity,
            message: format!(
                "pause storm on {on}, {}: {per_min:.1} {counter} per minute{frames}",
                prio_text(c.pause_priority)
            ),
        });
    }
    if let Some(p) = c.pause_percent {
        let h = grade(p, t.rdma_pause_percent, Direction::HigherIsWorse);
        if matches!(h, Health::Warning | Health::Critical) {
            let thr = if h == Health::Critical {
                t.rdma_pause_percent.critical
            } else {
                t.rdma_pause_percent.warning
            };
            out.push(Finding {
                component: format!("{comp}/pause"),
                severity: h,
                message: format!(
                    "{on} paused {p:.1}% of the time on {} (threshold {thr}%)",
                    prio_text(c.pause_priority)
                ),
            });
        }
    }
    if let Some(d) = c.discards_per_minute {
        let h = grade(d, t.rdma_discards_per_minute, Direction::HigherIsWorse);
        if matches!(h, Health::Warning | Health::Critical) {
            let thr = if h == Health::Critical {
                t.rdma_discards_per_minute.critical
            } else {
                t.rdma_discards_per_minute.warning
            };
            out.push(Finding {
                component: format!("{comp}/discards"),
                severity: h,
                message: format!(
                    "{d:.1} buffer/congestion discards per minute on {on} (threshold {thr})"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabricwatch_proto::report::EthtoolReport;

    fn port(eth: &[(&str, f64)], hw: &[(&str, f64)]) -> RdmaPortReport {
        RdmaPortReport {
            device: "mlx5_0".into(),
            port: 1,
            rates: hw.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ethtool: Some(EthtoolReport {
                driver: "mlx5_core".into(),
                rates: eth.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                ..EthtoolReport::default()
            }),
            ..RdmaPortReport::default()
        }
    }

    #[test]
    fn pause_figures_take_the_busiest_priority() {
        let c = of_port(&port(
            &[
                ("pause_received/3", 4000.0),
                ("pause_transmitted/3", 1000.0),
                ("pause_received/0", 10.0),
                ("pause_duration_received_microseconds/3", 250_000.0),
                ("pause_duration_transmitted_microseconds/3", 50_000.0),
                ("buffer_discards/3", 0.5),
                ("pause_storm_error_events", 0.1),
                ("pause_received/9", 1e9),
                ("pause_received/x", 1e9),
            ],
            &[("np_cnp_sent", 120.0), ("out_of_buffer", 0.0)],
        ));
        assert_eq!(c.pause_frames_per_second, Some(5000.0));
        assert_eq!(c.pause_percent, Some(25.0));
        assert_eq!(c.pause_priority, Some(3));
        assert_eq!(c.discards_per_minute, Some(30.0));
        assert_eq!(c.pause_storm_errors_per_minute, Some(6.0));
        assert_eq!(c.cnp_sent_per_second, Some(120.0));
        assert_eq!(c.out_of_buffer_per_second, Some(0.0));
        assert_eq!(c.per_second.get("np_cnp_sent"), Some(&120.0));
        assert!(
            !c.per_second.contains_key("out_of_buffer"),
            "zero rates left out"
        );
        assert!(!c.per_second.contains_key("pause_received/9"));
        assert_eq!(
            metric_value(&c, Metric::RdmaPauseStormEventsPerMinute),
            Some(6.0)
        );
    }

    #[test]
    fn a_pause_storm_is_critical_and_names_port_and_priority() {
        let c = of_port(&port(
            &[
                ("pause_transmitted/3", 9000.0),
                ("pause_storm_error_events", 1.0 / 60.0),
            ],
            &[],
        ));
        let mut out = Vec::new();
        findings(
            "mlx5_0",
            1,
            Some("ens1f0"),
            &c,
            &ThresholdsConfig::default(),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].severity, Health::Critical);
        assert_eq!(out[0].component, "rdma/mlx5_0/1/pause-storm");
        assert_eq!(
            out[0].message,
            "pause storm on mlx5_0/1 (ens1f0), priority 3: 1.0 tx_pause_storm_error_events per minute, 9000 pause frames/s"
        );
    }

    #[test]
    fn no_rates_means_no_values_and_no_findings() {
        let c = of_port(&RdmaPortReport::default());
        assert_eq!(c, Congestion::default());
        let mut out = Vec::new();
        findings("d", 1, None, &c, &ThresholdsConfig::default(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn pause_time_and_discards_are_graded() {
        let c = of_port(&port(
            &[
                ("pause_duration_received_microseconds", 600_000.0),
                ("discards_received", 1.0),
            ],
            &[],
        ));
        let mut out = Vec::new();
        findings("d", 1, None, &c, &ThresholdsConfig::default(), &mut out);
        let sev: Vec<_> = out
            .iter()
            .map(|f| (f.component.as_str(), f.severity))
            .collect();
        assert_eq!(
            sev,
            [
                ("rdma/d/1/pause", Health::Critical),
                ("rdma/d/1/discards", Health::Critical)
            ]
        );
        assert!(
            out[0].message.contains("link-level pause"),
            "{}",
            out[0].message
        );
    }
}
