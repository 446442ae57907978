//! Ping metrics (`fabricwatch_ping_*`): per-peer RTT statistics, jitter, loss and probe
//! totals, and which timestamps the ICMP RTTs used.

use crate::{exposition::Sink, snapshot::Snapshot};

/// Timestamp sources (once the ICMP socket is open), then every peer of the report.
pub(super) fn render(f: &mut impl Sink, s: &Snapshot) {
    if let Some(t) = &s.icmp_timestamps {
        for (direction, source, n) in [
            ("transmit", "kernel", t.tx_kernel),
            ("transmit", "user", t.tx_user),
            ("receive", "kernel", t.rx_kernel),
            ("receive", "user", t.rx_user),
        ] {
            f.counter(
                "fabricwatch_ping_rtt_timestamps_total",
                "ICMP replies whose RTT used a kernel or a user-space timestamp at its transmit or receive end (kernel: SO_TIMESTAMPING / SO_TIMESTAMPNS).",
                &[("direction", direction), ("source", source)],
                n as f64,
            );
        }
        f.counter(
            "fabricwatch_ping_icmp_errors_total",
            "ICMP probes ended by an ICMP error (destination unreachable, TTL exceeded, ...) since start.",
            &[],
            t.icmp_errors as f64,
        );
    }
    for p in &s.report.ping {
        let ext = if p.external { "true" } else { "false" };
        let l: &[(&str, &str)] = &[("peer", &p.peer), ("external", ext)];
        for (stat, v) in [
            ("min", p.rtt_min_seconds),
            ("avg", p.rtt_avg_seconds),
            ("max", p.rtt_max_seconds),
            ("p50", p.rtt_p50_seconds),
            ("p99", p.rtt_p99_seconds),
        ] {
            if let Some(v) = v {
                f.gauge(
                    "fabricwatch_ping_rtt_seconds",
                    "Round-trip time over the last interval by statistic (min, avg, max, p50, p99).",
                    &[("peer", &p.peer), ("external", ext), ("stat", stat)],
                    v,
                );
            }
        }
        if let Some(j) = p.jitter_seconds {
            f.gauge(
                "fabricwatch_ping_jitter_seconds",
                "RFC 3550 interarrival jitter of the RTT.",
                l,
                j,
            );
        }
        f.gauge(
            "fabricwatch_ping_loss_ratio",
            "Share of probes lost in the last interval, 0-1.",
            l,
            p.loss_percent / 100.0,
        );
        f.gauge(
            "fabricwatch_ping_up",
            "1 when at least one probe was answered in the last interval.",
            l,
            if p.received > 0 { 1.0 } else { 0.0 },
        );
        if let Some(t) = s.ping_totals.get(&p.peer) {
            f.counter(
                "fabricwatch_ping_probes_sent_total",
                "Probes sent since start.",
                l,
                t.sent as f64,
            );
            f.counter(
                "fabricwatch_ping_probes_received_total",
                "Replies received in time since start.",
                l,
                t.received as f64,
            );
        }
    }
}
