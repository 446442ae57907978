//! The `SIOCETHTOOL` path against a real netdev: a veth pair in a network namespace of its
//! own (veth has driver statistics: `peer_ifindex`, per-queue XDP counters). Needs root
//! and iproute2; skips (with the reason printed) otherwise.

mod support;

use fabricwatch_agent::ethtool::{
    ioctl::{EthtoolSocket, StatsError},
    EthtoolCollector,
};
use fabricwatch_proto::agent_config::EthtoolConfig;
use support::{enter, sh, skip_reason};

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
        let ns = self.0.clone();
        std::thread::spawn(move || {
            enter(&ns);
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
    if let Some(r) = skip_reason(&["ip"]) {
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
    if let Some(r) = skip_reason(&["ip"]) {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let ns = Ns::new("b");
    let name = ns.0.clone();
    let (views, errors) = std::thread::spawn(move || {
        enter(&name);
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
