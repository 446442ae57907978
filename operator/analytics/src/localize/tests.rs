//! Inference on hand-made probe matrices.

use super::*;
use crate::loss::{PathHistory, FAMILY_ALPHA};

const LIMITS: Limits = Limits {
    loss_warning: 0.01,
    loss_critical: 0.05,
    alpha: FAMILY_ALPHA,
};

/// A deterministic "random" number in [0, 1) from a few integers (SplitMix64).
fn unit(mut x: u64) -> f64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

struct Mesh {
    nodes: Vec<NodeInput>,
    /// Loss probability of a round trip `src → dst` (0–1).
    loss: Box<dyn Fn(usize, usize) -> f64>,
    /// Peers of each node (default: everyone).
    peers: Option<usize>,
    slow: Box<dyn Fn(usize, usize) -> bool>,
}

impl Mesh {
    fn new(n: usize) -> Self {
        Self {
            nodes: (0..n)
                .map(|i| NodeInput {
                    name: format!("n{i:03}"),
                    ..Default::default()
                })
                .collect(),
            loss: Box::new(|_, _| 0.001),
            peers: None,
            slow: Box::new(|_, _| false),
        }
    }

    fn with_domains(mut self, size: usize) -> Self {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.domain = Some(format!("rack-{}", i / size));
        }
        self
    }

    fn paths(&self, reports: usize, probes: u32) -> Vec<PathInput> {
        let n = self.nodes.len();
        let mut out = Vec::new();
        for s in 0..n {
            let k = self.peers.unwrap_or(n - 1).min(n - 1);
            for j in 1..=k {
                let d = (s + j * (n / k.max(1)).max(1)) % n;
                if d == s {
                    continue;
                }
                let mut h = PathHistory::default();
                for r in 0..reports {
                    let p = (self.loss)(s, d);
                    let received = (0..probes)
                        .filter(|q| {
                            unit((s * 1_000_003 + d * 1009 + r * 31 + *q as usize) as u64) >= p
                        })
                        .count() as u32;
                    h.push(probes, received);
                }
                out.push(PathInput {
                    src: s,
                    dst: d,
                    windows: h.windows(),
                    slow: (self.slow)(s, d),
                });
            }
        }
        out
    }

    fn run(&self) -> Vec<Suspect> {
        localize(&self.nodes, &self.paths(8, 10), LIMITS)
    }
}

fn keys(s: &[Suspect]) -> Vec<String> {
    s.iter().map(Suspect::key).collect()
}

#[test]
fn noise_only_gives_no_suspect() {
    for n in [3, 20, 120] {
        let m = Mesh::new(n);
        assert_eq!(keys(&m.run()), Vec::<String>::new(), "{n} nodes");
    }
    let mut m = Mesh::new(400);
    m.peers = Some(32);
    assert_eq!(keys(&m.run()), Vec::<String>::new());
}

#[test]
fn one_bad_node_is_the_only_suspect() {
    // The three-node case of the report: fw-n2's incoming ICMP 40 % dropped.
    let mut m = Mesh::new(3);
    m.loss = Box::new(|s, d| if s == 1 || d == 1 { 0.4 } else { 0.001 });
    let got = m.run();
    assert_eq!(keys(&got), vec!["node/n001"]);
    assert_eq!(got[0].cause, Cause::Network);
    assert_eq!(got[0].severity, Health::Critical);
    assert_eq!(
        got[0].paths.len(),
        4,
        "its four pair problems are grouped under it"
    );
    // And a 5 % NIC in a larger fleet with 16 peers each.
    let mut m = Mesh::new(100);
    m.peers = Some(16);
    m.loss = Box::new(|s, d| if s == 42 || d == 42 { 0.05 } else { 0.001 });
    assert_eq!(keys(&m.run()), vec!["node/n042"]);
}

#[test]
fn one_bad_link_is_a_link_and_its_ends_are_not_suspects() {
    let mut m = Mesh::new(3);
    m.loss = Box::new(|s, d| if s + d == 3 { 0.4 } else { 0.001 });
    let got = m.run();
    assert_eq!(keys(&got), vec!["link/n001–n002"]);
    assert!(got[0].confidence > 0.9, "{}", got[0].confidence);
    let mut m = Mesh::new(50);
    m.loss = Box::new(|s, d| {
        if (s == 7 && d == 30) || (s == 30 && d == 7) {
            0.3
        } else {
            0.001
        }
    });
    assert_eq!(keys(&m.run()), vec!["link/n007–n030"]);
}

#[test]
fn two_bad_nodes_are_two_node_suspects() {
    let mut m = Mesh::new(40);
    m.loss = Box::new(|s, d| {
        if [3, 17].contains(&s) || [3, 17].contains(&d) {
            0.2
        } else {
            0.001
        }
    });
    let mut k = keys(&m.run());
    k.sort();
    assert_eq!(k, vec!["node/n003", "node/n017"]);
}

#[test]
fn a_bad_domain_is_one_domain_suspect() {
    // Racks of 8; rack-2's uplink drops 30 %: paths across it are bad, inside it fine.
    let mut m = Mesh::new(48).with_domains(8);
    let rack = |i: usize| i / 8;
    m.loss = Box::new(move |s, d| {
        if (rack(s) == 2) != (rack(d) == 2) {
            0.3
        } else {
            0.001
        }
    });
    let got = m.run();
    assert_eq!(keys(&got), vec!["domain/rack-2"]);
    assert_eq!(got[0].nodes.len(), 8);
    // One bad node inside a rack is that node, not its rack.
    let mut m = Mesh::new(48).with_domains(8);
    m.loss = Box::new(|s, d| if s == 20 || d == 20 { 0.3 } else { 0.001 });
    assert_eq!(keys(&m.run()), vec!["node/n020"]);
}

#[test]
fn a_dead_node_is_down_and_its_peers_are_not_suspects() {
    let mut m = Mesh::new(10);
    m.nodes[4].liveness = Liveness::Late;
    m.loss = Box::new(|_, d| if d == 4 { 1.0 } else { 0.001 });
    let got = m.run();
    assert_eq!(keys(&got), vec!["node/n004"]);
    assert_eq!(got[0].cause, Cause::Down);
    assert_eq!(got[0].severity, Health::Critical);
    // Silent and no longer probed by anyone: still a suspect, down or unreachable.
    let mut m = Mesh::new(10);
    m.nodes[4].liveness = Liveness::Silent;
    let paths: Vec<PathInput> = m.paths(8, 10).into_iter().filter(|p| p.dst != 4).collect();
    let got = localize(&m.nodes, &paths, LIMITS);
    assert_eq!(keys(&got), vec!["node/n004"]);
    assert_eq!(got[0].cause, Cause::Down);
    // Silent but every peer still reaches it: the agent, not the node.
    let got = localize(&m.nodes, &m.paths(8, 10), LIMITS);
    assert_eq!(got[0].cause, Cause::Agent);
}

#[test]
fn a_host_overloaded_node_is_a_host_suspect() {
    // RTT p99 high on every path of n005 while its CPU is saturated.
    let mut m = Mesh::new(12);
    m.nodes[5].host = vec!["CPU 99% busy".into(), "PSI cpu some avg10 80%".into()];
    m.slow = Box::new(|s, d| s == 5 || d == 5);
    let got = m.run();
    assert_eq!(keys(&got), vec!["node/n005"]);
    assert_eq!(got[0].cause, Cause::Host);
    assert!(
        got[0].evidence.contains("CPU 99% busy"),
        "{}",
        got[0].evidence
    );
    // Its own probes fail while peers reach it: host side even without host counters.
    let mut m = Mesh::new(12);
    m.loss = Box::new(|s, _| if s == 5 { 0.3 } else { 0.001 });
    let got = m.run();
    assert_eq!(keys(&got), vec!["node/n005"]);
    assert_eq!(got[0].cause, Cause::Host);
}

#[test]
fn node_conditions_and_ports_alone_make_a_suspect() {
    let mut m = Mesh::new(6);
    m.nodes[2].host = vec!["Node condition Ready=False".into()];
    m.nodes[2].host_fault = true;
    m.nodes[3].network = vec!["RDMA port mlx5_0/1 DOWN (Polling)".into()];
    m.nodes[3].network_fault = true;
    let got = m.run();
    let mut k = keys(&got);
    k.sort();
    assert_eq!(k, vec!["node/n002", "node/n003"]);
}

#[test]
fn bad_input_is_ignored_not_a_panic() {
    let m = Mesh::new(3);
    let mut paths = m.paths(2, 10);
    paths.push(PathInput {
        src: 0,
        dst: 99,
        windows: Default::default(),
        slow: false,
    });
    paths.push(PathInput {
        src: 1,
        dst: 1,
        windows: Default::default(),
        slow: true,
    });
    assert!(localize(&m.nodes, &paths, LIMITS).is_empty());
    assert!(localize(&[], &[], LIMITS).is_empty());
}
