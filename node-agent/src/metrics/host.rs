//! Host metrics (`fabricwatch_host_*`): CPU, load, memory, swap, uptime, filesystems,
//! network devices, disks and PSI.

use crate::{exposition::Sink, snapshot::Snapshot};

/// The report's host section and the snapshot's disk and network device counters
/// (nothing without a host report).
pub(super) fn render(f: &mut impl Sink, s: &Snapshot) {
    let Some(h) = &s.report.host else {
        return;
    };
    f.gauge(
        "fabricwatch_host_cpu_usage_ratio",
        "CPU busy share over the interval, 0-1.",
        &[],
        h.cpu_usage_percent / 100.0,
    );
    f.gauge(
        "fabricwatch_host_cpus",
        "Online CPUs.",
        &[],
        f64::from(h.cpus),
    );
    f.gauge(
        "fabricwatch_host_load1",
        "1-minute load average.",
        &[],
        h.load1,
    );
    f.gauge(
        "fabricwatch_host_load5",
        "5-minute load average.",
        &[],
        h.load5,
    );
    f.gauge(
        "fabricwatch_host_load15",
        "15-minute load average.",
        &[],
        h.load15,
    );
    f.gauge(
        "fabricwatch_host_memory_total_bytes",
        "MemTotal.",
        &[],
        h.memory_total_bytes as f64,
    );
    f.gauge(
        "fabricwatch_host_memory_available_bytes",
        "MemAvailable.",
        &[],
        h.memory_available_bytes as f64,
    );
    f.gauge(
        "fabricwatch_host_memory_used_ratio",
        "(MemTotal - MemAvailable) / MemTotal.",
        &[],
        h.memory_used_percent / 100.0,
    );
    f.gauge(
        "fabricwatch_host_swap_used_ratio",
        "Swap in use, 0-1.",
        &[],
        h.swap_used_percent / 100.0,
    );
    if let Some(up) = h.uptime_seconds {
        f.gauge(
            "fabricwatch_host_uptime_seconds",
            "Seconds since boot.",
            &[],
            up,
        );
    }
    for fs in &h.filesystems {
        let l: &[(&str, &str)] = &[("mountpoint", &fs.mountpoint)];
        f.gauge(
            "fabricwatch_host_filesystem_size_bytes",
            "Filesystem size.",
            l,
            fs.size_bytes as f64,
        );
        f.gauge(
            "fabricwatch_host_filesystem_avail_bytes",
            "Bytes available to unprivileged users.",
            l,
            fs.avail_bytes as f64,
        );
        f.gauge(
            "fabricwatch_host_filesystem_free_ratio",
            "avail / size.",
            l,
            fs.free_percent / 100.0,
        );
    }
    for n in &s.netdevs {
        let l: &[(&str, &str)] = &[("device", &n.name)];
        for (name, v) in [
            ("fabricwatch_host_network_receive_bytes_total", n.rx_bytes),
            ("fabricwatch_host_network_transmit_bytes_total", n.tx_bytes),
            (
                "fabricwatch_host_network_receive_packets_total",
                n.rx_packets,
            ),
            (
                "fabricwatch_host_network_transmit_packets_total",
                n.tx_packets,
            ),
            ("fabricwatch_host_network_receive_errors_total", n.rx_errors),
            (
                "fabricwatch_host_network_transmit_errors_total",
                n.tx_errors,
            ),
            ("fabricwatch_host_network_receive_drops_total", n.rx_drops),
            ("fabricwatch_host_network_transmit_drops_total", n.tx_drops),
        ] {
            f.counter(name, "From /proc/net/dev.", l, v as f64);
        }
    }
    for d in &s.disks {
        let l: &[(&str, &str)] = &[("device", &d.device)];
        f.counter(
            "fabricwatch_host_disk_reads_completed_total",
            "Completed reads.",
            l,
            d.reads_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_writes_completed_total",
            "Completed writes.",
            l,
            d.writes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_read_bytes_total",
            "Bytes read.",
            l,
            d.read_bytes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_written_bytes_total",
            "Bytes written.",
            l,
            d.written_bytes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_io_time_seconds_total",
            "Seconds spent doing IO.",
            l,
            d.io_time_seconds_total,
        );
    }
    if let Some(p) = &h.pressure {
        for (res, kind, v) in [
            ("cpu", "some", p.cpu_some_avg10),
            ("memory", "some", p.memory_some_avg10),
            ("memory", "full", p.memory_full_avg10),
            ("io", "some", p.io_some_avg10),
            ("io", "full", p.io_full_avg10),
        ] {
            f.gauge(
                "fabricwatch_host_pressure_avg10_ratio",
                "PSI avg10: share of the last 10 s that tasks stalled on the resource, 0-1.",
                &[("resource", res), ("kind", kind)],
                v / 100.0,
            );
        }
    }
}
