//! Node series for anomaly detection beyond the health series: disk, network and RDMA
//! throughput, RDMA congestion. Only what the agent report carries; a series whose inputs are
//! absent is not produced (no zeros that would look like a change).

use fabricwatch_proto::report::AgentReport;

use crate::derive::{port_rate, CounterSnapshot, NodeSample};

/// Congestion notification packets sent (notification point) and handled (reaction point),
/// mlx5 `hw_counters` (kernel `Documentation/networking/device_drivers/ethernet/mellanox/mlx5`
/// counters: `np_cnp_sent`, `rp_cnp_handled`).
pub const RDMA_CNP_COUNTERS: [&str; 2] = ["np_cnp_sent", "rp_cnp_handled"];
/// RoCE packets that arrived ECN-marked (`np_ecn_marked_roce_packets`).
pub const RDMA_ECN_COUNTERS: [&str; 1] = ["np_ecn_marked_roce_packets"];
/// Receive WQE shortage drops (`out_of_buffer`).
pub const RDMA_OUT_OF_BUFFER_COUNTERS: [&str; 1] = ["out_of_buffer"];

/// The extra series of one report: `(name, value)` for
/// `disk_used_percent` (100 − free % of the fullest filesystem), `network_bytes_per_second`
/// (Σ rx + tx over the netdevs), `rdma_bytes_per_second` (the sample's RDMA receive +
/// transmit bytes per second, see [`crate::derive::RDMA_DATA_COUNTERS`]),
/// `rdma_cnp_per_second`, `rdma_ecn_marked_per_second`, `rdma_out_of_buffer_per_second`
/// (Σ over ports). `prev` are the counters of the node's previous report (rates are the
/// agent's own when it sent them).
pub fn extra_series(
    report: &AgentReport,
    sample: &NodeSample,
    prev: Option<&CounterSnapshot>,
) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    if let Some((_, free)) = &sample.disk_free_percent {
        out.push(("disk_used_percent", 100.0 - free));
    }
    if let Some(h) = report.host.as_ref().filter(|h| !h.netdevs.is_empty()) {
        let sum: f64 = h
            .netdevs
            .iter()
            .map(|n| n.rx_bytes_per_second + n.tx_bytes_per_second)
            .sum();
        if sum.is_finite() {
            out.push(("network_bytes_per_second", sum));
        }
    }
    let at = report.collected_at;
    let sum_rates = |names: &[&str]| -> Option<f64> {
        let rates: Vec<f64> = report
            .rdma
            .iter()
            .flat_map(|p| names.iter().filter_map(move |n| port_rate(p, n, prev, at)))
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum())
    };
    let rdma_bytes = match (
        sample.rdma_receive_bytes_per_second,
        sample.rdma_transmit_bytes_per_second,
    ) {
        (None, None) => None,
        (rx, tx) => Some(rx.unwrap_or(0.0) + tx.unwrap_or(0.0)),
    };
    if let Some(v) = rdma_bytes {
        out.push(("rdma_bytes_per_second", v));
    }
    for (name, counters) in [
        ("rdma_cnp_per_second", &RDMA_CNP_COUNTERS[..]),
        ("rdma_ecn_marked_per_second", &RDMA_ECN_COUNTERS[..]),
        (
            "rdma_out_of_buffer_per_second",
            &RDMA_OUT_OF_BUFFER_COUNTERS[..],
        ),
    ] {
        if let Some(v) = sum_rates(counters) {
            out.push((name, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::derive;
    use chrono::{DateTime, Utc};
    use fabricwatch_proto::report::{FilesystemReport, HostReport, NetdevReport, RdmaPortReport};

    fn report(at: i64, data: u64, cnp: u64) -> AgentReport {
        AgentReport {
            collected_at: DateTime::<Utc>::from_timestamp(1_700_000_000 + at, 0).expect("valid"),
            host: Some(HostReport {
                filesystems: vec![FilesystemReport {
                    mountpoint: "/".into(),
                    size_bytes: 100,
                    avail_bytes: 30,
                    free_percent: 30.0,
                }],
                netdevs: vec![NetdevReport {
                    name: "eth0".into(),
                    rx_bytes_per_second: 100.0,
                    tx_bytes_per_second: 50.0,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            rdma: vec![RdmaPortReport {
                device: "mlx5_0".into(),
                port: 1,
                counters: [
                    ("port_xmit_data".to_string(), data),
                    ("np_cnp_sent".to_string(), cnp),
                ]
                .into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn disk_network_and_rdma_rates_from_counters() {
        let first = report(0, 1000, 5);
        let prev = CounterSnapshot::of(&first);
        let r = report(10, 3500, 25);
        let s = derive(&r, Some(&prev));
        let v: std::collections::BTreeMap<_, _> =
            extra_series(&r, &s, Some(&prev)).into_iter().collect();
        assert_eq!(v["disk_used_percent"], 70.0);
        assert_eq!(v["network_bytes_per_second"], 150.0);
        // (3500 − 1000) words of 4 octets over 10 s
        assert_eq!(v["rdma_bytes_per_second"], 1000.0);
        assert_eq!(v["rdma_cnp_per_second"], 2.0);
        assert!(
            !v.contains_key("rdma_ecn_marked_per_second"),
            "absent counter, no series"
        );
        // A counter reset (decrease) gives no rate rather than a huge negative one.
        let reset = report(20, 10, 1);
        let s = derive(&reset, Some(&CounterSnapshot::of(&r)));
        let v: std::collections::BTreeMap<_, _> =
            extra_series(&reset, &s, Some(&CounterSnapshot::of(&r)))
                .into_iter()
                .collect();
        assert!(!v.contains_key("rdma_bytes_per_second") && !v.contains_key("rdma_cnp_per_second"));
    }
}
