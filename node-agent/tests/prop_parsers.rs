//! Property tests of every reader of outside input in the agent: sysfs files of RDMA ports,
//! procfs files of the host, `/proc/net/route`, ICMP packets off the wire, `ethtool -S` text
//! and driver statistic names, the DCQCN files, interface names handed to `SIOCETHTOOL`,
//! DNS answers, HTTP answers, server certificates and `resolv.conf`. Whatever bytes
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

// ---------------------------------------------------------------------------------------
// Ethernet statistics: `ethtool -S` / `ethtool -i` text (directory source), the driver's
// statistic names (also what the kernel's ETHTOOL_GSTRINGS answers) and the DCQCN files.
// ---------------------------------------------------------------------------------------

use fabricwatch_agent::ethtool::{
    names::{classify, pfc_enabled_priorities, Driver},
    text::{parse_driver, parse_statistics},
    EthtoolCollector,
};
use fabricwatch_proto::agent_config::EthtoolConfig;

/// Statistic names as drivers write them (mapped ones of all three drivers, with priorities
/// in and out of 0–7) and names that only look like them.
fn statistic_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "rx_prio3_pause", "tx_prio0_pause", "rx_prio7_pause_duration", "tx_prio5_pause_transition",
            "rx_pause_ctrl_phy", "tx_pause_ctrl_phy", "rx_discards_phy", "tx_discards_phy",
            "rx_prio4_buf_discard", "rx_prio2_cong_discard", "rx_ecn_mark", "rx_buffer_passed_thres_phy",
            "tx_pause_storm_warning_events", "tx_pause_storm_error_events", "rx_out_of_buffer",
            "rx_pfc_ena_frames_pri3", "tx_pfc_ena_frames_pri1", "rx_pause_frames", "tx_pause_frames",
            "link_xoff_rx", "link_xon_tx", "priority_xoff_rx[3]", "priority_xon_tx[9]", "rx_dropped",
            "rx_prio8_pause", "rx_prio-1_pause", "rx_prio99999999999999999999_pause", "rx_prio_pause",
            "[0]: rx_ucast_packets", "rx_packets",
        ]).prop_map(str::to_string),
        2 => "(rx|tx)_prio[0-9]{0,3}_[a-z_]{0,16}",
        1 => "[a-z_.\\[\\]: 0-9]{0,24}",
        1 => "\\PC{0,12}",
    ]
}

/// A value as `ethtool -S` prints it, or something that is not one.
fn statistic_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<u64>().prop_map(|v| v.to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => "-?[0-9]{0,22}",
        1 => "\\PC{0,8}",
    ]
}

/// `ethtool -S` text: the header, `name: value` lines, garbage lines; sometimes huge.
fn statistics_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        6 => (statistic_name(), " {0,6}", statistic_value())
            .prop_map(|(n, pad, v)| format!("{pad}{n}: {v}")),
        1 => "\\PC{0,40}",
        1 => Just("NIC statistics:".to_string()),
        1 => Just("# comment".to_string()),
    ];
    prop_oneof![
        8 => proptest::collection::vec(line, 0..80).prop_map(|l| l.join("\n")),
        1 => (0usize..300_000).prop_map(|n| format!("rx_prio0_pause: {}", "9".repeat(n))),
        1 => (0usize..20_000).prop_map(|n| "rx_prio1_pause: 1\n".repeat(n)),
    ]
}

/// Distinct (signal, priority) pairs a netdev can export: 17 signals, port-wide or per
/// priority 0–7.
const MAX_EXPORTED_STATISTICS: usize = 17 * 9;

proptest! {
    #![proptest_config(config(256))]

    /// Every line is a statistic or a bad line, never both, never lost; bad lines are kept
    /// cut to 80 characters; a driver line gives a non-empty one-line name.
    #[test]
    fn ethtool_text_parsers_account_for_every_line(text in statistics_text()) {
        let (stats, bad) = parse_statistics(&text);
        prop_assert!(stats.len() + bad.len() <= text.lines().count());
        for (name, _) in &stats {
            prop_assert!(!name.is_empty() && name.trim() == name);
        }
        for b in &bad {
            prop_assert!(b.text.chars().count() <= 80 && b.line >= 1);
        }
        if let Some(d) = parse_driver(&text) {
            prop_assert!(!d.is_empty() && !d.contains('\n') && d.len() <= text.len());
        }
        for driver in [Driver::Mlx5, Driver::Bnxt, Driver::Ice] {
            for (name, _) in &stats {
                if let Some(m) = classify(driver, name) {
                    prop_assert!(m.priority.is_none_or(|p| p <= 7), "{name} → {:?}", m.priority);
                }
            }
            if let Some(p) = pfc_enabled_priorities(driver, stats.iter().map(|(n, _)| n.as_str())) {
                prop_assert!(p.len() <= 8 && p.iter().all(|p| *p <= 7), "{p:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The collector over a statistics directory and a DCQCN tree holding anything: no
    /// panic, at most one value per (signal, priority), finite non-negative rates, and
    /// bounded errors.
    #[test]
    fn ethtool_collector_survives_any_statistics_and_dcqcn_files(
        driver in prop_oneof![Just("driver: mlx5_core\n".to_string()), Just("driver: bnxt_en".to_string()),
                              Just("driver: ice\nversion: 1".to_string()), "\\PC{0,40}"],
        first in statistics_text(),
        second in statistics_text(),
        dcqcn in proptest::collection::vec((0usize..3, contents()), 0..6),
    ) {
        const NETDEV: &str = "enp1s0f0np0";
        let dir = tempfile::tempdir().expect("tempdir");
        let stats_dir = dir.path().join("stats");
        fs::create_dir_all(stats_dir.join(NETDEV)).expect("mkdir");
        fs::write(stats_dir.join(NETDEV).join("driver"), &driver).expect("write");
        let sys = dir.path().join("sys");
        copy_dir(&fixture("sysfs/dcqcn/sys"), &sys);
        let ecn = sys.join("class/net").join(NETDEV);
        for (i, data) in &dcqcn {
            let rel = ["ecn/roce_rp/enable/3", "ecn/roce_np/rpg_threshold", "settings/pfc_stall_prevention"][*i];
            fs::write(ecn.join(rel), data).expect("write");
        }
        let mut c = EthtoolCollector::new(&EthtoolConfig {
            statistics_dir: Some(stats_dir.display().to_string()),
            ..EthtoolConfig::default()
        });
        for (now, text) in [(0.0, &first), (10.0, &second)] {
            fs::write(stats_dir.join(NETDEV).join("statistics"), text).expect("write");
            // A netdev name that would leave the directory is refused, not followed.
            let (views, errors) = c.collect(&sys, [NETDEV, NETDEV, "..", "x/../y"], now);
            prop_assert!(views.len() <= 3, "{} views", views.len());
            let view = &views[NETDEV];
            prop_assert!(view.statistics.len() <= MAX_EXPORTED_STATISTICS);
            let keys: std::collections::BTreeSet<_> =
                view.statistics.iter().map(|s| (s.signal, s.priority)).collect();
            prop_assert_eq!(keys.len(), view.statistics.len(), "a statistic exported twice");
            prop_assert!(view.statistics.iter().all(|s| s.priority.is_none_or(|p| p <= 7)));
            for r in view.rates.values() {
                prop_assert!(r.is_finite() && *r >= 0.0, "rate {r}");
            }
            if let Some(d) = &view.dcqcn {
                prop_assert!(d.parameters.len() <= 2 * 64);
                prop_assert!(d.rp_enabled_priorities.len() <= 8 && d.unknown_priorities.len() <= 8);
            }
            prop_assert!(errors.len() <= 4 + 16 + 2 * 64 + 1, "{} errors", errors.len());
            for e in &errors {
                prop_assert!(e.message.len() <= 1024, "error message of {} bytes", e.message.len());
            }
        }
    }

    /// Interface names reach `SIOCETHTOOL` from sysfs links and the config: anything that is
    /// not a valid name is refused before the ioctl, and nothing panics.
    #[test]
    fn ethtool_ioctl_refuses_bad_interface_names(name in "\\PC{0,20}|[a-z0-9]{15,17}|lo|\u{0}eth0") {
        let Ok(sock) = fabricwatch_agent::ethtool::ioctl::EthtoolSocket::open() else {
            return Ok(());
        };
        let bad = name.is_empty() || name.len() >= 16 || name.contains('\0');
        for r in [sock.driver(&name).map(|_| ()), sock.statistics(&name).map(|_| ())] {
            if bad {
                prop_assert!(matches!(r, Err(fabricwatch_agent::ethtool::ioctl::StatsError::BadName)), "{name:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Endpoint probes: DNS answers, HTTP answers, certificates. Each probe talks to a server in
// this process that answers generated bytes; the probe runs through `probe_once`, the entry
// the probe tasks use, so the timeout and the report are the real ones.
// ---------------------------------------------------------------------------------------

use fabricwatch_agent::endpoint::{
    dns::MAX_ANSWERS, probe_once, tls::earliest_not_after, CachedTlsHandle,
};
use fabricwatch_proto::endpoint::{
    DnsProbe, DnsRecordType, EndpointConfig, EndpointReport, EndpointState, HttpProbe,
};

/// Longest `error` of an endpoint report: the report travels to analytics and into the
/// MonitorTarget's status, whatever a server answered.
const MAX_ENDPOINT_ERROR_BYTES: usize = 2048;

fn endpoint(name: &str) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        http: None,
        tcp: None,
        dns: None,
        timeout_seconds: 2.0,
        slow_seconds: 2.0,
        interval_seconds: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn check_report(r: &EndpointReport) -> Result<(), TestCaseError> {
    prop_assert!(
        r.answers.len() <= MAX_ANSWERS,
        "{} answers",
        r.answers.len()
    );
    for a in &r.answers {
        prop_assert!(
            a.chars().count() <= 256 + 1,
            "answer of {} chars",
            a.chars().count()
        );
    }
    if let Some(e) = &r.error {
        prop_assert!(
            e.len() <= MAX_ENDPOINT_ERROR_BYTES,
            "error of {} bytes: {}…",
            e.len(),
            &e[..200.min(e.len())]
        );
        prop_assert_eq!(r.state, EndpointState::Down);
    }
    prop_assert!(r.duration_seconds.is_finite() && r.duration_seconds < 10.0);
    Ok(())
}

/// One DNS resource record of the answer section, the owner a pointer to the question.
fn dns_record(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = vec![0xc0, 0x0c];
    r.extend_from_slice(&rtype.to_be_bytes());
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&300u32.to_be_bytes());
    r.extend_from_slice(&(rdata.len().min(u16::MAX as usize) as u16).to_be_bytes());
    r.extend_from_slice(rdata);
    r
}

/// How the fake resolver answers: `header_flags` (QR, TC, RCODE), records of the asked
/// type, and a final mangling step.
#[derive(Clone, Debug)]
enum DnsAnswer {
    /// Any bytes after the query's id.
    Garbage(Vec<u8>),
    /// A well-formed answer of `records` (type, data), mangled by `flips` (offset, xor) and
    /// cut to `cut` bytes when set.
    Records {
        flags: u16,
        records: Vec<(u16, Vec<u8>)>,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
        /// Answered over UDP with TC set and in full over TCP.
        truncated_udp: bool,
    },
}

fn rdata() -> impl Strategy<Value = (u16, Vec<u8>)> {
    prop_oneof![
        4 => any::<[u8; 4]>().prop_map(|a| (1u16, a.to_vec())),
        1 => any::<[u8; 16]>().prop_map(|a| (28u16, a.to_vec())),
        // TXT: character-strings of up to 255 bytes each, many of them.
        2 => proptest::collection::vec((0usize..256, any::<u8>()), 0..40).prop_map(|parts| {
            let mut d = Vec::new();
            for (n, b) in parts {
                d.push(n as u8);
                d.extend(std::iter::repeat_n(b.max(b'!'), n));
            }
            (16u16, d)
        }),
        // CNAME: labels (some longer than 63 bytes, unterminated names).
        1 => proptest::collection::vec("[a-z0-9-]{0,70}", 0..6).prop_map(|labels| {
            let mut d = Vec::new();
            for l in labels {
                d.push(l.len() as u8);
                d.extend_from_slice(l.as_bytes());
            }
            d.push(0);
            (5u16, d)
        }),
        1 => (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)),
    ]
}

/// `n` records of type `rtype` (1 A, 28 AAAA, 16 TXT of four 255-byte strings each).
fn many_records(rtype: u16, n: usize) -> Vec<(u16, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let data = match rtype {
                1 => (i as u32).to_be_bytes().to_vec(),
                28 => (i as u128).to_be_bytes().to_vec(),
                _ => (0..4)
                    .flat_map(|_| std::iter::once(255u8).chain([b'x'; 255]))
                    .collect(),
            };
            (rtype, data)
        })
        .collect()
}

fn dns_answer() -> impl Strategy<Value = DnsAnswer> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..700).prop_map(DnsAnswer::Garbage),
        4 => (
            prop_oneof![4 => Just(0x8180u16), 1 => Just(0x8183), 1 => Just(0x8182), 1 => Just(0x8385), 1 => any::<u16>()],
            prop_oneof![
                2 => proptest::collection::vec(rdata(), 0..24),
                // Many records: more than a report keeps, more than a UDP answer holds.
                1 => (proptest::sample::select(vec![1u16, 28, 16]), 0usize..3000)
                    .prop_map(|(t, n)| many_records(t, n.min(if t == 16 { 60 } else { 3000 }))),
            ],
            prop_oneof![3 => Just(Vec::new()), 1 => proptest::collection::vec((any::<usize>(), 1u8..=255), 1..3)],
            prop_oneof![3 => Just(None), 1 => any::<usize>().prop_map(Some)],
            any::<bool>(),
        ).prop_map(|(flags, records, flips, cut, truncated_udp)| DnsAnswer::Records { flags, records, flips, cut, truncated_udp }),
    ]
}

impl DnsAnswer {
    /// The answer to `query` (id and question copied), as sent over UDP or TCP.
    fn render(&self, query: &[u8], tcp: bool) -> Vec<u8> {
        let id = query.get(..2).unwrap_or(&[0, 0]);
        match self {
            DnsAnswer::Garbage(bytes) => [id, bytes].concat(),
            DnsAnswer::Records {
                flags,
                records,
                flips,
                cut,
                truncated_udp,
            } => {
                let mut flags = *flags;
                if *truncated_udp && !tcp {
                    flags |= 0x0200;
                }
                let question = query.get(12..).unwrap_or(&[]);
                let mut m = id.to_vec();
                m.extend_from_slice(&flags.to_be_bytes());
                m.extend_from_slice(&1u16.to_be_bytes());
                m.extend_from_slice(&(records.len().min(u16::MAX as usize) as u16).to_be_bytes());
                m.extend_from_slice(&[0, 0, 0, 0]);
                m.extend_from_slice(question);
                for (t, d) in records {
                    m.extend(dns_record(*t, d));
                }
                if !m.is_empty() {
                    for (at, x) in flips {
                        let i = at % m.len();
                        if i >= 2 {
                            m[i] ^= x;
                        }
                    }
                }
                if let Some(c) = cut {
                    m.truncate(c % (m.len() + 1));
                }
                m.truncate(u16::MAX as usize);
                m
            }
        }
    }
}

/// Serves `answer` on UDP and TCP at one port of 127.0.0.1 until the runtime ends.
async fn fake_resolver(answer: DnsAnswer) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().expect("addr");
    let a = answer.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&a.render(&buf[..n], false), from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let mut len = [0u8; 2];
            if s.read_exact(&mut len).await.is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if s.read_exact(&mut q).await.is_err() {
                continue;
            }
            let out = answer.render(&q, true);
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend(out);
            let _ = s.write_all(&framed).await;
        }
    });
    addr
}

/// What the fake HTTP server answers on every connection.
fn http_answer() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        4 => (100u16..600).prop_map(|c| format!("HTTP/1.1 {c} X\r\n")),
        1 => (0u16..1000).prop_map(|c| format!("HTTP/1.0 {c}\r\n")),
        1 => "\\PC{0,30}\r\n",
    ];
    let header = prop_oneof![
        3 => ("[A-Za-z-]{1,20}", "[ -~]{0,40}").prop_map(|(k, v)| format!("{k}: {v}\r\n")),
        1 => "[0-9-]{0,22}".prop_map(|n| format!("Content-Length: {n}\r\n")),
        1 => Just("Transfer-Encoding: chunked\r\n".to_string()),
        1 => (0usize..80_000).prop_map(|n| format!("X-Big: {}\r\n", "a".repeat(n))),
    ];
    // Where a redirect points: relative, this server, other schemes, URLs that do not parse,
    // very long ones.
    let location = prop_oneof![
        Just("/next".to_string()),
        Just("http://127.0.0.1:1/".to_string()),
        Just("ftp://x/".to_string()),
        Just("http://[::1".to_string()),
        Just("//".to_string()),
        "\\PC{0,60}",
        (0usize..60_000).prop_map(|n| format!("http://[{}", "9".repeat(n))),
        (0usize..60_000).prop_map(|n| format!("{}://x/", "a".repeat(n))),
    ];
    let body = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..256),
        1 => Just(b"ok".to_vec()),
        1 => "[0-9a-fA-F]{0,6}(;[a-z]{0,4})?\r\n\\PC{0,20}\r\n".prop_map(String::into_bytes),
        1 => (0usize..300_000).prop_map(|n| vec![b'o'; n]),
    ];
    let head = prop_oneof![
        3 => (status, proptest::collection::vec(header, 0..6)).prop_map(|(s, h)| s + &h.concat()),
        2 => (proptest::sample::select(vec![301u16, 302, 303, 307, 308]), location)
            .prop_map(|(c, l)| format!("HTTP/1.1 {c} Moved\r\nLocation: {l}\r\n")),
    ];
    prop_oneof![
        6 => (head, body).prop_map(|(h, b)| {
            let mut out = h.into_bytes();
            out.extend(b"\r\n");
            out.extend(b);
            out
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Serves `answer` to every connection on 127.0.0.1 (after reading the request head) until
/// the runtime ends.
async fn fake_http(answer: Vec<u8>) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&answer).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A valid certificate, made once.
fn certificate() -> &'static Vec<u8> {
    static CERT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let p = rcgen::CertificateParams::new(vec!["probes.test".to_string()]).expect("params");
        p.self_signed(&key).expect("cert").der().to_vec()
    })
}

proptest! {
    #![proptest_config(config(64))]

    /// Whatever a resolver answers (over UDP, or over TCP after a truncated UDP answer):
    /// no panic, the probe ends within its timeout, and the report keeps at most
    /// `MAX_ANSWERS` answers of bounded length and a bounded error.
    #[test]
    fn dns_probe_survives_any_answer(
        answer in dns_answer(),
        record_type in prop_oneof![3 => Just(DnsRecordType::A), 1 => Just(DnsRecordType::Aaaa),
                                   2 => Just(DnsRecordType::Txt), 1 => Just(DnsRecordType::Cname)],
        expected in proptest::collection::vec("[a-z0-9.]{1,20}", 0..3),
    ) {
        let rt = runtime();
        let report = rt.block_on(async {
            let addr = fake_resolver(answer).await;
            let mut cfg = endpoint("dns");
            cfg.dns = Some(DnsProbe {
                name: "probe.test".into(),
                record_type,
                expected_answers: expected,
                resolver: Some(addr.to_string()),
            });
            probe_once(&cfg, &mut CachedTlsHandle::default(), "/nonexistent").await
        });
        check_report(&report)?;
    }

    /// Whatever an HTTP server answers (heads over the limit, bad chunking, redirects to
    /// anything, bodies of any size): no panic, an end within the timeout, a bounded error.
    #[test]
    fn http_probe_survives_any_answer(answer in http_answer(), follow in prop_oneof![3 => Just(true), 1 => Just(false)], head in prop_oneof![3 => Just(false), 1 => Just(true)]) {
        let rt = runtime();
        let report = rt.block_on(async {
            let addr = fake_http(answer).await;
            let mut cfg = endpoint("http");
            cfg.http = Some(HttpProbe {
                url: format!("http://{addr}/health"),
                method: if head { fabricwatch_proto::endpoint::HttpMethod::Head } else { fabricwatch_proto::endpoint::HttpMethod::Get },
                body_match: Some("ok".into()),
                follow_redirects: follow,
                ..HttpProbe::default()
            });
            probe_once(&cfg, &mut CachedTlsHandle::default(), "/nonexistent").await
        });
        check_report(&report)?;
        if let Some(code) = report.status_code {
            prop_assert!((100..1000).contains(&code));
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A server's certificate chain: any bytes, or a real certificate with bytes flipped or
    /// cut; no panic, and a date only from certificates that parse.
    #[test]
    fn certificate_expiry_survives_any_der(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 0..4),
        cut in any::<usize>(),
    ) {
        use rustls::pki_types::CertificateDer;
        let mut mangled = certificate().clone();
        let len = mangled.len();
        for (at, x) in flips {
            mangled[at % len] ^= x;
        }
        mangled.truncate(cut % (len + 1));
        let _ = earliest_not_after([CertificateDer::from(mangled)].iter());
        let parses = x509_parser::parse_x509_certificate(&garbage).is_ok();
        if earliest_not_after([CertificateDer::from(garbage)].iter()).is_some() {
            prop_assert!(parses, "a date from bytes that are no certificate");
        }
    }

    /// `resolv.conf` holding anything: a resolver address or a clean error.
    #[test]
    fn resolv_conf_parser_never_panics(text in prop_oneof![
        proptest::collection::vec("(nameserver|search|options|#)[ \t]{0,3}[0-9a-f.:%\\[\\]a-z]{0,40}", 0..8).prop_map(|l| l.join("\n")),
        "\\PC{0,200}",
    ]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        fs::write(&path, &text).expect("write");
        match fabricwatch_agent::endpoint::dns::resolver_addr(None, &path.to_string_lossy()) {
            Ok(a) => prop_assert_eq!(a.port(), 53),
            Err(e) => prop_assert!(e.len() <= 256 + path.to_string_lossy().len()),
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Request headers from a mounted Secret (`headersDir`): at most 32 headers, and an
    /// error names the file but never quotes its value (a token).
    #[test]
    fn header_files_never_leak_their_values(files in proptest::collection::vec(
        ("[A-Za-z0-9_.-]{1,20}|\\PC{1,10}", prop_oneof![
            "SECRET-[A-Za-z0-9 ]{0,20}",
            "SECRET-[\u{0}-\u{1f}\u{7f}]{1,4}x",
            (0usize..10_000).prop_map(|n| format!("SECRET-{}", "v".repeat(n))),
        ]),
        0..40,
    )) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, value) in &files {
            if name.contains('/') || name == "." || name == ".." {
                continue;
            }
            let _ = fs::write(dir.path().join(name), value);
        }
        match fabricwatch_agent::endpoint::http::read_headers(&dir.path().to_string_lossy()) {
            Ok(h) => prop_assert!(h.len() <= fabricwatch_agent::endpoint::http::MAX_HEADER_FILES),
            Err(e) => {
                prop_assert!(!e.contains("SECRET-"), "a value in {e:?}");
                prop_assert!(e.len() <= 512);
            }
        }
    }
}
