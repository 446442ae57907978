//! Prometheus metrics. Collector data is rendered at scrape time from the latest
//! [`Snapshot`] (so series of vanished ports or peers disappear with them, as in
//! node_exporter); the agent's own counters are ordinary registered metrics.
//!
//! Names follow the Prometheus conventions: `fabricwatch_` prefix, base units (bytes,
//! seconds, ratios 0–1), counters end in `_total`; labels are bounded (devices, ports,
//! mount points, interfaces, and at most `maxPeers` peers).
//!
//! The snapshot's families, one file each: `agent` (state, problems, durations), `rdma`,
//! `ping`, `host` and `endpoint`.

mod agent;
mod endpoint;
mod host;
mod ping;
mod rdma;

use std::sync::{Arc, Mutex, RwLock};

use prometheus::{
    core::{Collector, Desc},
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
    IntCounterVec, IntGauge, Opts, Registry,
};

use crate::{
    exposition::{Encoded, Sink, TextFamilies},
    snapshot::Snapshot,
};

/// Shared pointer to the latest snapshot.
pub type SharedSnapshot = Arc<RwLock<Arc<Snapshot>>>;

/// The encoded text of a snapshot together with that snapshot (compared by pointer).
type EncodedCache = Arc<Mutex<Option<(Arc<Snapshot>, Arc<Encoded>)>>>;

/// The agent's registry and its own counters.
#[derive(Clone)]
pub struct AgentMetrics {
    /// Registry served on `/metrics`.
    pub registry: Registry,
    /// `fabricwatch_agent_collector_errors_total{collector,kind}`.
    pub collector_errors: IntCounterVec,
    /// `fabricwatch_agent_push_total{result}`.
    pub push_total: IntCounterVec,
    /// `fabricwatch_agent_push_errors_total{cause}`: attempts without an HTTP answer.
    pub push_errors: IntCounterVec,
    /// `fabricwatch_agent_push_buffered_reports`.
    pub push_buffered: IntGauge,
    /// `fabricwatch_agent_push_dropped_reports_total`.
    pub push_dropped: prometheus::IntCounter,
    /// Latest snapshot, rendered at scrape time.
    pub snapshot: SharedSnapshot,
    /// The agent's own metrics only (the snapshot's families come from `encoded`).
    own: Registry,
    /// The text of the snapshot's families and the snapshot it was rendered from: scrapes
    /// between two collections reuse it.
    encoded: EncodedCache,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMetrics").finish_non_exhaustive()
    }
}

impl AgentMetrics {
    /// Builds and registers every metric.
    ///
    /// # Errors
    /// Registration conflicts (a programming error surfaced instead of a panic).
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let collector_errors = IntCounterVec::new(
            Opts::new(
                "fabricwatch_agent_collector_errors_total",
                "Files skipped or probes failed, by collector (rdma, ping, host) and kind.",
            ),
            &["collector", "kind"],
        )?;
        let push_total = IntCounterVec::new(
            Opts::new(
                "fabricwatch_agent_push_total",
                "Report push attempts by result (ok, server_error, unauthorized, rejected, network).",
            ),
            &["result"],
        )?;
        let push_errors = IntCounterVec::new(
            Opts::new(
                "fabricwatch_agent_push_errors_total",
                "Report push attempts that got no HTTP answer, by cause (dns, connection_refused, \
                 unreachable, connect_timeout, connect, tls, timeout, connection_reset, \
                 token_file, other).",
            ),
            &["cause"],
        )?;
        let push_buffered = IntGauge::new(
            "fabricwatch_agent_push_buffered_reports",
            "Reports waiting to be pushed to analytics.",
        )?;
        let push_dropped = prometheus::IntCounter::new(
            "fabricwatch_agent_push_dropped_reports_total",
            "Reports dropped because the buffer was full or analytics rejected them as malformed.",
        )?;
        let build = IntGauge::with_opts(
            Opts::new("fabricwatch_agent_build_info", "Agent build; always 1.")
                .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build.set(1);
        let own = Registry::new();
        for r in [&registry, &own] {
            r.register(Box::new(collector_errors.clone()))?;
            r.register(Box::new(push_total.clone()))?;
            r.register(Box::new(push_errors.clone()))?;
            r.register(Box::new(push_buffered.clone()))?;
            r.register(Box::new(push_dropped.clone()))?;
            r.register(Box::new(build.clone()))?;
        }
        let snapshot: SharedSnapshot = Arc::default();
        registry.register(Box::new(SnapshotCollector {
            snapshot: Arc::clone(&snapshot),
            descs: Vec::new(),
        }))?;
        Ok(Self {
            registry,
            collector_errors,
            push_total,
            push_errors,
            push_buffered,
            push_dropped,
            snapshot,
            own,
            encoded: Arc::default(),
        })
    }

    /// The `/metrics` body: the same bytes as `TextEncoder` over `registry.gather()`, but
    /// the snapshot's families are rendered once per published snapshot and reused by
    /// every scrape until the next one.
    ///
    /// # Errors
    /// When the agent's own metrics cannot be encoded (inconsistent families; a
    /// programming error surfaced instead of a panic).
    pub fn encode(&self) -> prometheus::Result<Vec<u8>> {
        use prometheus::Encoder;
        let snap = self.latest();
        let cached = self.encoded.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(s, _)| Arc::ptr_eq(s, &snap))
                .map(|(_, e)| Arc::clone(e))
        });
        let enc = match cached {
            Some(e) => e,
            None => {
                let e = Arc::new(render_text(&snap));
                if let Ok(mut c) = self.encoded.lock() {
                    *c = Some((Arc::clone(&snap), Arc::clone(&e)));
                }
                e
            }
        };
        let own = self.own.gather();
        let encoder = prometheus::TextEncoder::new();
        let mut out = Vec::with_capacity(enc.text.len() + 4096);
        let mut theirs = enc.families().peekable();
        // Both lists are sorted by name and disjoint: merge them as the registry would.
        for mf in &own {
            while let Some((_, block)) = theirs.next_if(|(name, _)| *name < mf.name()) {
                out.extend_from_slice(block.as_bytes());
            }
            encoder.encode(std::slice::from_ref(mf), &mut out)?;
        }
        for (_, block) in theirs {
            out.extend_from_slice(block.as_bytes());
        }
        Ok(out)
    }

    /// Publishes a new snapshot for scrapes and `/status`.
    pub fn publish(&self, snapshot: Snapshot) {
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(snapshot);
        }
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }
}

struct SnapshotCollector {
    snapshot: SharedSnapshot,
    descs: Vec<Desc>,
}

/// Builds metric families in insertion order.
#[derive(Default)]
struct Families {
    out: Vec<MetricFamily>,
}

impl Sink for Families {
    fn add(&mut self, name: &str, help: &str, ty: MetricType, labels: &[(&str, &str)], value: f64) {
        let idx = match self.out.iter().position(|f| f.name() == name) {
            Some(i) => i,
            None => {
                let mut f = MetricFamily::default();
                f.set_name(name.to_string());
                f.set_help(help.to_string());
                f.set_field_type(ty);
                self.out.push(f);
                self.out.len() - 1
            }
        };
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name((*k).to_string());
                    l.set_value((*v).to_string());
                    l
                })
                .collect(),
        );
        match ty {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
        }
        self.out[idx].mut_metric().push(m);
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(_) => return Vec::new(),
        };
        render(&s)
    }
}

/// Renders a snapshot into metric families (public for benchmarks and tests).
pub fn render(s: &Snapshot) -> Vec<MetricFamily> {
    let mut f = Families::default();
    render_into(&mut f, s);
    f.out
}

/// Renders a snapshot straight into exposition text (what `/metrics` serves).
pub fn render_text(s: &Snapshot) -> Encoded {
    let mut f = TextFamilies::default();
    render_into(&mut f, s);
    f.finish()
}

/// Feeds every sample of a snapshot to `f`.
pub fn render_into(f: &mut impl Sink, s: &Snapshot) {
    agent::render(f, s);
    rdma::render(f, s);
    ping::render(f, s);
    host::render(f, s);
    endpoint::render(f, s);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fabricwatch_proto::{
        agent_config::{HostConfig, RdmaConfig},
        report::{AgentState, PeerReport},
        Severity,
    };
    use prometheus::{Encoder, TextEncoder};

    use super::*;
    use crate::{
        health::Problem,
        host::HostCollector,
        rdma::{RdmaCollector, ReadMode},
        snapshot::PeerTotals,
    };

    fn registry_text(m: &AgentMetrics) -> String {
        let mut want = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut want)
            .expect("encode");
        String::from_utf8(want).expect("utf8")
    }

    /// A snapshot with every kind of series: the RoCE fixture read twice (rates), the real
    /// /proc, two peers (one with a label value that needs escaping) and problems.
    fn rich_snapshot() -> Snapshot {
        let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/roce/sys");
        let mut rdma = RdmaCollector::new(ReadMode::KeepOpen);
        rdma.collect(&sysfs, &RdmaConfig::default(), 0.0);
        let rdma = rdma.collect(&sysfs, &RdmaConfig::default(), 1.0);
        assert!(!rdma.ports.is_empty(), "the fixture has ports");
        let host = HostCollector::new(Path::new("/proc")).collect(&HostConfig::default(), 0.0);
        let mut s = Snapshot {
            state: AgentState::Running,
            rdma_ports: rdma.ports,
            disks: host.disks,
            netdevs: host.netdevs,
            ..Snapshot::default()
        };
        s.report.seq = 3;
        s.report.host = host.report;
        s.icmp_timestamps = Some(crate::ping::icmp::TimestampCounts {
            tx_kernel: 40,
            tx_user: 1,
            rx_kernel: 41,
            rx_user: 0,
            icmp_errors: 2,
        });
        s.durations_seconds.insert("rdma".into(), 0.000_25);
        s.durations_seconds.insert("host".into(), 0.001);
        for (peer, external) in [("node-b", false), ("gw \"x\"\\y", true), ("10.0.0.1", true)] {
            s.report.ping.push(PeerReport {
                peer: peer.into(),
                external,
                sent: 5,
                received: 4,
                loss_percent: 20.0,
                rtt_min_seconds: Some(1e-4),
                rtt_p99_seconds: Some(0.002),
                jitter_seconds: Some(3e-5),
                ..PeerReport::default()
            });
            s.ping_totals.insert(
                peer.into(),
                PeerTotals {
                    sent: 50,
                    received: 41,
                },
            );
        }
        s.problems.push(Problem {
            component: "ping",
            subject: "node-b".into(),
            severity: Severity::Critical,
            value: 20.0,
            message: "loss".into(),
        });
        s
    }

    #[test]
    fn served_text_equals_the_registry_encoding() {
        let m = AgentMetrics::new().expect("metrics");
        // Before any snapshot: only the defaults.
        assert_eq!(
            String::from_utf8(m.encode().expect("encode")).expect("utf8"),
            registry_text(&m)
        );
        m.collector_errors
            .with_label_values(&["rdma", "not_available"])
            .inc_by(2);
        m.push_total.with_label_values(&["ok"]).inc();
        m.push_buffered.set(3);
        m.publish(rich_snapshot());
        let first = String::from_utf8(m.encode().expect("encode")).expect("utf8");
        assert_eq!(first, registry_text(&m));
        assert!(first.contains("fabricwatch_rdma_port_counters_total{device="));
        assert!(first.contains(r#"peer="gw \"x\"\\y""#));
        assert!(first.contains(
            "fabricwatch_ping_rtt_timestamps_total{direction=\"transmit\",source=\"kernel\"} 40"
        ));
        assert!(first.contains("fabricwatch_ping_icmp_errors_total 2"));
        // A scrape between collections serves the cached snapshot text but current counters.
        m.push_total.with_label_values(&["ok"]).inc();
        let second = String::from_utf8(m.encode().expect("encode")).expect("utf8");
        assert_eq!(second, registry_text(&m));
        assert!(second.contains("fabricwatch_agent_push_total{result=\"ok\"} 2"));
        // A new snapshot replaces the cached text.
        let mut next = rich_snapshot();
        next.state = AgentState::Degraded;
        m.publish(next);
        let third = String::from_utf8(m.encode().expect("encode")).expect("utf8");
        assert_eq!(third, registry_text(&m));
        assert!(third.contains("fabricwatch_agent_state{state=\"degraded\"} 1"));
    }
}
