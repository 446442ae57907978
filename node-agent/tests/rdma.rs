//! rdma collector against the fixture trees and hand-made hostile trees.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, path::PathBuf};

use fabricwatch_agent::rdma::{
    parse::Transport, sysfs::RELIST_EVERY, FileErrorKind, RdmaCollector, ReadMode,
};
use fabricwatch_proto::agent_config::{RdmaConfig, RdmaMode};

fn fixture(tree: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(tree)
        .join("sys")
}

fn collect(root: &Path) -> fabricwatch_agent::rdma::RdmaOutcome {
    RdmaCollector::new(ReadMode::KeepOpen).collect(root, &RdmaConfig::default(), 0.0)
}

#[test]
fn roce_fixture_exact_values() {
    let out = collect(&fixture("roce"));
    assert!(out.fatal.is_none());
    assert_eq!(out.errors, vec![], "no bad files in the roce tree");
    assert_eq!(out.ports.len(), 2);
    let p = &out.ports[0];
    assert_eq!((p.sample.device.as_str(), p.sample.port), ("mlx5_0", 1));
    assert_eq!(p.sample.link_layer, "Ethernet");
    assert_eq!(p.sample.transport, Transport::Roce);
    assert_eq!(p.sample.state, Some((4, "ACTIVE".into())));
    assert_eq!(p.sample.phys_state, Some((5, "LinkUp".into())));
    assert_eq!(p.sample.rate_gbps, Some(100.0));
    assert_eq!(p.sample.netdev.as_deref(), Some("ens1f0"));
    assert_eq!(p.sample.info.fw_ver.as_deref(), Some("22.39.1002"));
    assert_eq!(p.sample.info.board_id.as_deref(), Some("MT_0000000223"));
    assert_eq!(
        p.sample.info.node_guid.as_deref(),
        Some("b859:9f03:00d4:6e40")
    );
    let c = &p.sample.counters;
    assert_eq!(c["symbol_error"], 12);
    assert_eq!(c["link_downed"], 3);
    assert_eq!(c["port_rcv_data"], 105_381_810_795);
    assert_eq!(p.rx_bytes(), Some(105_381_810_795 * 4));
    assert_eq!(p.tx_bytes(), Some(996_682_516_149 * 4));
    assert_eq!(c["port_xmit_wait"], 94_651_323_160);
    assert_eq!(c.len(), 21);
    let hw = &p.sample.hw_counters;
    assert_eq!(hw["np_cnp_sent"], 743);
    assert_eq!(hw["rp_cnp_handled"], 4632);
    assert_eq!(hw["np_ecn_marked_roce_packets"], 4514);
    assert_eq!(hw["out_of_sequence"], 3477);
    assert_eq!(hw["packet_seq_err"], 484);
    assert!(
        !hw.contains_key("lifespan"),
        "lifespan is a setting, not a counter"
    );
    assert_eq!(hw.len(), 28, "29 files minus lifespan");
    assert_eq!(p.supported_counters.len(), 49);

    let d = &out.ports[1];
    assert_eq!(d.sample.device, "mlx5_1");
    assert_eq!(d.sample.state, Some((1, "DOWN".into())));
    assert_eq!(d.sample.phys_state, Some((3, "Disabled".into())));
    assert_eq!(d.sample.netdev.as_deref(), Some("ens1f1"));
    assert_eq!(d.sample.hw_counters["packet_seq_err"], 4589);
    assert!(!d.is_active());

    let r = p.to_report();
    assert_eq!(r.counters["np_cnp_sent"], 743);
    assert_eq!(r.state, "ACTIVE");
    assert_eq!(r.netdev.as_deref(), Some("ens1f0"));
}

#[test]
fn procfs_fixture_ib_and_omnipath() {
    let out = collect(&fixture("procfs"));
    assert_eq!(out.errors, vec![]);
    let names: Vec<_> = out
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.sample.device, p.sample.port))
        .collect();
    assert_eq!(names, ["hfi1_0/1", "mlx4_0/1", "mlx4_0/2", "mlx5_0/1"]);
    let hfi = &out.ports[0];
    assert_eq!(hfi.sample.transport, Transport::OmniPath);
    assert_eq!(hfi.sample.counters["port_rcv_data"], 345_091_702_026);
    assert_eq!(hfi.sample.counters["port_xmit_packets"], 568_318_856);
    assert_eq!(hfi.sample.rate_gbps, Some(100.0));
    assert!(hfi.sample.hw_counters.is_empty());
    assert_eq!(hfi.to_report().link_layer, "");
    let mlx4 = &out.ports[1];
    assert_eq!(mlx4.sample.transport, Transport::Infiniband);
    assert_eq!(mlx4.sample.counters["port_xmit_wait"], 3599);
    assert_eq!(mlx4.sample.counters["port_xmit_data"], 26_509_113_295);
    assert_eq!(out.ports[2].sample.counters["port_xmit_wait"], 3846);
    // "InfiniBand\n\n" in the fixture still reads as InfiniBand.
    assert_eq!(out.ports[2].sample.link_layer, "InfiniBand");
    let mlx5 = &out.ports[3];
    assert_eq!(
        mlx5.sample.info.node_guid.as_deref(),
        Some("0a7f:bc12:45ef:d23b")
    );
    assert_eq!(mlx5.sample.counters["unicast_xmit_packets"], 10_907_922_116);
    assert_eq!(mlx5.sample.hw_counters["req_cqe_error"], 3481);
    assert_eq!(mlx5.sample.hw_counters["rx_read_requests"], 175_528_982);
    assert_eq!(mlx5.sample.rate_gbps, Some(25.0));
}

#[test]
fn node_exporter_fixture_iwarp_without_pma() {
    let out = collect(&fixture("node_exporter"));
    let i40 = out
        .ports
        .iter()
        .find(|p| p.sample.device == "i40iw0")
        .expect("i40iw0");
    assert_eq!(i40.sample.transport, Transport::Iwarp);
    assert!(
        i40.sample.counters.is_empty(),
        "every counter is N/A (no PMA)"
    );
    assert_eq!(i40.sample.errors.len(), 17);
    assert!(i40
        .sample
        .errors
        .iter()
        .all(|e| e.kind
            == FileErrorKind::Bad(fabricwatch_agent::rdma::parse::BadValue::NotAvailable)));
    assert_eq!(i40.sample.state, Some((4, "ACTIVE".into())));
    assert_eq!(i40.sample.rate_gbps, Some(10.0));
    assert_eq!(
        i40.to_report().link_layer,
        "",
        "iWARP has no link layer on the wire"
    );
    let mlx4 = out
        .ports
        .iter()
        .find(|p| p.sample.device == "mlx4_0")
        .expect("mlx4_0");
    assert_eq!(mlx4.sample.counters["port_xmit_wait"], 4_294_967_295);
    assert_eq!(mlx4.sample.counters["port_rcv_packets"], 6_825_908_347);
    assert_eq!(mlx4.sample.counters["port_xmit_discards"], 5);
    // Port 2 has only `counters_ext/` data: 4,631,917 words = 18,527,668 bytes, as
    // node_exporter reports; 93 multicast packets from `port_multicast_rcv_packets`.
    let mlx4_2 = out
        .ports
        .iter()
        .find(|p| p.sample.device == "mlx4_0" && p.sample.port == 2)
        .expect("mlx4_0 port 2");
    assert_eq!(mlx4_2.rx_bytes(), Some(18_527_668));
    assert_eq!(mlx4_2.tx_bytes(), Some(3_733_440 * 4));
    assert_eq!(mlx4_2.sample.counters["multicast_rcv_packets"], 93);
    assert_eq!(mlx4_2.sample.counters["unicast_xmit_packets"], 61_239);
    let id = &mlx4_2.sample.identity;
    assert_eq!(id.link_width.as_deref(), Some("4X"));
    assert_eq!(out.errors.len(), 17);
}

#[test]
fn mode_and_device_filters() {
    let root = fixture("procfs");
    let mut c = RdmaCollector::new(ReadMode::OpenEachTime);
    let cfg = RdmaConfig {
        devices: vec!["mlx5_0".into()],
        ..RdmaConfig::default()
    };
    assert_eq!(c.collect(&root, &cfg, 0.0).ports.len(), 1);
    let roce_only = RdmaConfig {
        mode: RdmaMode::Roce,
        ..RdmaConfig::default()
    };
    assert!(c.collect(&root, &roce_only, 0.0).ports.is_empty());
    let no_hw = RdmaConfig {
        hw_counters: false,
        ..RdmaConfig::default()
    };
    let out = c.collect(&fixture("roce"), &no_hw, 0.0);
    assert!(out.ports[0].sample.hw_counters.is_empty());
}

#[test]
fn missing_class_dir_is_no_devices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = collect(dir.path());
    assert!(out.ports.is_empty() && out.fatal.is_none() && out.errors.is_empty());
}

/// Builds a tree that looks like real sysfs: the class entry is a symlink into devices/.
fn hostile_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir
        .path()
        .join("devices/pci0000:00/0000:00:01.0/infiniband/mlx5_9");
    let port = real.join("ports/1");
    fs::create_dir_all(port.join("counters")).expect("mkdir");
    fs::create_dir_all(port.join("hw_counters")).expect("mkdir");
    fs::write(real.join("fw_ver"), "1.2.3\n").expect("write");
    fs::write(port.join("link_layer"), "InfiniBand\n").expect("write");
    fs::write(port.join("state"), "4: ACTIVE\n").expect("write");
    fs::write(port.join("phys_state"), "5: LinkUp\n").expect("write");
    fs::write(port.join("rate"), "weird\n").expect("write");
    fs::write(port.join("counters/symbol_error"), "7\n").expect("write");
    fs::write(port.join("counters/link_downed"), "1\n").expect("write");
    fs::write(port.join("counters/port_rcv_data"), "1000\n").expect("write");
    fs::write(port.join("counters/vl15_na"), "N/A (no PMA)\n").expect("write");
    fs::write(port.join("counters/empty"), "").expect("write");
    fs::write(port.join("counters/garbage"), "12 apples\n").expect("write");
    let locked = port.join("counters/locked");
    fs::write(&locked, "5\n").expect("write");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::write(port.join("hw_counters/out_of_sequence"), "9\n").expect("write");
    // A second device without counters/ at all.
    let bare = dir.path().join("devices/virtual/infiniband/rxe0/ports/1");
    fs::create_dir_all(&bare).expect("mkdir");
    fs::write(bare.join("state"), "1: DOWN\n").expect("write");
    fs::write(bare.join("phys_state"), "3: Disabled\n").expect("write");
    let class = dir.path().join("class/infiniband");
    fs::create_dir_all(&class).expect("mkdir");
    std::os::unix::fs::symlink(&real, class.join("mlx5_9")).expect("symlink");
    std::os::unix::fs::symlink(
        dir.path().join("devices/virtual/infiniband/rxe0"),
        class.join("rxe0"),
    )
    .expect("symlink");
    // A dangling entry must be ignored, not fail the walk.
    std::os::unix::fs::symlink(dir.path().join("nowhere"), class.join("gone0")).expect("symlink");
    dir
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn hostile_tree_skips_bad_files_and_keeps_the_rest() {
    let dir = hostile_tree();
    for mode in [ReadMode::KeepOpen, ReadMode::OpenEachTime] {
        let out = RdmaCollector::new(mode).collect(dir.path(), &RdmaConfig::default(), 0.0);
        assert!(out.fatal.is_none());
        assert_eq!(out.ports.len(), 2, "{:?}", out.ports);
        let p = &out.ports[0];
        assert_eq!(p.sample.device, "mlx5_9");
        assert_eq!(p.sample.info.fw_ver.as_deref(), Some("1.2.3"));
        assert_eq!(p.sample.counters["symbol_error"], 7);
        assert_eq!(p.sample.counters["link_downed"], 1);
        assert_eq!(p.sample.hw_counters["out_of_sequence"], 9);
        assert_eq!(p.sample.rate_gbps, None);
        let mut kinds: Vec<_> = p
            .sample
            .errors
            .iter()
            .map(|e| {
                (
                    e.path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("")
                        .to_string(),
                    e.kind.as_str(),
                )
            })
            .collect();
        kinds.sort();
        let mut expected = vec![
            ("empty".to_string(), "empty"),
            ("garbage".to_string(), "non_numeric"),
            ("rate".to_string(), "malformed"),
            ("vl15_na".to_string(), "not_available"),
        ];
        if !is_root() {
            // root ignores file modes; EACCES is only observable unprivileged.
            expected.push(("locked".to_string(), "permission_denied"));
            expected.sort();
        } else {
            assert_eq!(p.sample.counters["locked"], 5);
        }
        assert_eq!(kinds, expected);
        let bare = &out.ports[1];
        assert_eq!(bare.sample.device, "rxe0");
        assert!(bare.sample.counters.is_empty());
        assert!(bare.sample.errors.is_empty(), "{:?}", bare.sample.errors);
    }
}

#[test]
fn counters_going_backwards_and_flaps_over_collections() {
    let dir = hostile_tree();
    let port = dir
        .path()
        .join("devices/pci0000:00/0000:00:01.0/infiniband/mlx5_9/ports/1");
    let mut c = RdmaCollector::new(ReadMode::KeepOpen);
    let cfg = RdmaConfig::default();
    let first = c.collect(dir.path(), &cfg, 100.0);
    assert!(first.ports[0].rates.is_empty());
    fs::write(port.join("counters/port_rcv_data"), "3000\n").expect("write");
    fs::write(port.join("counters/symbol_error"), "2\n").expect("write");
    fs::write(port.join("counters/link_downed"), "2\n").expect("write");
    let second = c.collect(dir.path(), &cfg, 110.0);
    let p = &second.ports[0];
    assert_eq!(p.rates["port_rcv_data"], 200.0, "(3000-1000) words / 10 s");
    assert!(
        !p.rates.contains_key("symbol_error"),
        "went backwards: reset, no rate"
    );
    assert_eq!(p.resets, vec!["symbol_error".to_string()]);
    assert_eq!(p.link_flaps_total, 1);
    fs::write(port.join("state"), "1: DOWN\n").expect("write");
    let third = c.collect(dir.path(), &cfg, 120.0);
    assert_eq!(
        third.ports[0].link_flaps_total, 2,
        "ACTIVE -> DOWN without link_downed moving"
    );
    assert_eq!(third.ports[0].rates["symbol_error"], 0.0);
}

/// Directory listings are cached between collections: a counter that appears later is read
/// within `RELIST_EVERY` collections, and a device that goes away disappears at once,
/// without errors.
#[test]
fn cached_listings_see_new_counters_and_removed_devices() {
    let dir = hostile_tree();
    let port = dir
        .path()
        .join("devices/pci0000:00/0000:00:01.0/infiniband/mlx5_9/ports/1");
    let mut c = RdmaCollector::new(ReadMode::KeepOpen);
    let cfg = RdmaConfig::default();
    let first = c.collect(dir.path(), &cfg, 0.0);
    assert_eq!(first.ports.len(), 2);
    let errors_per_collection = first.errors.len();
    fs::write(port.join("counters/port_xmit_wait"), "77\n").expect("write");
    let mut seen_after = None;
    for i in 1..=RELIST_EVERY {
        let out = c.collect(dir.path(), &cfg, i as f64);
        assert_eq!(out.errors.len(), errors_per_collection, "{:?}", out.errors);
        if out.ports[0].sample.counters.get("port_xmit_wait") == Some(&77) {
            seen_after = Some(i);
            break;
        }
    }
    assert!(seen_after.is_some(), "new counter never read");
    fs::remove_file(dir.path().join("class/infiniband/rxe0")).expect("rm");
    let out = c.collect(dir.path(), &cfg, 100.0);
    let devices: Vec<&str> = out.ports.iter().map(|p| p.sample.device.as_str()).collect();
    assert_eq!(devices, ["mlx5_9"]);
    assert_eq!(out.errors.len(), errors_per_collection, "{:?}", out.errors);
}

/// LID, SM LID/SL, LMC, rate parts and GIDs with their types, on a port with every identity
/// file (formats of `drivers/infiniband/core/sysfs.c`), and the RoCE fixture's GID table.
#[test]
fn port_identity_is_read_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dir.path().join("class/infiniband/mlx5_0/ports/1");
    fs::create_dir_all(port.join("gids")).expect("mkdir");
    fs::create_dir_all(port.join("gid_attrs/types")).expect("mkdir");
    fs::create_dir_all(port.join("gid_attrs/ndevs")).expect("mkdir");
    for (name, text) in [
        ("state", "4: ACTIVE\n"),
        ("phys_state", "5: LinkUp\n"),
        ("link_layer", "InfiniBand\n"),
        ("rate", "200 Gb/sec (4X HDR)\n"),
        ("lid", "0x1a\n"),
        ("sm_lid", "0x1\n"),
        ("sm_sl", "0\n"),
        ("lid_mask_count", "2\n"),
        ("gids/0", "fe80:0000:0000:0000:b859:9f03:00d4:6e40\n"),
        ("gids/1", "0000:0000:0000:0000:0000:0000:0000:0000\n"),
        ("gids/2", "fe80:0000:0000:0000:b859:9f03:00d4:6e41\n"),
        ("gid_attrs/types/0", "IB/RoCE v1\n"),
    ] {
        fs::write(port.join(name), text).expect("write");
    }
    fs::write(
        dir.path().join("class/infiniband/mlx5_0/fw_ver"),
        "20.31.1014\n",
    )
    .expect("write");
    fs::write(
        dir.path().join("class/infiniband/mlx5_0/board_id"),
        "MT_0000000223\n",
    )
    .expect("write");
    let out = collect(dir.path());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let r = out.ports[0].to_report();
    let id = r.identity.expect("identity");
    assert_eq!(
        (id.lid, id.sm_lid, id.sm_sl, id.lmc),
        (Some(26), Some(1), Some(0), Some(2))
    );
    assert_eq!(
        (id.link_width.as_deref(), id.link_speed.as_deref()),
        (Some("4X"), Some("HDR"))
    );
    assert_eq!(id.fw_ver.as_deref(), Some("20.31.1014"));
    assert_eq!(id.board_id.as_deref(), Some("MT_0000000223"));
    // Reading stops at the first empty entry after 0.
    assert_eq!(id.gids.len(), 1);
    assert_eq!(id.gids[0].gid, "fe80:0000:0000:0000:b859:9f03:00d4:6e40");
    assert_eq!(id.gids[0].gid_type.as_deref(), Some("IB/RoCE v1"));
    assert_eq!(id.gids[0].netdev, None);
    let snap = fabricwatch_agent::snapshot::Snapshot {
        rdma_ports: out.ports,
        ..Default::default()
    };
    let text = fabricwatch_agent::metrics::render_text(&snap).text;
    assert!(
        text.contains(
            r#"lid="0x1a",sm_lid="0x1",sm_sl="0",lmc="2",link_width="4X",link_speed="HDR""#
        ),
        "{text}"
    );
    assert!(text.contains(r#"fabricwatch_rdma_port_gid_info{device="mlx5_0",port="1",index="0",gid="fe80:0000:0000:0000:b859:9f03:00d4:6e40",gid_type="IB/RoCE v1",netdev=""} 1"#), "{text}");

    // Malformed identity files are counted, the rest kept.
    fs::write(port.join("lid"), "26\n").expect("write");
    fs::write(port.join("sm_sl"), "x\n").expect("write");
    let out = collect(dir.path());
    let kinds: Vec<_> = out.errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [FileErrorKind::Malformed, FileErrorKind::Malformed]);
    let id = out.ports[0].to_report().identity.expect("identity");
    assert_eq!((id.lid, id.sm_lid, id.sm_sl), (None, Some(1), None));
}

#[test]
fn roce_fixture_gids_carry_types_and_netdevs() {
    let out = collect(&fixture("roce"));
    let id = out.ports[0].to_report().identity.expect("identity");
    let gids: Vec<_> = id
        .gids
        .iter()
        .map(|g| (g.index, g.gid_type.as_deref(), g.netdev.as_deref()))
        .collect();
    assert_eq!(
        gids,
        [
            (0, Some("IB/RoCE v1"), Some("ens1f0")),
            (1, Some("RoCE v2"), Some("ens1f0"))
        ]
    );
    assert_eq!(id.lid, None, "the fixture has no lid file");
}
