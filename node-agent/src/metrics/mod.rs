//! Prometheus metrics. Collector data is rendered at scrape time from the latest
//! [`Snapshot`] (so series of vanished ports or peers disappear with them, as in
//! node_exporter); the agent's own counters are ordinary registered metrics.
//!
//! Names follow the Prometheus conventions: `fabricwatch_` prefix, base units (bytes,
//! seconds, ratios 0–1), counters end in `_total`; labels are bounded (devices, ports,
//! mount points, interfaces, and at most `maxPeers` peers).

use std::sync::{Arc, Mutex, RwLock};

use prometheus::{
    core::{Collector, Desc},
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
    IntCounterVec, IntGauge, Opts, Registry,
};

use crate::{
    exposition::{Encoded, Sink, TextFamilies},
    rdma::CONGESTION_COUNTERS,
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

const STATES: &[(fabricwatch_proto::report::AgentState, &str)] = &[
    (fabricwatch_proto::report::AgentState::Starting, "starting"),
    (fabricwatch_proto::report::AgentState::Running, "running"),
    (fabricwatch_proto::report::AgentState::Degraded, "degraded"),
    (fabricwatch_proto::report::AgentState::Error, "error"),
    (fabricwatch_proto::report::AgentState::Stopped, "stopped"),
];

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
    for (state, name) in STATES {
        f.gauge(
            "fabricwatch_agent_state",
            "Agent state machine: 1 for the current state (starting, running, degraded, error, stopped).",
            &[("state", name)],
            if s.state == *state { 1.0 } else { 0.0 },
        );
    }
    for sev in ["warning", "critical"] {
        let n = s
            .problems
            .iter()
            .filter(|p| format!("{:?}", p.severity).to_ascii_lowercase() == sev)
            .count();
        f.gauge(
            "fabricwatch_agent_problems",
            "Thresholds crossed in the last collection, by severity.",
            &[("severity", sev)],
            n as f64,
        );
    }
    for (collector, secs) in &s.durations_seconds {
        f.gauge(
            "fabricwatch_agent_collection_duration_seconds",
            "Time the last collection took, by collector.",
            &[("collector", collector)],
            *secs,
        );
    }
    if s.report.seq > 0 {
        f.gauge(
            "fabricwatch_agent_last_collection_timestamp_seconds",
            "Unix time of the last completed collection.",
            &[],
            s.report.collected_at.timestamp_millis() as f64 / 1000.0,
        );
    }
    render_rdma(f, s);
    render_ping(f, s);
    render_host(f, s);
    render_endpoints(f, s);
}

/// Endpoint probe results, named after blackbox_exporter's (`probe_success`,
/// `probe_http_duration_seconds{phase}`, `probe_duration_seconds`,
/// `probe_http_status_code`, `probe_ssl_earliest_cert_expiry`) under `fabricwatch_endpoint_`.
fn render_endpoints(f: &mut impl Sink, s: &Snapshot) {
    for e in &s.report.endpoints {
        let kind = e.kind.as_str();
        let l: &[(&str, &str)] = &[("endpoint", &e.name), ("kind", kind)];
        f.gauge(
            "fabricwatch_endpoint_up",
            "1 when the last probe of the endpoint succeeded (slow included), else 0.",
            l,
            if e.state == fabricwatch_proto::endpoint::EndpointState::Down {
                0.0
            } else {
                1.0
            },
        );
        f.gauge(
            "fabricwatch_endpoint_duration_seconds",
            "Duration of the last probe of the endpoint, every phase and redirect included.",
            l,
            e.duration_seconds,
        );
        for (phase, v) in e.phases.iter() {
            f.gauge(
                "fabricwatch_endpoint_phase_duration_seconds",
                "Duration of each phase of the last probe: resolve, connect, tls, processing (request to first response byte), transfer.",
                &[("endpoint", &e.name), ("kind", kind), ("phase", phase)],
                v,
            );
        }
        if let Some(c) = e.status_code {
            f.gauge(
                "fabricwatch_endpoint_http_status_code",
                "HTTP status code of the last probe's final response.",
                l,
                f64::from(c),
            );
        }
        if let Some(t) = e.tls_not_after {
            f.gauge(
                "fabricwatch_endpoint_tls_certificate_expiry_timestamp_seconds",
                "Unix time at which the earliest certificate of the endpoint's chain expires.",
                l,
                t.timestamp() as f64,
            );
        }
        f.gauge(
            "fabricwatch_endpoint_last_probe_timestamp_seconds",
            "Unix time at which the last probe of the endpoint started.",
            l,
            e.probed_at.timestamp_millis() as f64 / 1000.0,
        );
    }
}

fn render_rdma(f: &mut impl Sink, s: &Snapshot) {
    for p in &s.rdma_ports {
        let port = p.sample.port.to_string();
        let l: &[(&str, &str)] = &[("device", &p.sample.device), ("port", &port)];
        let info = &p.sample.info;
        let id = &p.sample.identity;
        f.gauge(
            "fabricwatch_rdma_port_info",
            "RDMA port identity; always 1.",
            &[
                ("device", &p.sample.device),
                ("port", &port),
                ("link_layer", &p.sample.link_layer),
                ("transport", p.sample.transport.as_str()),
                ("netdev", p.sample.netdev.as_deref().unwrap_or("")),
                ("fw_ver", info.fw_ver.as_deref().unwrap_or("")),
                ("board_id", info.board_id.as_deref().unwrap_or("")),
                ("hca_type", info.hca_type.as_deref().unwrap_or("")),
                ("node_guid", info.node_guid.as_deref().unwrap_or("")),
                ("lid", &opt(id.lid.map(|v| format!("{v:#x}")))),
                ("sm_lid", &opt(id.sm_lid.map(|v| format!("{v:#x}")))),
                ("sm_sl", &opt(id.sm_sl)),
                ("lmc", &opt(id.lmc)),
                ("link_width", id.link_width.as_deref().unwrap_or("")),
                ("link_speed", id.link_speed.as_deref().unwrap_or("")),
            ],
            1.0,
        );
        for g in &id.gids {
            f.gauge(
                "fabricwatch_rdma_port_gid_info",
                "A populated GID table entry (gids/<index>, gid_attrs/types, gid_attrs/ndevs); always 1.",
                &[
                    ("device", &p.sample.device),
                    ("port", &port),
                    ("index", &g.index.to_string()),
                    ("gid", &g.gid),
                    ("gid_type", g.gid_type.as_deref().unwrap_or("")),
                    ("netdev", g.netdev.as_deref().unwrap_or("")),
                ],
                1.0,
            );
        }
        if p.sample.transport == crate::rdma::parse::Transport::Roce {
            render_roce(f, p, &port);
        }
        if let Some((n, _)) = &p.sample.state {
            f.gauge(
                "fabricwatch_rdma_port_state",
                "Logical port state number (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER).",
                l,
                f64::from(*n),
            );
        }
        if let Some((n, _)) = &p.sample.phys_state {
            f.gauge(
                "fabricwatch_rdma_port_physical_state",
                "Physical port state number (2 Polling, 3 Disabled, 5 LinkUp, ...).",
                l,
                f64::from(*n),
            );
        }
        f.gauge(
            "fabricwatch_rdma_port_active",
            "1 when the port state is ACTIVE.",
            l,
            if p.is_active() { 1.0 } else { 0.0 },
        );
        if let Some(r) = p.sample.rate_gbps {
            f.gauge(
                "fabricwatch_rdma_port_rate_bytes_per_second",
                "Link rate from `rate`, in bytes per second.",
                l,
                r * 1e9 / 8.0,
            );
        }
        if let Some(b) = p.rx_bytes() {
            f.counter(
                "fabricwatch_rdma_port_received_bytes_total",
                "Bytes received (port_rcv_data x 4).",
                l,
                b as f64,
            );
        }
        if let Some(b) = p.tx_bytes() {
            f.counter(
                "fabricwatch_rdma_port_transmitted_bytes_total",
                "Bytes transmitted (port_xmit_data x 4).",
                l,
                b as f64,
            );
        }
        for (name, key) in [
            (
                "fabricwatch_rdma_port_receive_bytes_per_second",
                "port_rcv_data",
            ),
            (
                "fabricwatch_rdma_port_transmit_bytes_per_second",
                "port_xmit_data",
            ),
        ] {
            if let Some(r) = p.rates.get(key) {
                f.gauge(
                    name,
                    "Data rate over the last interval, bytes per second.",
                    l,
                    r * 4.0,
                );
            }
        }
        f.counter(
            "fabricwatch_rdma_port_link_flaps_total",
            "Link flaps seen since the agent started (link_downed increments and ACTIVE to non-ACTIVE transitions).",
            l,
            p.link_flaps_total as f64,
        );
        let all = p.all_counters();
        f.gauge(
            "fabricwatch_rdma_port_supported_counters",
            "Number of counters this port could read (names in /status).",
            l,
            all.len() as f64,
        );
        for (name, v) in all {
            if name == "port_rcv_data" || name == "port_xmit_data" {
                continue;
            }
            f.counter(
                "fabricwatch_rdma_port_counters_total",
                "Every readable counters/ and hw_counters/ file under its kernel name (data counters are in the *_bytes_total metrics).",
                &[("device", &p.sample.device), ("port", &port), ("counter", name)],
                *v as f64,
            );
        }
        for (kernel, suffix, help) in CONGESTION_COUNTERS {
            if let Some(v) = all.get(*kernel) {
                f.counter(
                    &format!("fabricwatch_rdma_congestion_{suffix}"),
                    help,
                    l,
                    *v as f64,
                );
            }
        }
    }
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The Ethernet side of a RoCE port: mapped driver statistics, and per priority whether
/// PFC and DCQCN are on (`unknown` when the driver does not say).
fn render_roce(f: &mut impl Sink, p: &crate::rdma::PortView, port: &str) {
    let netdev = p.sample.netdev.as_deref().unwrap_or("");
    let eth = p.ethtool.as_deref();
    if let Some(e) = eth {
        for st in &e.statistics {
            f.counter(
                "fabricwatch_rdma_ethtool_statistics_total",
                "Ethernet driver statistics of the RoCE netdev (ETHTOOL_GSTATS) under the driver's name (priority written [p]), with the driver-independent signal.",
                &[
                    ("device", &p.sample.device),
                    ("port", port),
                    ("netdev", netdev),
                    ("driver", &e.driver),
                    ("statistic", st.statistic),
                    ("signal", st.signal),
                    ("priority", &opt(st.priority)),
                ],
                st.value as f64,
            );
        }
    }
    let dcqcn = eth.and_then(|e| e.dcqcn.as_ref());
    let pfc = eth.and_then(|e| e.pfc_enabled_priorities.as_ref());
    for prio in 0u8..8 {
        let state = |known: bool, on: bool| match (known, on) {
            (false, _) => "unknown",
            (true, true) => "enabled",
            (true, false) => "disabled",
        };
        let unknown = dcqcn.is_none_or(|d| d.unknown_priorities.contains(&prio));
        f.gauge(
            "fabricwatch_rdma_roce_priority_info",
            "Per 802.1p priority of a RoCE port: PFC (from the driver's statistics names, mlx5) and DCQCN reaction/notification point (ecn/ sysfs of MLNX_OFED); unknown where the driver does not expose it. Always 1.",
            &[
                ("device", &p.sample.device),
                ("port", port),
                ("netdev", netdev),
                ("priority", &prio.to_string()),
                ("pfc", state(pfc.is_some(), pfc.is_some_and(|v| v.contains(&prio)))),
                (
                    "dcqcn_reaction_point",
                    state(!unknown, dcqcn.is_some_and(|d| d.rp_enabled_priorities.contains(&prio))),
                ),
                (
                    "dcqcn_notification_point",
                    state(!unknown, dcqcn.is_some_and(|d| d.np_enabled_priorities.contains(&prio))),
                ),
            ],
            1.0,
        );
    }
    if let Some(d) = dcqcn {
        for (name, v) in &d.parameters {
            f.gauge(
                "fabricwatch_rdma_dcqcn_parameter",
                "DCQCN parameter files under ecn/roce_rp/ and ecn/roce_np/ (MLNX_OFED), as read.",
                &[
                    ("device", &p.sample.device),
                    ("port", port),
                    ("netdev", netdev),
                    ("parameter", name),
                ],
                *v as f64,
            );
        }
    }
}

fn render_ping(f: &mut impl Sink, s: &Snapshot) {
    if let Some(t) = &s.icmp_timestamps {
        for (direction, source, n) in [
            ("transmit", "kernel", t.tx_kernel),
            ("transmit", "user", t.tx_user),
            ("receive", "kernel", t.rx_kernel),
            ("receive", "user", t.rx_user),
        ] {
            f.counter(
                "fabricwatch_ping_rtt_timestamps_total",
                "ICMP replies whose RTT used a kernel or a user-space timestamp at its transmit or receive end (kernel: SO_TIMESTAMPING / SO_TIMESTAMPNS).",
                &[("direction", direction), ("source", source)],
                n as f64,
            );
        }
        f.counter(
            "fabricwatch_ping_icmp_errors_total",
            "ICMP probes ended by an ICMP error (destination unreachable, TTL exceeded, ...) since start.",
            &[],
            t.icmp_errors as f64,
        );
    }
    for p in &s.report.ping {
        let ext = if p.external { "true" } else { "false" };
        let l: &[(&str, &str)] = &[("peer", &p.peer), ("external", ext)];
        for (stat, v) in [
            ("min", p.rtt_min_seconds),
            ("avg", p.rtt_avg_seconds),
            ("max", p.rtt_max_seconds),
            ("p50", p.rtt_p50_seconds),
            ("p99", p.rtt_p99_seconds),
        ] {
            if let Some(v) = v {
                f.gauge(
                    "fabricwatch_ping_rtt_seconds",
                    "Round-trip time over the last interval by statistic (min, avg, max, p50, p99).",
                    &[("peer", &p.peer), ("external", ext), ("stat", stat)],
                    v,
                );
            }
        }
        if let Some(j) = p.jitter_seconds {
            f.gauge(
                "fabricwatch_ping_jitter_seconds",
                "RFC 3550 interarrival jitter of the RTT.",
                l,
                j,
            );
        }
        f.gauge(
            "fabricwatch_ping_loss_ratio",
            "Share of probes lost in the last interval, 0-1.",
            l,
            p.loss_percent / 100.0,
        );
        f.gauge(
            "fabricwatch_ping_up",
            "1 when at least one probe was answered in the last interval.",
            l,
            if p.received > 0 { 1.0 } else { 0.0 },
        );
        if let Some(t) = s.ping_totals.get(&p.peer) {
            f.counter(
                "fabricwatch_ping_probes_sent_total",
                "Probes sent since start.",
                l,
                t.sent as f64,
            );
            f.counter(
                "fabricwatch_ping_probes_received_total",
                "Replies received in time since start.",
                l,
                t.received as f64,
            );
        }
    }
}

fn render_host(f: &mut impl Sink, s: &Snapshot) {
    let Some(h) = &s.report.host else {
        return;
    };
    f.gauge(
        "fabricwatch_host_cpu_usage_ratio",
        "CPU busy share over the interval, 0-1.",
        &[],
        h.cpu_usage_percent / 100.0,
    );
    f.gauge(
        "fabricwatch_host_cpus",
        "Online CPUs.",
        &[],
        f64::from(h.cpus),
    );
    f.gauge(
        "fabricwatch_host_load1",
        "1-minute load average.",
        &[],
        h.load1,
    );
    f.gauge(
        "fabricwatch_host_load5",
        "5-minute load average.",
        &[],
        h.load5,
    );
    f.gauge(
        "fabricwatch_host_load15",
        "15-minute load average.",
        &[],
        h.load15,
    );
    f.gauge(
        "fabricwatch_host_memory_total_bytes",
        "MemTotal.",
        &[],
        h.memory_total_bytes as f64,
    );
    f.gauge(
        "fabricwatch_host_memory_available_bytes",
        "MemAvailable.",
        &[],
        h.memory_available_bytes as f64,
    );
    f.gauge(
        "fabricwatch_host_memory_used_ratio",
        "(MemTotal - MemAvailable) / MemTotal.",
        &[],
        h.memory_used_percent / 100.0,
    );
    f.gauge(
        "fabricwatch_host_swap_used_ratio",
        "Swap in use, 0-1.",
        &[],
        h.swap_used_percent / 100.0,
    );
    if let Some(up) = h.uptime_seconds {
        f.gauge(
            "fabricwatch_host_uptime_seconds",
            "Seconds since boot.",
            &[],
            up,
        );
    }
    for fs in &h.filesystems {
        let l: &[(&str, &str)] = &[("mountpoint", &fs.mountpoint)];
        f.gauge(
            "fabricwatch_host_filesystem_size_bytes",
            "Filesystem size.",
            l,
            fs.size_bytes as f64,
        );
        f.gauge(
            "fabricwatch_host_filesystem_avail_bytes",
            "Bytes available to unprivileged users.",
            l,
            fs.avail_bytes as f64,
        );
        f.gauge(
            "fabricwatch_host_filesystem_free_ratio",
            "avail / size.",
            l,
            fs.free_percent / 100.0,
        );
    }
    for n in &s.netdevs {
        let l: &[(&str, &str)] = &[("device", &n.name)];
        for (name, v) in [
            ("fabricwatch_host_network_receive_bytes_total", n.rx_bytes),
            ("fabricwatch_host_network_transmit_bytes_total", n.tx_bytes),
            (
                "fabricwatch_host_network_receive_packets_total",
                n.rx_packets,
            ),
            (
                "fabricwatch_host_network_transmit_packets_total",
                n.tx_packets,
            ),
            ("fabricwatch_host_network_receive_errors_total", n.rx_errors),
            (
                "fabricwatch_host_network_transmit_errors_total",
                n.tx_errors,
            ),
            ("fabricwatch_host_network_receive_drops_total", n.rx_drops),
            ("fabricwatch_host_network_transmit_drops_total", n.tx_drops),
        ] {
            f.counter(name, "From /proc/net/dev.", l, v as f64);
        }
    }
    for d in &s.disks {
        let l: &[(&str, &str)] = &[("device", &d.device)];
        f.counter(
            "fabricwatch_host_disk_reads_completed_total",
            "Completed reads.",
            l,
            d.reads_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_writes_completed_total",
            "Completed writes.",
            l,
            d.writes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_read_bytes_total",
            "Bytes read.",
            l,
            d.read_bytes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_written_bytes_total",
            "Bytes written.",
            l,
            d.written_bytes_total as f64,
        );
        f.counter(
            "fabricwatch_host_disk_io_time_seconds_total",
            "Seconds spent doing IO.",
            l,
            d.io_time_seconds_total,
        );
    }
    if let Some(p) = &h.pressure {
        for (res, kind, v) in [
            ("cpu", "some", p.cpu_some_avg10),
            ("memory", "some", p.memory_some_avg10),
            ("memory", "full", p.memory_full_avg10),
            ("io", "some", p.io_some_avg10),
            ("io", "full", p.io_full_avg10),
        ] {
            f.gauge(
                "fabricwatch_host_pressure_avg10_ratio",
                "PSI avg10: share of the last 10 s that tasks stalled on the resource, 0-1.",
                &[("resource", res), ("kind", kind)],
                v / 100.0,
            );
        }
    }
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
