//! The agent's latest state as served on `/status` and written in standalone mode.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use fabricwatch_proto::report::{AgentReport, AgentState};

use crate::{
    health::{Health, Problem},
    host::{DiskIo, NetdevTotals},
    ping::icmp::{SocketKind, TimestampCounts},
    rdma::PortView,
};

/// Probes sent and answered to one peer since the agent started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerTotals {
    /// Probes sent.
    pub sent: u64,
    /// Replies received in time.
    pub received: u64,
}

/// A skipped file or failed probe, aggregated by collector and kind.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCount {
    /// Collector.
    pub collector: String,
    /// Kind label.
    pub kind: String,
    /// Occurrences in the last cycle.
    pub count: u64,
}

/// Everything `/status` shows. The default (published before the first cycle) is
/// `Healthy` with no problems: the agent has crossed no threshold yet.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Agent state machine.
    pub state: AgentState,
    /// Worst problem severity.
    pub health: Health,
    /// Thresholds crossed in the last cycle.
    pub problems: Vec<Problem>,
    /// The last report built (what analytics receives).
    pub report: AgentReport,
    /// RDMA ports with device info, transport, supported counters and skipped files.
    pub rdma_ports: Vec<PortView>,
    /// Block device IO counters.
    pub disks: Vec<DiskIo>,
    /// Network device counters.
    pub netdevs: Vec<NetdevTotals>,
    /// Probe totals per peer name since start.
    pub ping_totals: BTreeMap<String, PeerTotals>,
    /// ICMP socket in use, once opened.
    pub icmp_socket: Option<SocketKind>,
    /// Which timestamps the ICMP RTTs used since start, once the socket is open.
    pub icmp_timestamps: Option<TimestampCounts>,
    /// Errors of the last cycle by collector and kind.
    pub errors: Vec<ErrorCount>,
    /// Seconds each collector took in the last cycle.
    pub durations_seconds: BTreeMap<String, f64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            state: AgentState::default(),
            health: Health::Healthy,
            problems: Vec::new(),
            report: AgentReport::default(),
            rdma_ports: Vec::new(),
            disks: Vec::new(),
            netdevs: Vec::new(),
            ping_totals: BTreeMap::new(),
            icmp_socket: None,
            icmp_timestamps: None,
            errors: Vec::new(),
            durations_seconds: BTreeMap::new(),
        }
    }
}

/// Writes `snapshot` as `<dir>/snapshot-<unix seconds>.json` and `<dir>/latest.json`
/// (each via a temporary file and rename, so readers never see half a file) and keeps the
/// `keep` newest timestamped files.
///
/// # Errors
/// IO or serialization errors, with the path.
pub fn write_snapshot(dir: &Path, snapshot: &Snapshot, keep: usize) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create snapshot dir {}: {e}", dir.display()))?;
    let body = serde_json::to_vec_pretty(snapshot)?;
    let ts = snapshot.report.collected_at.timestamp();
    let path = dir.join(format!("snapshot-{ts}.json"));
    for target in [&path, &dir.join("latest.json")] {
        let tmp = target.with_extension("json.tmp");
        std::fs::write(&tmp, &body)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, target)
            .map_err(|e| anyhow::anyhow!("cannot rename to {}: {e}", target.display()))?;
    }
    let mut old: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".json"))
        })
        .collect();
    old.sort();
    if old.len() > keep {
        for p in &old[..old.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(path)
}
