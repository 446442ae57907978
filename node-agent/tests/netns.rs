//! Real ICMP probing between two network namespaces joined by a veth pair. Needs root,
//! iproute2 and iptables; skips (with the reason printed) otherwise.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{sh, skip_reason, VethPair};

const AGENT: &str = env!("CARGO_BIN_EXE_fabricwatch-agent");

/// Namespaces `fwag-<tag>a` / `fwag-<tag>b` with 10.199.<net>.1 and .2 on a veth pair;
/// removed on drop (even when the test fails).
struct Pair(VethPair);

impl Pair {
    fn new(tag: &str, net: u8) -> Self {
        let pid = std::process::id();
        Pair(VethPair::new(
            format!("fwag-{tag}a-{pid}"),
            format!("fwag-{tag}b-{pid}"),
            &format!("fwag{tag}va"),
            &format!("fwag{tag}vb"),
            format!("10.199.{net}"),
        ))
    }

    fn peer(&self) -> String {
        self.0.addr_b()
    }

    fn probe(&self, args: &str) -> Value {
        let out = sh(&format!(
            "ip netns exec {} {AGENT} --log-format json probe {args}",
            self.0.a
        ))
        .expect("probe");
        serde_json::from_str(&out).expect("json")
    }
}

#[test]
fn rtt_measured_for_real_over_raw_and_datagram_sockets() {
    if let Some(r) = skip_reason(&["ip", "iptables"]) {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let p = Pair::new("r", 1);
    let v = p.probe(&format!(
        "--count 20 --interval-ms 10 --timeout-ms 1000 {}",
        p.peer()
    ));
    // A fresh namespace has ping_group_range "1 0": root falls back to the raw socket.
    assert_eq!(v["socket"], "raw");
    let peer = &v["peers"][0];
    assert_eq!(peer["sent"], 20);
    assert_eq!(peer["received"], 20, "{peer}");
    let rtt = peer["rttP50Seconds"].as_f64().expect("rtt");
    assert!(rtt > 0.0 && rtt < 0.005, "veth RTT {rtt}");
    assert!(peer["rttMaxSeconds"].as_f64() >= peer["rttMinSeconds"].as_f64());
    assert!(peer["jitterSeconds"].as_f64().is_some());
    // veth stamps transmitted packets (skb_tx_timestamp): every RTT runs from the kernel's
    // transmit stamp to its receive stamp.
    assert_eq!(v["timestamps"]["txKernel"], 20, "{}", v["timestamps"]);
    assert_eq!(v["timestamps"]["rxKernel"], 20, "{}", v["timestamps"]);
    assert_eq!(v["timestamps"]["txUser"], 0, "{}", v["timestamps"]);
    // Without kernel transmit stamps the user-space send stamp is used.
    let v = p.probe(&format!(
        "--user-tx-stamps --count 5 --interval-ms 10 {}",
        p.peer()
    ));
    assert_eq!(v["peers"][0]["received"], 5, "{v}");
    assert_eq!(v["timestamps"]["txKernel"], 0, "{}", v["timestamps"]);
    assert_eq!(v["timestamps"]["txUser"], 5, "{}", v["timestamps"]);
    assert_eq!(v["timestamps"]["rxKernel"], 5, "{}", v["timestamps"]);

    sh(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ping_group_range='0 2147483647'",
        p.0.a
    ))
    .expect("sysctl");
    let v = p.probe(&format!("--count 10 --interval-ms 10 {}", p.peer()));
    assert_eq!(v["socket"], "datagram");
    assert_eq!(v["peers"][0]["received"], 10, "{v}");
    assert_eq!(v["timestamps"]["txKernel"], 10, "{}", v["timestamps"]);
    assert_eq!(v["timestamps"]["rxKernel"], 10, "{}", v["timestamps"]);
}

/// A router's ICMP error (here the peer rejecting echo requests with host unreachable)
/// ends the probe at once with that error, on both socket kinds, instead of a timeout.
#[test]
fn icmp_errors_end_probes_at_once() {
    if let Some(r) = skip_reason(&["ip", "iptables"]) {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let p = Pair::new("e", 4);
    sh(&format!(
        "ip netns exec {} iptables -A INPUT -p icmp --icmp-type echo-request -j REJECT --reject-with icmp-host-unreachable",
        p.0.b
    ))
    .expect("iptables");
    for (socket, range) in [("raw", "1 0"), ("datagram", "0 2147483647")] {
        sh(&format!(
            "ip netns exec {} sysctl -qw net.ipv4.ping_group_range='{range}'",
            p.0.a
        ))
        .expect("sysctl");
        let start = Instant::now();
        let v = p.probe(&format!(
            "--count 3 --interval-ms 10 --timeout-ms 5000 {}",
            p.peer()
        ));
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{socket}: took {:?}, the 5 s timeout",
            start.elapsed()
        );
        assert_eq!(v["socket"], socket);
        let peer = &v["peers"][0];
        assert_eq!(peer["lossPercent"], 100.0, "{peer}");
        assert_eq!(
            peer["lastError"],
            format!("host unreachable (ICMP from {})", p.peer()),
            "{socket}"
        );
        assert_eq!(v["timestamps"]["icmpErrors"], 3, "{}", v["timestamps"]);
    }
}

#[test]
fn random_drop_of_20_percent_is_measured_within_5_points() {
    if let Some(r) = skip_reason(&["ip", "iptables"]) {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let p = Pair::new("l", 2);
    sh(&format!(
        "ip netns exec {} iptables -A INPUT -p icmp --icmp-type echo-request -m statistic --mode random --probability 0.2 -j DROP",
        p.0.b
    ))
    .expect("iptables");
    let v = p.probe(&format!(
        "--count 600 --interval-ms 2 --timeout-ms 500 {}",
        p.peer()
    ));
    let peer = &v["peers"][0];
    assert_eq!(peer["sent"], 600);
    let loss = peer["lossPercent"].as_f64().expect("loss");
    assert!(
        (15.0..=25.0).contains(&loss),
        "loss {loss} % over 600 probes"
    );
    assert_eq!(peer["lastError"], "timeout");
}

#[test]
fn unreachable_peers_report_full_loss_and_an_error_without_hanging() {
    if let Some(r) = skip_reason(&["ip", "iptables"]) {
        eprintln!("skipping netns test: {r}");
        return;
    }
    let p = Pair::new("u", 3);
    // 10.199.103.7 is on-link through the veth but nobody owns it (ARP fails);
    // 10.250.0.1 has no route at all.
    sh(&format!(
        "ip -n {} route add 10.199.103.0/24 dev fwaguva",
        p.0.a
    ))
    .expect("route");
    let start = Instant::now();
    let v = p.probe(&format!(
        "--count 3 --interval-ms 50 --timeout-ms 300 10.199.103.7 10.250.0.1 {}",
        p.peer()
    ));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    let peers = v["peers"].as_array().expect("peers");
    assert_eq!(peers[0]["lossPercent"], 100.0);
    assert_eq!(peers[0]["lastError"], "timeout");
    assert_eq!(peers[1]["lossPercent"], 100.0);
    assert_eq!(peers[1]["lastError"], "network unreachable");
    assert_eq!(
        peers[2]["lossPercent"], 0.0,
        "the live peer is unaffected: {}",
        peers[2]
    );
}
