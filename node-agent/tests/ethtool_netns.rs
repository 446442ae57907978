//! The `SIOCETHTOOL` path against a real netdev: a veth pair in a network namespace of its
//! own (veth has driver statistics: `peer_ifindex`, per-queue XDP counters). Needs root
//! and iproute2; skips (with the reason printed) otherwise.

use std::{fs::File, os::fd::AsRawFd, process::Command};

use fabricwatch_agent::ethtool::{
    ioctl::{EthtoolSocket, StatsError},
    EthtoolCollector,
};
use fabricwatch_proto::agent_config::EthtoolConfig;

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let found = Command::new("sh")
        .args(["-c", "command -v ip"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    (!found).then(|| "ip not installed".into())
}

fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Namespace `fwet<tag>-<pid>` with veth `fwetA` ↔ `fwetB`; removed on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Self {
        let ns = Ns(format!("fwet{tag}-{}", std::process::id()));
        let _ = sh(&format!("ip netns del {} 2>/dev/null", ns.0));
        sh(&format!(
            "set -e; ip netns add {n}; ip -n {n} link add fwetA type veth peer name fwetB; ip -n {n} link set fwetA up; ip -n {n} link set fwetB up",
            n = ns.0
        ))
        .expect("netns setup");
        ns
    }

    /// An ethtool socket created inside the namespace (a socket keeps the namespace it was
    /// made in; the thread that entered it ends).
    fn socket(&self) -> EthtoolSocket {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let f = File::open(&path).expect("open netns");
            // SAFETY: setns on an owned, open namespace file; affects this thread only.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            EthtoolSocket::open().expect("socket")
        })
        .join()
        .expect("thread")
    }

    fn ifindex(&self, dev: &str) -> u64 {
        sh(&format!(
            "ip netns exec {} cat /sys/class/net/{dev}/ifindex",
            self.0
        ))
        .expect("ifindex")
        .trim()
        .parse()
        .expect("number")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {} 2>/dev/null", self.0));
    }
}

#[test]
fn veth_statistics_come_through_the_ioctl() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let ns = Ns::new("a");
    let s = ns.socket();
    assert_eq!(s.driver("fwetA").expect("driver"), "veth");
    let stats = s.statistics("fwetA").expect("statistics");
    // veth_get_ethtool_stats: the first statistic is the peer's ifindex.
    assert_eq!(stats[0], ("peer_ifindex".to_string(), ns.ifindex("fwetB")));
    let b = s.statistics("fwetB").expect("statistics");
    assert_eq!(b[0], ("peer_ifindex".to_string(), ns.ifindex("fwetA")));
    assert!(
        stats.iter().any(|(n, _)| n.starts_with("rx_queue_0_")),
        "{stats:?}"
    );
    // The same names as `ethtool -S`, when the tool is installed.
    if let Ok(text) = sh(&format!("ip netns exec {} ethtool -S fwetA", ns.0)) {
        let (from_tool, bad) = fabricwatch_agent::ethtool::text::parse_statistics(&text);
        assert!(bad.is_empty(), "{bad:?}");
        let names = |v: &[(String, u64)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&from_tool), names(&stats));
    }
    // Not in this namespace / gone: ENODEV, never a panic.
    assert!(matches!(
        s.statistics("fwnosuch0"),
        Err(StatsError::NoDevice)
    ));
    sh(&format!("ip -n {} link del fwetA", ns.0)).expect("link del");
    assert!(matches!(s.statistics("fwetA"), Err(StatsError::NoDevice)));
    assert!(matches!(s.driver("fwetB"), Err(StatsError::NoDevice)));
}

#[test]
fn the_collector_reads_the_kernel_and_exports_nothing_for_veth() {
    if let Some(r) = skip_reason() {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let ns = Ns::new("b");
    let name = ns.0.clone();
    let (views, errors) = std::thread::spawn(move || {
        let f = File::open(format!("/run/netns/{name}")).expect("open netns");
        // SAFETY: as in `Ns::socket`.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0);
        let mut c = EthtoolCollector::new(&EthtoolConfig::default());
        c.collect(
            std::path::Path::new("/nonexistent"),
            ["fwetA", "fwgone0"],
            0.0,
        )
    })
    .join()
    .expect("thread");
    assert_eq!(views["fwetA"].driver, "veth");
    assert!(
        views["fwetA"].statistics.is_empty(),
        "veth is not a mapped driver"
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].subject.as_str(), errors[0].kind),
        ("fwgone0", "not_found")
    );
}
