//! The ping collector: ICMP echo or TCP connect probes to mesh peers and external targets.
//!
//! * [`stats`]: pure per-peer statistics (RTT percentiles, RFC 3550 jitter, loss).
//! * [`icmp`]: the shared ICMP socket and its receiver thread.
//! * [`tcp`]: TCP connect probes.
//! * [`gateway`]: the default gateway from `/proc/net/route`.
//!
//! A round sends `packets` probes to every target, spread over a window with a random
//! phase per target and ±10 % jitter between probes, so that many agents and many peers
//! never probe in synchronized bursts; probes are concurrent and each has its own timeout.

pub mod gateway;
pub mod icmp;
pub mod stats;
pub mod tcp;

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use fabricwatch_proto::report::{Peer, PeerReport, ProbeProtocol};
use rand::Rng;

use crate::{
    agent::{Assembly, Fold},
    health::{self, CollectorResult},
};

pub use stats::{PeerKey, ProbeOutcome};

/// A target to probe: its identity and the host text to resolve (IP, `IP:port`, hostname).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Identity in reports.
    pub key: PeerKey,
    /// What to resolve.
    pub host: String,
}

/// Mesh peers first, then external targets, without duplicate addresses.
pub fn build_targets(peers: &[Peer], external: &[String]) -> Vec<Target> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in peers {
        if seen.insert(p.address.clone()) {
            out.push(Target {
                key: PeerKey {
                    name: p.node.clone(),
                    address: p.address.clone(),
                    external: false,
                },
                host: p.address.clone(),
            });
        }
    }
    for e in external {
        if seen.insert(e.clone()) {
            out.push(Target {
                key: PeerKey {
                    name: e.clone(),
                    address: e.clone(),
                    external: true,
                },
                host: e.clone(),
            });
        }
    }
    out
}

/// How a round probes.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundSettings {
    /// ICMP or TCP.
    pub protocol: ProbeProtocol,
    /// Port for TCP probes of targets given without one.
    pub tcp_port: u16,
    /// Per-probe timeout.
    pub timeout: Duration,
    /// Probes per target.
    pub packets: u32,
    /// Time over which a target's probes are spread (the round ends at most `timeout`
    /// after it).
    pub window: Duration,
}

/// Result of a round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PingOutcome {
    /// One report per target, in target order.
    pub reports: Vec<PeerReport>,
    /// Set when probing could not start at all (no ICMP socket).
    pub setup_error: Option<String>,
}

impl Fold for PingOutcome {
    /// Failed without a socket; Partial when a peer failed with an error other than a
    /// timeout (a lost probe is what ping measures, not a fault of the agent).
    fn fold_into(self, a: &mut Assembly<'_>) {
        let PingOutcome {
            reports,
            setup_error,
        } = self;
        let mut result = CollectorResult::Ok;
        if let Some(e) = setup_error {
            a.error("ping", "setup", "socket".into(), e);
            result = CollectorResult::Failed;
        }
        for r in &reports {
            let t = a.ping_totals.entry(r.peer.clone()).or_default();
            t.sent += u64::from(r.sent);
            t.received += u64::from(r.received);
            if let Some(e) = &r.last_error {
                let kind = error_kind(e);
                a.error("ping", kind, r.peer.clone(), e.clone());
                if kind != "timeout" && result == CollectorResult::Ok {
                    result = CollectorResult::Partial;
                }
            }
        }
        let live: HashSet<&String> = reports.iter().map(|r| &r.peer).collect();
        a.ping_totals.retain(|k, _| live.contains(k));
        a.problems
            .extend(health::classify_ping(&reports, &a.config.thresholds));
        a.results.push(result);
        a.report.ping = reports;
    }
}

/// Bounded `kind` label for a ping error text.
pub fn error_kind(e: &str) -> &'static str {
    if e == "timeout" {
        "timeout"
    } else if e.contains("unreachable") {
        "unreachable"
    } else if e.starts_with("cannot resolve") || e.contains("resolves to no address") {
        "resolve"
    } else {
        "probe_error"
    }
}

/// Stateful ping collector: the ICMP socket (opened on first use) and each peer's jitter.
#[derive(Debug, Default)]
pub struct PingCollector {
    icmp: Option<Arc<icmp::IcmpProber>>,
    jitter: HashMap<PeerKey, stats::Jitter>,
    /// Do not ask for kernel transmit stamps (see [`icmp::IcmpProber::with_tx_timestamps`]).
    user_tx_stamps: bool,
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(sa) = host.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

impl PingCollector {
    /// A collector that opens its ICMP socket on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collector whose ICMP RTTs start at the user-space send stamp instead of the
    /// kernel's transmit stamp (as `ping` and `fping` measure; for comparisons).
    pub fn with_user_tx_stamps() -> Self {
        Self {
            user_tx_stamps: true,
            ..Self::default()
        }
    }

    /// The ICMP socket kind, once opened.
    pub fn icmp_kind(&self) -> Option<icmp::SocketKind> {
        self.icmp.as_ref().map(|p| p.kind())
    }

    /// Which timestamp sources the ICMP RTTs used so far, once the socket is open.
    pub fn icmp_timestamps(&self) -> Option<icmp::TimestampCounts> {
        self.icmp.as_ref().map(|p| p.timestamp_counts())
    }

    fn icmp(&mut self) -> Result<Arc<icmp::IcmpProber>, String> {
        if let Some(p) = &self.icmp {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(
            icmp::IcmpProber::with_tx_timestamps(!self.user_tx_stamps)
                .map_err(|e| e.to_string())?,
        );
        self.icmp = Some(Arc::clone(&p));
        Ok(p)
    }

    /// Probes every target once per round (see the module doc) and summarises.
    pub async fn run_round(&mut self, targets: &[Target], s: &RoundSettings) -> PingOutcome {
        let mut out = PingOutcome::default();
        if targets.is_empty() {
            return out;
        }
        let prober = match s.protocol {
            ProbeProtocol::Icmp => match self.icmp() {
                Ok(p) => Some(p),
                Err(e) => {
                    out.setup_error = Some(e);
                    return out;
                }
            },
            ProbeProtocol::Tcp => None,
        };
        let packets = s.packets.max(1);
        let spacing = s.window.saturating_sub(s.timeout) / packets;
        let mut set = tokio::task::JoinSet::new();
        for (idx, t) in targets.iter().enumerate() {
            let t = t.clone();
            let prober = prober.clone();
            let s = s.clone();
            set.spawn(async move {
                let outcomes = probe_target(&t, prober, &s, packets, spacing).await;
                (idx, outcomes)
            });
        }
        let mut results: Vec<Vec<ProbeOutcome>> = vec![Vec::new(); targets.len()];
        while let Some(r) = set.join_next().await {
            if let Ok((idx, outcomes)) = r {
                results[idx] = outcomes;
            }
        }
        let live: HashSet<&PeerKey> = targets.iter().map(|t| &t.key).collect();
        self.jitter.retain(|k, _| live.contains(k));
        for (t, outcomes) in targets.iter().zip(results) {
            let j = self.jitter.entry(t.key.clone()).or_default();
            out.reports
                .push(stats::summarize(&t.key, s.protocol, &outcomes, j));
        }
        out
    }
}

async fn probe_target(
    t: &Target,
    prober: Option<Arc<icmp::IcmpProber>>,
    s: &RoundSettings,
    packets: u32,
    spacing: Duration,
) -> Vec<ProbeOutcome> {
    let lost_all = |msg: String| vec![ProbeOutcome::Lost(msg); packets as usize];
    let addr = match resolve(&t.host, s.tcp_port).await {
        Ok(a) => a,
        Err(e) => return lost_all(e),
    };
    let v4 = match (addr.ip(), s.protocol) {
        (IpAddr::V4(v4), _) => Some(v4),
        (IpAddr::V6(_), ProbeProtocol::Icmp) => {
            return lost_all("ICMP probes support IPv4 addresses only".into())
        }
        (IpAddr::V6(_), ProbeProtocol::Tcp) => None,
    };
    // Random phase so that targets (and agents) do not fire together.
    let phase_range = if spacing.is_zero() {
        Duration::from_millis(10)
    } else {
        spacing
    };
    let phase = phase_range.mul_f64(rand::rng().random_range(0.0..1.0));
    tokio::time::sleep(phase).await;
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..packets {
        let prober = prober.clone();
        let timeout = s.timeout;
        let protocol = s.protocol;
        inflight.spawn(async move {
            let o = match (protocol, prober, v4) {
                (ProbeProtocol::Icmp, Some(p), Some(ip)) => p.probe(ip, timeout).await,
                (ProbeProtocol::Tcp, _, _) => tcp::probe(addr, timeout).await,
                _ => ProbeOutcome::Lost("internal: no prober".into()),
            };
            (i, o)
        });
        if i + 1 < packets && !spacing.is_zero() {
            let j = rand::rng().random_range(0.9..1.1);
            tokio::time::sleep(spacing.mul_f64(j)).await;
        }
    }
    let mut outcomes =
        vec![ProbeOutcome::Lost("internal: probe task failed".into()); packets as usize];
    while let Some(r) = inflight.join_next().await {
        if let Ok((i, o)) = r {
            outcomes[i as usize] = o;
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_dedupe_and_mark_external() {
        let peers = vec![
            Peer {
                node: "n2".into(),
                address: "10.0.0.2".into(),
            },
            Peer {
                node: "n3".into(),
                address: "10.0.0.2".into(),
            },
        ];
        let t = build_targets(&peers, &["10.0.0.2".into(), "gw.example".into()]);
        assert_eq!(t.len(), 2);
        assert!(!t[0].key.external);
        assert!(t[1].key.external);
        assert_eq!(t[1].host, "gw.example");
    }

    #[tokio::test]
    async fn tcp_round_against_real_listeners() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        });
        // A port that was just free: connect gets RST, which counts as an answer.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let targets = build_targets(
            &[],
            &[open.to_string(), closed.to_string(), "name.invalid".into()],
        );
        let mut c = PingCollector::new();
        let s = RoundSettings {
            protocol: ProbeProtocol::Tcp,
            tcp_port: 22,
            timeout: Duration::from_millis(500),
            packets: 3,
            window: Duration::from_millis(600),
        };
        let out = c.run_round(&targets, &s).await;
        assert_eq!(out.reports.len(), 3);
        assert_eq!(out.reports[0].received, 3, "{:?}", out.reports[0]);
        assert!(out.reports[0].rtt_p99_seconds.expect("rtt") < 0.1);
        assert_eq!(
            out.reports[1].received, 3,
            "RST is an answer: {:?}",
            out.reports[1]
        );
        assert_eq!(out.reports[2].loss_percent, 100.0);
        assert!(out.reports[2]
            .last_error
            .as_deref()
            .expect("error")
            .contains("cannot resolve"));
    }
}
