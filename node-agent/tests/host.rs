//! host collector on a fixture proc tree and on the real /proc.

use std::{fs, path::Path};

use fabricwatch_agent::host::HostCollector;
use fabricwatch_proto::agent_config::HostConfig;

#[test]
fn fixture_proc_exact_values_and_rates() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    let dir = tempfile::tempdir().expect("tempdir");
    let proc_root = dir.path().join("proc");
    copy_dir(&src, &proc_root);
    let mut c = HostCollector::new(&proc_root);
    let out = c.collect(&HostConfig::default(), 100.0);
    let r = out
        .report
        .clone()
        .unwrap_or_else(|| panic!("{:?}", out.errors));
    // busy = 1000+500 = 1500, total = 1500 + 8000 + 500 = 10000 since boot
    assert!(
        (r.cpu_usage_percent - 15.0).abs() < 1e-9,
        "{}",
        r.cpu_usage_percent
    );
    assert_eq!(r.cpus, 2);
    assert_eq!((r.load1, r.load5, r.load15), (0.5, 1.25, 2.0));
    assert_eq!(r.memory_total_bytes, 16_000_000 * 1024);
    assert_eq!(r.memory_available_bytes, 4_000_000 * 1024);
    assert!((r.memory_used_percent - 75.0).abs() < 1e-9);
    assert!((r.swap_used_percent - 25.0).abs() < 1e-9);
    assert!((r.uptime_seconds.expect("uptime") - 12345.67).abs() < 1e-9);
    let psi = r.pressure.expect("psi");
    assert_eq!(
        (psi.cpu_some_avg10, psi.memory_full_avg10, psi.io_some_avg10),
        (1.5, 0.75, 3.25)
    );
    assert!(r.netdevs.is_empty(), "no rates on the first collection");
    assert_eq!(out.netdevs.len(), 1, "lo is skipped");
    assert_eq!(out.netdevs[0].rx_bytes, 5_000_000);
    assert_eq!(out.netdevs[0].rx_drops, 7);
    assert_eq!(out.disks.len(), 1, "partitions and loop devices skipped");
    assert_eq!(out.disks[0].read_bytes_total, 2000 * 512);
    assert_eq!(out.disks[0].io_time_seconds_total, 1.5);
    // Mount points resolve under the proc root's parent: "/" is the tempdir, a real fs.
    assert_eq!(
        r.filesystems.len(),
        1,
        "{:?} {:?}",
        r.filesystems,
        out.errors
    );
    assert_eq!(r.filesystems[0].mountpoint, "/");
    assert!(r.filesystems[0].size_bytes > 0);

    // Second sample 10 s later.
    fs::write(
        proc_root.join("stat"),
        "cpu  1500 0 1000 8500 0 0 0 0 0 0\ncpu0 1 1 1 1\ncpu1 1 1 1 1\nctxt 1\nbtime 1\nprocesses 1\n",
    )
    .expect("write");
    let dev = fs::read_to_string(proc_root.join("net/dev")).expect("read");
    fs::write(
        proc_root.join("net/dev"),
        dev.replace("5000000    4000", "5010000    4100"),
    )
    .expect("write");
    let out2 = c.collect(&HostConfig::default(), 110.0);
    let r2 = out2.report.expect("report");
    // busy +1000, total +1000 + 500 idle - 500 iowait → 1000/1000
    assert!(
        (r2.cpu_usage_percent - 100.0).abs() < 1e-9,
        "{}",
        r2.cpu_usage_percent
    );
    assert_eq!(r2.netdevs.len(), 1);
    assert!((r2.netdevs[0].rx_bytes_per_second - 1000.0).abs() < 1e-9);
    assert_eq!(out2.disks[0].utilization_percent, Some(0.0));
}

#[test]
fn missing_proc_reports_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = HostCollector::new(dir.path()).collect(&HostConfig::default(), 0.0);
    assert!(out.report.is_none());
    assert!(!out.errors.is_empty());
}

#[test]
fn real_proc_is_readable() {
    let out = HostCollector::new(Path::new("/proc")).collect(&HostConfig::default(), 0.0);
    let r = out.report.expect("report");
    assert!(r.cpus >= 1 && r.memory_total_bytes > 0 && r.uptime_seconds.is_some_and(|u| u > 0.0));
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    for e in fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).expect("copy");
        }
    }
}

/// In a pod without hostNetwork, `<proc>/net/dev` shows the pod's interfaces; the node's are
/// in the network namespace of the proc root's init process, `<proc>/1/net/dev`.
#[test]
fn netdevs_come_from_the_init_process_namespace_when_readable() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    let dir = tempfile::tempdir().expect("tempdir");
    let proc_root = dir.path().join("proc");
    copy_dir(&src, &proc_root);
    let header = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
    fs::create_dir_all(proc_root.join("1/net")).expect("mkdir");
    fs::write(
        proc_root.join("1/net/dev"),
        format!("{header}  ib0: 42 1 0 0 0 0 0 0 43 1 0 0 0 0 0 0\n"),
    )
    .expect("write");
    let mut c = HostCollector::new(&proc_root);
    let out = c.collect(&HostConfig::default(), 100.0);
    let names: Vec<&str> = out.netdevs.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ib0"], "the node's devices, not the reader's");
    assert_eq!(out.netdevs[0].rx_bytes, 42);
}

/// The mounts file is parsed again only when it changes; a change, a garbled file and a
/// removed file must each show up in the next collection.
#[test]
fn mounts_changes_are_seen_between_collections() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    let dir = tempfile::tempdir().expect("tempdir");
    let proc_root = dir.path().join("proc");
    copy_dir(&src, &proc_root);
    fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    let mounts = |c: &mut HostCollector| {
        let out = c.collect(&HostConfig::default(), 1.0);
        let fs: Vec<String> = out
            .report
            .map(|r| r.filesystems.into_iter().map(|f| f.mountpoint).collect())
            .unwrap_or_default();
        let errs: Vec<String> = out.errors.into_iter().map(|(s, _)| s).collect();
        (fs, errs)
    };
    let mut c = HostCollector::new(&proc_root);
    assert_eq!(mounts(&mut c), (vec!["/".to_string()], vec![]));
    assert_eq!(mounts(&mut c), (vec!["/".to_string()], vec![]), "unchanged");
    let original = fs::read_to_string(proc_root.join("mounts")).expect("read");
    fs::write(
        proc_root.join("mounts"),
        format!("{original}/dev/sdb1 /data ext4 rw,relatime 0 0\n"),
    )
    .expect("write");
    assert_eq!(
        mounts(&mut c),
        (vec!["/".to_string(), "/data".to_string()], vec![])
    );
    fs::write(proc_root.join("mounts"), "garbage\n").expect("write");
    assert_eq!(mounts(&mut c), (vec![], vec!["mounts".to_string()]));
    fs::write(proc_root.join("mounts"), &original).expect("write");
    assert_eq!(mounts(&mut c), (vec!["/".to_string()], vec![]));
    fs::remove_file(proc_root.join("mounts")).expect("rm");
    assert_eq!(mounts(&mut c), (vec![], vec!["mounts".to_string()]));
}

/// node_exporter's differences, fixed: decimal load and PSI kept as written, disks by its
/// default exclude (mmcblk partitions and sr0 kept), no uptime series when `/proc/uptime`
/// cannot be read.
#[test]
fn node_exporter_conventions_for_load_disks_and_uptime() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc"),
        dir.path(),
    );
    fs::write(dir.path().join("loadavg"), "0.21 0.30 1.07 1/234 5678\n").expect("write");
    fs::write(
        dir.path().join("pressure/cpu"),
        "some avg10=0.21 avg60=0.00 avg300=0.00 total=1\n",
    )
    .expect("write");
    let mut disks = fs::read_to_string(dir.path().join("diskstats")).expect("read");
    for d in ["mmcblk0", "mmcblk0p1", "mmcblk0p2", "sr0", "nvme0n1p1"] {
        disks.push_str(&format!(" 179 0 {d} 1 0 2 0 1 0 2 0 0 1 1 0 0 0 0 0 0\n"));
    }
    fs::write(dir.path().join("diskstats"), disks).expect("write");
    fs::remove_file(dir.path().join("uptime")).expect("rm");
    let out = HostCollector::new(dir.path()).collect(&HostConfig::default(), 0.0);
    let r = out.report.as_ref().expect("report");
    assert_eq!((r.load1, r.load5, r.load15), (0.21, 0.30, 1.07));
    assert_eq!(r.pressure.as_ref().expect("psi").cpu_some_avg10, 0.21);
    assert_eq!(r.uptime_seconds, None);
    assert!(
        out.errors.iter().any(|(f, _)| f == "uptime"),
        "{:?}",
        out.errors
    );
    let names: Vec<&str> = out.disks.iter().map(|d| d.device.as_str()).collect();
    for d in ["sda", "mmcblk0", "mmcblk0p1", "mmcblk0p2", "sr0"] {
        assert!(names.contains(&d), "{d} missing from {names:?}");
    }
    for d in ["sda1", "loop0", "nvme0n1p1"] {
        assert!(!names.contains(&d), "{d} in {names:?}");
    }
    let snap = fabricwatch_agent::snapshot::Snapshot {
        report: fabricwatch_proto::report::AgentReport {
            host: out.report.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let text = fabricwatch_agent::metrics::render_text(&snap).text;
    assert!(text.contains("fabricwatch_host_load1 0.21\n"), "{text}");
    assert!(!text.contains("fabricwatch_host_uptime_seconds"), "{text}");
}
