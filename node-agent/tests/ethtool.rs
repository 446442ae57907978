//! Ethernet driver statistics and DCQCN settings of RoCE netdevs: the real `ethtool -S`
//! outputs in `tests/fixtures/ethtool/`, a PFC variant built from the mlx5 counter
//! document's rules, the DCQCN tree in `tests/fixtures/sysfs/dcqcn/`, and hostile inputs.

use std::{
    fs,
    path::{Path, PathBuf},
};

use fabricwatch_agent::{
    ethtool::{EthtoolCollector, NetdevView},
    metrics,
    rdma::{RdmaCollector, ReadMode},
    snapshot::Snapshot,
};
use fabricwatch_proto::agent_config::{EthtoolConfig, RdmaConfig};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn ethtool_fixture(name: &str) -> String {
    fs::read_to_string(fixtures().join("ethtool").join(name)).expect("fixture")
}

/// `<dir>/<netdev>/{driver,statistics}` (node_exporter's ethtool fixture layout).
fn stats_dir(entries: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (netdev, driver, stats) in entries {
        let d = dir.path().join(netdev);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join("driver"), format!("driver: {driver}\nversion: 1\n")).expect("write");
        fs::write(d.join("statistics"), stats).expect("write");
    }
    dir
}

fn collector(dir: &Path) -> EthtoolCollector {
    EthtoolCollector::new(&EthtoolConfig {
        enabled: true,
        statistics_dir: Some(dir.display().to_string()),
    })
}

fn value(v: &NetdevView, key: &str) -> Option<u64> {
    v.to_report()?.counters.get(key).copied()
}

/// The 4.15 mlx5 output with PFC enabled on priority 3 instead of global pause, as
/// `en_stats.c` would list it: the `global` pause set replaced by the `prio3` set, plus the
/// stall and per-priority buffer groups.
fn mlx5_pfc_variant(pause_rx: u64, storm_errors: u64) -> String {
    let base = ethtool_fixture("mlx5_core-ethq-ubuntu1804.txt");
    let mut out = String::new();
    for line in base.lines() {
        if line.starts_with("rx_global_pause") || line.starts_with("tx_global_pause") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "rx_prio3_pause: {pause_rx}\nrx_prio3_pause_duration: 880000\ntx_prio3_pause: 17\ntx_prio3_pause_duration: 2100\nrx_prio3_pause_transition: 40\n\
         tx_pause_storm_warning_events: 2\ntx_pause_storm_error_events: {storm_errors}\n"
    ));
    for p in 0..8 {
        out.push_str(&format!(
            "rx_prio{p}_buf_discard: {}\nrx_prio{p}_cong_discard: 0\nrx_prio{p}_marked: {}\n",
            p * 10,
            p * 100
        ));
    }
    out
}

#[test]
fn real_mlx5_output_maps_the_port_counters_and_no_priority_pause() {
    let dir = stats_dir(&[(
        "ens1f0",
        "mlx5_core",
        &ethtool_fixture("mlx5_core-ethq-ubuntu1804.txt"),
    )]);
    let (views, errors) = collector(dir.path()).collect(Path::new("/nonexistent"), ["ens1f0"], 0.0);
    assert!(errors.is_empty(), "{errors:?}");
    let v = &views["ens1f0"];
    assert_eq!(v.driver, "mlx5_core");
    let r = v.to_report().expect("mlx5 is mapped");
    // Every mapped statistic of that file, with its exact value (all zero on that host).
    let keys: Vec<&str> = r.counters.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "buffer_passed_threshold",
            "discards_received",
            "discards_transmitted",
            "out_of_buffer",
            "pause_control_frames_received",
            "pause_control_frames_transmitted",
            "pause_duration_received_microseconds",
            "pause_duration_transmitted_microseconds",
            "pause_received",
            "pause_transitions_received",
            "pause_transmitted",
        ]
    );
    assert!(r.counters.values().all(|v| *v == 0));
    // No rx_prioN_pause: PFC is on no priority (global pause is).
    assert_eq!(r.pfc_enabled_priorities, Some(vec![]));
    // The per-priority byte/packet counters are not exported (traffic, not congestion).
    assert!(!v.statistics.iter().any(|s| s.statistic.contains("bytes")));
    assert_eq!(v.dcqcn, None, "no ecn/ tree: unknown");
}

#[test]
fn mlx5_with_pfc_on_priority_3_exports_it_by_priority_with_rates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |pause: u64, storms: u64| {
        let d = dir.path().join("enp1s0f0np0");
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join("driver"), "driver: mlx5_core\n").expect("write");
        fs::write(d.join("statistics"), mlx5_pfc_variant(pause, storms)).expect("write");
    };
    let sysfs = fixtures().join("sysfs/dcqcn/sys");
    let mut c = collector(dir.path());
    write(1000, 0);
    let (first, errors) = c.collect(&sysfs, ["enp1s0f0np0"], 10.0);
    assert!(errors.is_empty(), "{errors:?}");
    let v = &first["enp1s0f0np0"];
    assert_eq!(value(v, "pause_received/3"), Some(1000));
    assert_eq!(value(v, "pause_transmitted/3"), Some(17));
    assert_eq!(
        value(v, "pause_duration_received_microseconds/3"),
        Some(880_000)
    );
    assert_eq!(value(v, "pause_transitions_received/3"), Some(40));
    assert_eq!(value(v, "pause_received"), None, "no global pause set");
    assert_eq!(value(v, "pause_storm_warning_events"), Some(2));
    assert_eq!(value(v, "buffer_discards/7"), Some(70));
    assert_eq!(value(v, "ecn_marked/5"), Some(500));
    assert_eq!(value(v, "pause_received/2"), None);
    let r = v.to_report().expect("report");
    assert_eq!(r.pfc_enabled_priorities, Some(vec![3]));
    assert!(r.rates.is_empty(), "no rates on the first collection");
    // DCQCN from the fixture tree: every priority enabled on both sides, parameters read.
    let d = v.dcqcn.as_ref().expect("ecn/ present");
    assert_eq!(d.rp_enabled_priorities, (0..8).collect::<Vec<u8>>());
    assert_eq!(d.np_enabled_priorities, (0..8).collect::<Vec<u8>>());
    assert!(d.unknown_priorities.is_empty());
    assert_eq!(d.parameters.get("roce_rp/rpg_gd"), Some(&11));
    assert_eq!(d.parameters.get("roce_rp/dce_tcp_g"), Some(&1019));
    assert_eq!(d.parameters.get("roce_np/cnp_dscp"), Some(&48));
    assert_eq!(d.parameters.get("roce_np/cnp_802p_prio"), Some(&6));
    assert_eq!(d.parameters.len(), 19);
    assert_eq!(d.pfc_stall_prevention.as_deref(), Some("default"));

    write(6000, 1);
    let (second, _) = c.collect(&sysfs, ["enp1s0f0np0"], 20.0);
    let r = second["enp1s0f0np0"].to_report().expect("report");
    assert_eq!(r.rates.get("pause_received/3"), Some(&500.0));
    assert_eq!(r.rates.get("pause_storm_error_events"), Some(&0.1));
}

#[test]
fn bnxt_and_ice_outputs_map_their_pfc_counters() {
    let dir = stats_dir(&[
        ("bnxt0", "bnxt_en", &ethtool_fixture("bnxt_en-ethq.txt")),
        ("ice0", "ice", &ethtool_fixture("ice-ethq.txt")),
    ]);
    let (views, errors) =
        collector(dir.path()).collect(Path::new("/nonexistent"), ["bnxt0", "ice0"], 0.0);
    assert!(errors.is_empty(), "{errors:?}");
    let b = views["bnxt0"].to_report().expect("bnxt mapped");
    assert_eq!(b.counters.get("discards_received"), Some(&49_337));
    assert_eq!(b.counters.get("buffer_passed_threshold"), Some(&417));
    for p in 0..8 {
        for s in [
            "pause_received",
            "pause_transmitted",
            "pause_duration_received_microseconds",
            "pause_transitions_received",
        ] {
            assert_eq!(b.counters.get(&format!("{s}/{p}")), Some(&0), "{s}/{p}");
        }
    }
    assert_eq!(b.pfc_enabled_priorities, None, "bnxt lists every priority");
    let i = views["ice0"].to_report().expect("ice mapped");
    for p in 0..8 {
        assert_eq!(i.counters.get(&format!("pause_received/{p}")), Some(&0));
        assert_eq!(i.counters.get(&format!("pause_transmitted/{p}")), Some(&0));
    }
    assert_eq!(i.counters.get("pause_received"), Some(&0));
    assert_eq!(i.counters.get("discards_received"), Some(&0));
}

#[test]
fn unknown_drivers_export_nothing() {
    let dir = stats_dir(&[(
        "eth0",
        "e1000e",
        &ethtool_fixture("e1000e-node_exporter.txt"),
    )]);
    let (views, errors) = collector(dir.path()).collect(Path::new("/nonexistent"), ["eth0"], 0.0);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(views["eth0"].driver, "e1000e");
    assert!(views["eth0"].statistics.is_empty());
    assert_eq!(views["eth0"].to_report(), None);
}

#[test]
fn hostile_statistics_are_counted_errors_and_the_rest_is_exported() {
    let mut many = String::from("NIC statistics:\n");
    for i in 0..10_000 {
        many.push_str(&format!("     rx{i}_packets: {i}\n"));
    }
    many.push_str("     rx_out_of_buffer: 7\n");
    let odd = "     rx_prio3_pause\u{0}: 5\n     rx_prio3_pause: 9\n     rx prio4 pause: 1\n     \u{1b}[31mtx_prio3_pause: 2\n     rx_prio9_pause: 4\n     tx_discards_phy: not-a-number\n     rx_discards_phy: 18446744073709551616\n     rx_pause_ctrl_phy: -3\n     rx_ecn_mark: 12\n     tx_pause_storm_error_events";
    let dir = stats_dir(&[
        ("many0", "mlx5_core", &many),
        ("odd0", "mlx5_core", odd),
        ("empty0", "mlx5_core", ""),
    ]);
    // A driver file without a driver line, and a netdev that vanished.
    let nd = dir.path().join("nodriver0");
    fs::create_dir_all(&nd).expect("mkdir");
    fs::write(nd.join("driver"), "version: 1\n").expect("write");
    fs::write(nd.join("statistics"), "rx_out_of_buffer: 1\n").expect("write");
    let mut c = collector(dir.path());
    let (views, errors) = c.collect(
        Path::new("/nonexistent"),
        [
            "many0",
            "odd0",
            "empty0",
            "nodriver0",
            "gone0",
            "../etc",
            "many0",
        ],
        0.0,
    );
    assert_eq!(value(&views["many0"], "out_of_buffer"), Some(7));
    assert_eq!(views["many0"].statistics.len(), 1);
    let odd = &views["odd0"];
    assert_eq!(value(odd, "pause_received/3"), Some(9));
    assert_eq!(value(odd, "ecn_marked"), Some(12));
    assert_eq!(value(odd, "discards_transmitted"), None);
    assert_eq!(value(odd, "discards_received"), None);
    assert_eq!(odd.statistics.len(), 2, "{:?}", odd.statistics);
    assert!(views["empty0"].statistics.is_empty());
    let kinds: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.subject.as_str(), e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("odd0", "malformed"),
            ("nodriver0", "malformed"),
            ("gone0", "not_found"),
            ("../etc", "malformed"),
        ],
        "{errors:?}"
    );
    assert!(
        errors[0].message.starts_with("4 line(s)"),
        "{}",
        errors[0].message
    );
}

/// Through the rdma collector: the RoCE fixture's ports name `ens1f0`/`ens1f1`; the
/// statistics come from the directory, and both the report and `/metrics` carry them.
#[test]
fn roce_ports_carry_their_netdev_statistics_into_report_and_metrics() {
    let dir = stats_dir(&[
        ("ens1f0", "mlx5_core", &mlx5_pfc_variant(100, 0)),
        ("ens1f1", "e1000e", "rx_packets: 1\n"),
    ]);
    let config = RdmaConfig {
        ethtool: EthtoolConfig {
            enabled: true,
            statistics_dir: Some(dir.path().display().to_string()),
        },
        ..RdmaConfig::default()
    };
    let sysfs = fixtures().join("sysfs/roce/sys");
    let mut c = RdmaCollector::new(ReadMode::KeepOpen);
    let out = c.collect(&sysfs, &config, 0.0);
    assert!(out.ethtool_errors.is_empty(), "{:?}", out.ethtool_errors);
    let p0 = out.ports[0].to_report();
    assert_eq!(p0.netdev.as_deref(), Some("ens1f0"));
    let e = p0.ethtool.expect("mlx5 statistics");
    assert_eq!(e.counters.get("pause_received/3"), Some(&100));
    assert_eq!(p0.dcqcn, None);
    let p1 = out.ports[1].to_report();
    assert_eq!(p1.ethtool, None, "e1000e is not mapped");
    let snap = Snapshot {
        rdma_ports: out.ports,
        ..Snapshot::default()
    };
    let text = metrics::render_text(&snap).text;
    assert!(
        text.contains(r#"fabricwatch_rdma_ethtool_statistics_total{device="mlx5_0",port="1",netdev="ens1f0",driver="mlx5_core",statistic="rx_prio[p]_pause",signal="pause_received",priority="3"} 100"#),
        "{text}"
    );
    assert!(text.contains(r#"fabricwatch_rdma_roce_priority_info{device="mlx5_0",port="1",netdev="ens1f0",priority="3",pfc="enabled",dcqcn_reaction_point="unknown",dcqcn_notification_point="unknown"} 1"#), "{text}");
    assert!(text.contains(r#"fabricwatch_rdma_roce_priority_info{device="mlx5_0",port="1",netdev="ens1f0",priority="4",pfc="disabled","#));
    assert!(text.contains(r#"fabricwatch_rdma_roce_priority_info{device="mlx5_1",port="1",netdev="ens1f1",priority="0",pfc="unknown","#));
    assert!(
        !text.contains(r#"netdev="ens1f1",driver="#),
        "nothing for e1000e"
    );
}
