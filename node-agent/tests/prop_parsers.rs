//! Property tests of every reader of outside input in the agent: sysfs files of RDMA ports,
//! procfs files of the host, `/proc/net/route` and ICMP packets off the wire. Whatever bytes
//! the kernel (or a broken driver, or a hostile fixture) hands over, the agent must not panic,
//! and what it keeps must stay bounded by its own limits rather than by the input.
//!
//! Case counts: 64 per property by default (file-system cases write a tree each); set
//! `PROPTEST_CASES` for a longer run (BENCHMARKS.md lists the last long run).

use std::{fs, io::Cursor, path::Path};

use fabricwatch_agent::host::HostCollector;
use fabricwatch_agent::ping::gateway::parse_default_gateway;
use fabricwatch_agent::ping::icmp::{parse_echo_reply, SocketKind};
use fabricwatch_agent::rdma::parse::{parse_counter, parse_numbered_state, parse_rate_gbps};
use fabricwatch_agent::rdma::{RdmaCollector, ReadMode};
use fabricwatch_proto::agent_config::{HostConfig, RdmaConfig};
use proptest::prelude::*;

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Shrinking writes trees too; a failure is clear enough without a minimal case.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

/// File contents: mostly text that looks like sysfs/procfs (numbers, `N: NAME`, rates,
/// tables), sometimes arbitrary bytes, sometimes very long.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[0-9]{0,25}\n?".prop_map(String::into_bytes),
        2 => "-?[0-9]{1,20}(\\.[0-9]{0,5})?\n".prop_map(String::into_bytes),
        2 => "[0-9]{0,4}: ?[A-Za-z_ ]{0,20}\n?".prop_map(String::into_bytes),
        2 => "[0-9.eE+-]{0,12} (Gb/sec|Mb/sec|)( \\([0-9A-Za-z ]{0,12}\\))?\n?".prop_map(String::into_bytes),
        2 => "N/A|NaN|inf|-inf|18446744073709551616|99999999999999999999999|\u{0}|".prop_map(String::into_bytes),
        2 => "([a-z0-9_ ]{0,12}[ :\t]+[0-9 -]{0,60}\n){0,12}".prop_map(String::into_bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => (any::<u8>(), 0usize..200_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for e in fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        let ty = e.file_type().expect("file type");
        if ty.is_dir() {
            copy_dir(&e.path(), &to);
        } else if ty.is_symlink() {
            let target = fs::read_link(e.path()).expect("link");
            std::os::unix::fs::symlink(target, &to).expect("symlink");
        } else {
            fs::copy(e.path(), &to).expect("copy");
        }
    }
}

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Most bytes of a sysfs attribute (one page; `sysfs_emit`).
const SYSFS_PAGE: usize = 4096;

/// Files of one RoCE port and its device that the collector reads.
const RDMA_FILES: &[&str] = &[
    "class/infiniband/mlx5_0/ports/1/state",
    "class/infiniband/mlx5_0/ports/1/phys_state",
    "class/infiniband/mlx5_0/ports/1/rate",
    "class/infiniband/mlx5_0/ports/1/link_layer",
    "class/infiniband/mlx5_0/ports/1/counters/symbol_error",
    "class/infiniband/mlx5_0/ports/1/counters/port_rcv_data",
    "class/infiniband/mlx5_0/ports/1/counters/link_downed",
    "class/infiniband/mlx5_0/ports/1/hw_counters/np_cnp_sent",
    "class/infiniband/mlx5_0/ports/1/hw_counters/out_of_sequence",
    "class/infiniband/mlx5_0/fw_ver",
    "class/infiniband/mlx5_0/board_id",
    "class/infiniband/mlx5_0/node_guid",
    "class/infiniband/mlx5_0/hca_type",
];

/// Files of the host collector's proc root.
const PROC_FILES: &[&str] = &[
    "stat",
    "meminfo",
    "loadavg",
    "uptime",
    "diskstats",
    "mounts",
    "net/dev",
    "pressure/cpu",
    "pressure/memory",
    "pressure/io",
];

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn sysfs_value_parsers_never_panic(text in "\\PC{0,64}|[0-9: .A-Za-z/]{0,40}") {
        if let Ok(n) = parse_counter(&text) {
            // The same number: leading zeros and a `+` are accepted (found by a long run).
            let digits = text.trim().trim_start_matches('+').trim_start_matches('0');
            prop_assert_eq!(n.to_string(), if digits.is_empty() { "0" } else { digits });
        }
        if let Some((_, name)) = parse_numbered_state(&text) {
            prop_assert!(!name.is_empty() && name.len() <= text.len());
        }
        if let Some(rate) = parse_rate_gbps(&text) {
            prop_assert!(rate.is_finite() && rate >= 0.0);
        }
    }

    #[test]
    fn route_table_parser_never_panics(lines in proptest::collection::vec(
        "(eth0|ib0|lo|\\PC{0,8})\t[0-9A-Fa-f]{0,9}\t[0-9A-Fa-fx]{0,9}\t[0-9]{0,5}(\t[0-9]{0,4}){0,7}",
        0..20,
    ), garbage in proptest::collection::vec(any::<u8>(), 0..256)) {
        let table = format!("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n{}", lines.join("\n"));
        let _ = parse_default_gateway(Cursor::new(table.into_bytes()));
        let _ = parse_default_gateway(Cursor::new(garbage));
    }

    #[test]
    fn icmp_reply_parser_never_panics(packet in proptest::collection::vec(any::<u8>(), 0..128)) {
        for kind in [SocketKind::Datagram, SocketKind::Raw] {
            let _ = parse_echo_reply(&packet, kind);
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// A RoCE port whose files hold anything: no panic, at most the fixture's ports, and
    /// every kept string bounded by one sysfs page (the kernel's limit for an attribute, and
    /// the agent's read buffer), whatever the file's size.
    #[test]
    fn rdma_collector_survives_any_file_contents(
        files in proptest::collection::vec((0..RDMA_FILES.len(), contents()), 1..6),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("sys");
        copy_dir(&fixture("sysfs/roce/sys"), &root);
        for (i, data) in &files {
            let path = root.join(RDMA_FILES[*i]);
            // A symlink in the fixture (e.g. a netdev) is replaced, not written through.
            let _ = fs::remove_file(&path);
            fs::write(&path, data).expect("write");
        }
        let mut c = RdmaCollector::new(ReadMode::KeepOpen);
        for now in [0.0, 10.0] {
            let out = c.collect(&root, &RdmaConfig::default(), now);
            prop_assert!(out.fatal.is_none());
            prop_assert!(out.ports.len() <= 2, "{} ports", out.ports.len());
            for p in &out.ports {
                let s = &p.sample;
                for text in [Some(&s.link_layer), s.info.fw_ver.as_ref(), s.info.board_id.as_ref(),
                             s.info.node_guid.as_ref(), s.info.hca_type.as_ref()].into_iter().flatten() {
                    // Characters, not bytes: an invalid byte becomes one U+FFFD (3 bytes).
                    prop_assert!(text.chars().count() <= SYSFS_PAGE, "kept {} chars", text.chars().count());
                }
                for (_, name) in [&s.state, &s.phys_state].into_iter().flatten() {
                    prop_assert!(name.chars().count() <= SYSFS_PAGE);
                }
                for rate in p.rates.values() {
                    prop_assert!(rate.is_finite(), "rate {rate}");
                }
            }
            prop_assert!(out.errors.len() <= 64, "{} errors", out.errors.len());
            for e in &out.errors {
                prop_assert!(e.message.len() <= 1024, "error message of {} bytes", e.message.len());
            }
        }
    }

    /// procfs files holding anything: no panic, the report (when there is one) has finite
    /// percentages, and the device lists are bounded by the lines of their files.
    #[test]
    fn host_collector_survives_any_proc_contents(
        files in proptest::collection::vec((0..PROC_FILES.len(), contents()), 1..5),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_root = dir.path().join("proc");
        copy_dir(&fixture("proc"), &proc_root);
        let mut lines = std::collections::HashMap::new();
        for (i, data) in &files {
            let path = proc_root.join(PROC_FILES[*i]);
            fs::write(&path, data).expect("write");
            lines.insert(PROC_FILES[*i], data.split(|b| *b == b'\n').count());
        }
        let mut c = HostCollector::new(&proc_root);
        for now in [100.0, 110.0] {
            let out = c.collect(&HostConfig::default(), now);
            if let Some(r) = &out.report {
                for v in [r.cpu_usage_percent, r.memory_used_percent, r.swap_used_percent] {
                    prop_assert!(v.is_finite() && (0.0..=100.0).contains(&v), "percent {v}");
                }
                for n in &r.netdevs {
                    prop_assert!(n.rx_bytes_per_second.is_finite() && n.tx_bytes_per_second.is_finite());
                }
            }
            let netdev_lines = lines.get("net/dev").copied().unwrap_or(usize::MAX);
            prop_assert!(out.netdevs.len() <= netdev_lines, "{} netdevs", out.netdevs.len());
            let disk_lines = lines.get("diskstats").copied().unwrap_or(usize::MAX);
            prop_assert!(out.disks.len() <= disk_lines, "{} disks", out.disks.len());
            prop_assert!(out.errors.len() <= 32, "{} errors", out.errors.len());
        }
    }
}
