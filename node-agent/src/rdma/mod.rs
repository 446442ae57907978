//! The rdma collector: InfiniBand, RoCE, iWARP and Omni-Path ports under
//! `<sysfs_root>/class/infiniband`.
//!
//! * [`parse`]: pure parsers of the attribute files.
//! * [`delta`]: pure counter deltas, rates and link-flap detection.
//! * [`sysfs`]: the IO layer that walks the tree and reads files.
//!
//! [`RdmaCollector`] ties them together and keeps the per-port history between collections.

pub mod delta;
pub mod parse;
pub mod sysfs;

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
};

use fabricwatch_proto::{
    agent_config::RdmaConfig,
    report::{PortIdentity, RdmaPortReport},
};

use crate::{
    agent::{Assembly, Fold},
    ethtool::{EthtoolCollector, EthtoolError, NetdevView},
    health::{self, CollectorResult},
};

use parse::BadValue;
pub use sysfs::{FileError, FileErrorKind, PortSample, ReadMode};

/// `port_rcv_data` / `port_xmit_data` count 4-octet words (IBA spec vol. 1, §16.1.3.5,
/// PortRcvData "divided by 4"); multiply by this to get bytes.
pub const DATA_WORD_BYTES: u64 = 4;

/// Congestion-control and ordering signals exported as their own metrics (mlx5 names,
/// `Documentation/ABI/testing/sysfs-class-infiniband` and the mlx5 counter docs):
/// (kernel counter, metric name suffix, help).
pub const CONGESTION_COUNTERS: &[(&str, &str, &str)] = &[
    (
        "np_cnp_sent",
        "cnp_sent_total",
        "Congestion Notification Packets sent by this port as notification point (np_cnp_sent).",
    ),
    (
        "rp_cnp_handled",
        "cnp_handled_total",
        "CNPs handled by this port as reaction point, i.e. rate reductions (rp_cnp_handled).",
    ),
    (
        "rp_cnp_ignored",
        "cnp_ignored_total",
        "CNPs received and ignored by the reaction point (rp_cnp_ignored).",
    ),
    (
        "np_ecn_marked_roce_packets",
        "ecn_marked_packets_total",
        "RoCE packets received with an ECN congestion mark (np_ecn_marked_roce_packets).",
    ),
    (
        "out_of_sequence",
        "out_of_sequence_total",
        "Packets received out of sequence (out_of_sequence).",
    ),
    (
        "packet_seq_err",
        "packet_sequence_errors_total",
        "NAK sequence errors received (packet_seq_err).",
    ),
    (
        "implied_nak_seq_err",
        "implied_nak_sequence_errors_total",
        "Implied NAK sequence errors (implied_nak_seq_err).",
    ),
    (
        "local_ack_timeout_err",
        "local_ack_timeouts_total",
        "Local ACK timeouts on the requester side (local_ack_timeout_err).",
    ),
    (
        "out_of_buffer",
        "out_of_buffer_total",
        "Packets dropped for lack of a receive WQE (out_of_buffer).",
    ),
];

/// Counters whose increase counts as an RDMA error for health classification (the
/// `rdma_errors_per_minute` threshold).
pub const ERROR_COUNTERS: &[&str] = &[
    "symbol_error",
    "link_error_recovery",
    "local_link_integrity_errors",
    "port_rcv_errors",
    "excessive_buffer_overrun_errors",
];

/// One port after a collection: what was read plus what the history adds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortView {
    /// Raw sample.
    #[serde(flatten)]
    pub sample: PortSample,
    /// Per-second rates by kernel counter name (`counters/` and `hw_counters/` merged).
    pub rates: BTreeMap<String, f64>,
    /// Flaps seen since start.
    pub link_flaps_total: u64,
    /// Counters that reset in this interval.
    pub resets: Vec<String>,
    /// Names of every counter this port could read (capability discovery).
    pub supported_counters: Vec<String>,
    /// Ethernet driver statistics and DCQCN settings of the RoCE netdev.
    #[serde(serialize_with = "serialize_shared")]
    pub ethtool: Option<Arc<NetdevView>>,
    #[serde(skip)]
    all: Arc<BTreeMap<String, u64>>,
}

impl PortView {
    /// `counters/` and `hw_counters/` in one map; a `hw_counters` name that collides with a
    /// `counters` name is kept as `hw_counters/<name>`.
    pub fn all_counters(&self) -> &BTreeMap<String, u64> {
        &self.all
    }

    /// Received bytes (`port_rcv_data` × 4), when readable.
    pub fn rx_bytes(&self) -> Option<u64> {
        self.sample
            .counters
            .get("port_rcv_data")
            .map(|w| w.saturating_mul(DATA_WORD_BYTES))
    }

    /// Transmitted bytes (`port_xmit_data` × 4), when readable.
    pub fn tx_bytes(&self) -> Option<u64> {
        self.sample
            .counters
            .get("port_xmit_data")
            .map(|w| w.saturating_mul(DATA_WORD_BYTES))
    }

    /// Sum of the [`ERROR_COUNTERS`] rates, per second (0 when none has a rate yet).
    pub fn error_rate(&self) -> f64 {
        ERROR_COUNTERS
            .iter()
            .filter_map(|c| self.rates.get(*c))
            .sum()
    }

    /// Whether `state` reads `ACTIVE`.
    pub fn is_active(&self) -> bool {
        self.sample
            .state
            .as_ref()
            .is_some_and(|(_, s)| s == "ACTIVE")
    }

    /// The wire form for analytics.
    pub fn to_report(&self) -> RdmaPortReport {
        RdmaPortReport {
            device: self.sample.device.clone(),
            port: self.sample.port,
            // The wire contract: empty for iWARP and Omni-Path, whose sysfs `link_layer`
            // misleadingly reads `InfiniBand`.
            link_layer: match self.sample.transport {
                parse::Transport::Iwarp | parse::Transport::OmniPath => String::new(),
                _ => self.sample.link_layer.clone(),
            },
            state: self
                .sample
                .state
                .as_ref()
                .map(|s| s.1.clone())
                .unwrap_or_default(),
            phys_state: self
                .sample
                .phys_state
                .as_ref()
                .map(|s| s.1.clone())
                .unwrap_or_default(),
            rate_gbps: self.sample.rate_gbps,
            netdev: self.sample.netdev.clone(),
            counters: (*self.all).clone(),
            rates: self.rates.clone(),
            link_flaps_total: self.link_flaps_total,
            identity: Some(self.identity_report()),
            ethtool: self.ethtool.as_ref().and_then(|e| e.to_report()),
            dcqcn: self.ethtool.as_ref().and_then(|e| e.dcqcn.clone()),
        }
    }

    /// The port and device identity in wire form.
    pub fn identity_report(&self) -> PortIdentity {
        let (id, info) = (&self.sample.identity, &self.sample.info);
        PortIdentity {
            lid: id.lid,
            sm_lid: id.sm_lid,
            sm_sl: id.sm_sl,
            lmc: id.lmc,
            link_width: id.link_width.clone(),
            link_speed: id.link_speed.clone(),
            gids: id.gids.clone(),
            fw_ver: info.fw_ver.clone(),
            board_id: info.board_id.clone(),
            hca_type: info.hca_type.clone(),
            node_guid: info.node_guid.clone(),
        }
    }
}

fn serialize_shared<S: serde::Serializer>(
    v: &Option<Arc<NetdevView>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&v.as_deref(), s)
}

fn merged(s: &PortSample) -> BTreeMap<String, u64> {
    let mut all = s.counters.clone();
    for (k, v) in &s.hw_counters {
        if all.contains_key(k) {
            all.insert(format!("hw_counters/{k}"), *v);
        } else {
            all.insert(k.clone(), *v);
        }
    }
    all
}

/// Result of one rdma collection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RdmaOutcome {
    /// Every selected port.
    pub ports: Vec<PortView>,
    /// Files skipped in this collection (never fatal for a device).
    pub errors: Vec<FileError>,
    /// Set when the device class directory itself could not be listed.
    pub fatal: Option<FileError>,
    /// Netdevs whose Ethernet statistics or DCQCN settings were (partly) skipped.
    pub ethtool_errors: Vec<EthtoolError>,
}

impl RdmaOutcome {
    /// How the collection fared. `N/A (no PMA)` is how devices without a PMA (iWARP) say
    /// "unsupported": it is counted and reported but does not degrade the agent; every
    /// other skipped file does. Likewise a netdev whose driver has no statistics, or that
    /// is gone (a RoCE port whose netdev was renamed or removed since sysfs was read), is
    /// counted but does not degrade it.
    pub fn result(&self) -> CollectorResult {
        if self.fatal.is_some() {
            CollectorResult::Failed
        } else if self
            .errors
            .iter()
            .any(|e| e.kind != FileErrorKind::Bad(BadValue::NotAvailable))
            || self
                .ethtool_errors
                .iter()
                .any(|e| !matches!(e.kind, "unsupported" | "not_found"))
        {
            CollectorResult::Partial
        } else {
            CollectorResult::Ok
        }
    }
}

impl Fold for RdmaOutcome {
    /// Skipped sysfs files under `rdma`, skipped Ethernet statistics under `ethtool`.
    fn fold_into(self, a: &mut Assembly<'_>) {
        a.results.push(self.result());
        if let Some(f) = &self.fatal {
            a.error(
                "rdma",
                f.kind.as_str(),
                f.path.display().to_string(),
                f.message.clone(),
            );
        }
        for e in &self.errors {
            a.error(
                "rdma",
                e.kind.as_str(),
                e.path.display().to_string(),
                format!("{}: {}", e.kind.as_str(), e.message),
            );
        }
        for e in &self.ethtool_errors {
            a.error(
                "ethtool",
                e.kind,
                e.subject.clone(),
                format!("{}: {}", e.kind, e.message),
            );
        }
        let wire: Vec<_> = self
            .ports
            .iter()
            .map(|p| (p.to_report(), p.error_rate()))
            .collect();
        a.problems
            .extend(health::classify_rdma(&wire, &a.config.thresholds));
        a.report.rdma = wire.into_iter().map(|(r, _)| r).collect();
        a.snapshot.rdma_ports = self.ports;
    }
}

/// Stateful rdma collector (keeps counter history and open files between collections).
#[derive(Debug, Default)]
pub struct RdmaCollector {
    reader: sysfs::SysfsReader,
    history: HashMap<(String, u32), delta::PortHistory>,
    ethtool: Option<EthtoolCollector>,
}

impl RdmaCollector {
    /// A collector reading files with `mode`.
    pub fn new(mode: ReadMode) -> Self {
        Self {
            reader: sysfs::SysfsReader::new(mode),
            history: HashMap::new(),
            ethtool: None,
        }
    }

    /// Reads every selected port. `now_seconds` is a monotonic clock reading used for rates.
    pub fn collect(
        &mut self,
        sysfs_root: &Path,
        config: &RdmaConfig,
        now_seconds: f64,
    ) -> RdmaOutcome {
        let samples = match sysfs::collect(&mut self.reader, sysfs_root, config) {
            Ok(s) => s,
            Err(e) => {
                return RdmaOutcome {
                    fatal: Some(e),
                    ..RdmaOutcome::default()
                }
            }
        };
        let mut out = RdmaOutcome::default();
        let mut seen = HashMap::new();
        for mut sample in samples {
            let key = (sample.device.clone(), sample.port);
            let all = Arc::new(merged(&sample));
            let state = sample.state.as_ref().map(|s| s.1.as_str()).unwrap_or("");
            let (next, update) =
                delta::update_port(self.history.get(&key), &all, state, now_seconds);
            seen.insert(key, next);
            out.errors.append(&mut sample.errors.clone());
            sample.errors.shrink_to_fit();
            out.ports.push(PortView {
                sample,
                rates: update.rates,
                link_flaps_total: update.flaps_total,
                resets: update.resets,
                supported_counters: all.keys().cloned().collect(),
                all,
                ethtool: None,
            });
        }
        // Ports that disappeared are forgotten; a port that comes back starts fresh.
        self.history = seen;
        if config.ethtool.enabled {
            let eth = self
                .ethtool
                .get_or_insert_with(|| EthtoolCollector::new(&config.ethtool));
            let netdevs: Vec<String> = out
                .ports
                .iter()
                .filter(|p| p.sample.transport == parse::Transport::Roce)
                .filter_map(|p| p.sample.netdev.clone())
                .collect();
            let (mut views, errors) =
                eth.collect(sysfs_root, netdevs.iter().map(String::as_str), now_seconds);
            out.ethtool_errors = errors;
            let views: HashMap<String, Arc<NetdevView>> = std::mem::take(&mut views)
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect();
            for p in &mut out.ports {
                if p.sample.transport == parse::Transport::Roce {
                    p.ethtool = p.sample.netdev.as_ref().and_then(|n| views.get(n).cloned());
                }
            }
        } else {
            self.ethtool = None;
        }
        out
    }
}
