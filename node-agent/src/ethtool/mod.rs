//! Ethernet side of RoCE ports: the driver statistics (`ethtool -S`) of each RoCE netdev
//! that matter for lossless Ethernet (PFC pauses per priority, pause duration, discards,
//! buffer and congestion drops, pause storms, ECN marks), and its DCQCN configuration.
//!
//! * [`names`]: pure mapping of driver statistic names to signals and priorities.
//! * [`text`]: pure parsers of `ethtool -S` / `ethtool -i` text (directory source).
//! * [`ioctl`]: the kernel source (`SIOCETHTOOL`).
//! * [`dcqcn`]: `/sys/class/net/<netdev>/ecn/` (MLNX_OFED only).
//!
//! [`EthtoolCollector`] reads one netdev per RoCE port and keeps the values between
//! collections for rates. Statistics of drivers [`names::Driver`] does not know are not
//! exported (and cost one `ETHTOOL_GDRVINFO`).

pub mod dcqcn;
pub mod ioctl;
pub mod names;
pub mod text;

use std::{
    collections::{BTreeMap, HashMap},
    io,
    path::{Path, PathBuf},
};

use fabricwatch_proto::{
    agent_config::EthtoolConfig,
    report::{DcqcnReport, EthtoolReport},
};

use names::Driver;

/// One exported statistic.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistic {
    /// The driver's name with the priority written `[p]` (`rx_prio[p]_pause`).
    pub statistic: &'static str,
    /// The signal's name ([`names::Signal::as_str`]).
    pub signal: &'static str,
    /// Priority 0–7, absent for port-wide statistics.
    pub priority: Option<u8>,
    /// Cumulative value.
    pub value: u64,
}

/// What one collection read for one netdev.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetdevView {
    /// Driver name; empty when it could not be read.
    pub driver: String,
    /// Mapped statistics (empty for unknown drivers).
    pub statistics: Vec<Statistic>,
    /// Per-second rates by report key (`<signal>` or `<signal>/<priority>`).
    pub rates: BTreeMap<String, f64>,
    /// PFC-enabled priorities, where the driver's names tell (mlx5).
    pub pfc_enabled_priorities: Option<Vec<u8>>,
    /// DCQCN configuration; `None` = unknown.
    pub dcqcn: Option<DcqcnReport>,
}

impl NetdevView {
    /// Report key of a statistic: `<signal>` or `<signal>/<priority>`.
    pub fn key(signal: &str, priority: Option<u8>) -> String {
        match priority {
            Some(p) => format!("{signal}/{p}"),
            None => signal.to_string(),
        }
    }

    /// The wire form; `None` for a driver that is not mapped.
    pub fn to_report(&self) -> Option<EthtoolReport> {
        Driver::from_name(&self.driver)?;
        Some(EthtoolReport {
            driver: self.driver.clone(),
            counters: self
                .statistics
                .iter()
                .map(|s| (Self::key(s.signal, s.priority), s.value))
                .collect(),
            rates: self.rates.clone(),
            pfc_enabled_priorities: self.pfc_enabled_priorities.clone(),
        })
    }
}

/// Why a netdev's statistics or settings were (partly) skipped; the bounded `kind` label of
/// `fabricwatch_agent_collector_errors_total{collector="ethtool"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthtoolError {
    /// The netdev or file.
    pub subject: String,
    /// `not_found`, `unsupported`, `io`, `malformed`, `too_many`, `changing`, `dcqcn`.
    pub kind: &'static str,
    /// Detail.
    pub message: String,
}

/// Where statistics come from.
enum Source {
    /// The kernel, through an ioctl socket (opened on first use).
    Kernel(Option<ioctl::EthtoolSocket>),
    /// `<dir>/<netdev>/{statistics,driver}` text files.
    Directory(PathBuf),
}

/// Largest statistics file read from a directory source (real outputs are < 64 KiB).
const MAX_TEXT: u64 = 4 << 20;

/// Reads netdev statistics and keeps the previous values for rates.
pub struct EthtoolCollector {
    source: Source,
    history: HashMap<String, (f64, BTreeMap<String, u64>)>,
}

impl std::fmt::Debug for EthtoolCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthtoolCollector")
            .field("netdevs", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl EthtoolCollector {
    /// A collector for `config` (the kernel unless `statisticsDir` is set).
    pub fn new(config: &EthtoolConfig) -> Self {
        Self {
            source: match &config.statistics_dir {
                Some(d) => Source::Directory(PathBuf::from(d)),
                None => Source::Kernel(None),
            },
            history: HashMap::new(),
        }
    }

    /// Reads every netdev in `netdevs` (duplicates read once); DCQCN settings from under
    /// `sysfs_root`. `now_seconds` is monotonic time for rates.
    pub fn collect<'a>(
        &mut self,
        sysfs_root: &Path,
        netdevs: impl IntoIterator<Item = &'a str>,
        now_seconds: f64,
    ) -> (BTreeMap<String, NetdevView>, Vec<EthtoolError>) {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for netdev in netdevs {
            if out.contains_key(netdev) {
                continue;
            }
            let mut view = self.read_netdev(netdev, &mut errors);
            let mut dcqcn_errors = Vec::new();
            view.dcqcn = dcqcn::read(sysfs_root, netdev, &mut dcqcn_errors);
            errors.extend(dcqcn_errors.into_iter().map(|e| EthtoolError {
                subject: e.path,
                kind: "dcqcn",
                message: e.message,
            }));
            out.insert(netdev.to_string(), view);
        }
        self.rates(&mut out, now_seconds);
        (out, errors)
    }

    fn rates(&mut self, views: &mut BTreeMap<String, NetdevView>, now: f64) {
        let mut next = HashMap::new();
        for (netdev, view) in views.iter_mut() {
            let cur: BTreeMap<String, u64> = view
                .statistics
                .iter()
                .map(|s| (NetdevView::key(s.signal, s.priority), s.value))
                .collect();
            if let Some((at, prev)) = self.history.get(netdev) {
                let dt = now - at;
                if dt > 0.0 {
                    for (k, v) in &cur {
                        // 64-bit driver counters: a decrease is a reset (no rate).
                        if let Some(p) = prev.get(k).filter(|p| *p <= v) {
                            view.rates.insert(k.clone(), (v - p) as f64 / dt);
                        }
                    }
                }
            }
            next.insert(netdev.clone(), (now, cur));
        }
        self.history = next;
    }

    fn read_netdev(&mut self, netdev: &str, errors: &mut Vec<EthtoolError>) -> NetdevView {
        let mut view = NetdevView::default();
        let raw = match self.read_raw(netdev, &mut view.driver, errors) {
            Ok(r) => r,
            Err(e) => {
                errors.push(EthtoolError {
                    subject: netdev.to_string(),
                    kind: e.0,
                    message: e.1,
                });
                return view;
            }
        };
        let Some((driver, stats)) = raw else {
            return view;
        };
        view.pfc_enabled_priorities =
            names::pfc_enabled_priorities(driver, stats.iter().map(|(n, _)| n.as_str()));
        let mut seen = std::collections::HashSet::new();
        for (name, value) in stats {
            if let Some(m) = names::classify(driver, &name) {
                // A name listed twice (never by a sane driver) is exported once.
                if seen.insert((m.signal, m.priority)) {
                    view.statistics.push(Statistic {
                        statistic: m.statistic,
                        signal: m.signal.as_str(),
                        priority: m.priority,
                        value,
                    });
                }
            }
        }
        view
    }

    /// The driver (into `driver`) and, for a known driver, its raw statistics.
    #[allow(clippy::type_complexity)]
    fn read_raw(
        &mut self,
        netdev: &str,
        driver: &mut String,
        errors: &mut Vec<EthtoolError>,
    ) -> Result<Option<(Driver, Vec<(String, u64)>)>, (&'static str, String)> {
        match &mut self.source {
            Source::Kernel(sock) => {
                if sock.is_none() {
                    *sock = Some(ioctl::EthtoolSocket::open().map_err(|e| ("io", e.to_string()))?);
                }
                let Some(s) = sock.as_ref() else {
                    return Ok(None);
                };
                *driver = s.driver(netdev).map_err(stats_error)?;
                let Some(d) = Driver::from_name(driver) else {
                    return Ok(None);
                };
                Ok(Some((d, s.statistics(netdev).map_err(stats_error)?)))
            }
            Source::Directory(dir) => {
                if netdev.contains('/') || netdev == ".." || netdev == "." {
                    return Err(("malformed", format!("netdev name {netdev:?}")));
                }
                let base = dir.join(netdev);
                let drv = read_text(&base.join("driver"))?;
                *driver = text::parse_driver(&drv).ok_or_else(|| {
                    (
                        "malformed",
                        "no `driver:` line in the driver file".to_string(),
                    )
                })?;
                let Some(d) = Driver::from_name(driver) else {
                    return Ok(None);
                };
                let (stats, bad) = text::parse_statistics(&read_text(&base.join("statistics"))?);
                if let Some(b) = bad.first() {
                    // The good lines are used; the bad ones are reported once, together.
                    errors.push(EthtoolError {
                        subject: netdev.to_string(),
                        kind: "malformed",
                        message: format!(
                            "{} line(s) not `name: value`, first at line {}: {:?}",
                            bad.len(),
                            b.line,
                            b.text
                        ),
                    });
                }
                Ok(Some((d, stats)))
            }
        }
    }
}

fn read_text(path: &Path) -> Result<String, (&'static str, String)> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).map_err(|e| (io_kind(&e), format!("{}: {e}", path.display())))?;
    let mut s = Vec::new();
    f.take(MAX_TEXT)
        .read_to_end(&mut s)
        .map_err(|e| (io_kind(&e), format!("{}: {e}", path.display())))?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

fn io_kind(e: &io::Error) -> &'static str {
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) | (_, Some(libc::ENODEV)) => "not_found",
        _ => "io",
    }
}

fn stats_error(e: ioctl::StatsError) -> (&'static str, String) {
    let kind = match &e {
        ioctl::StatsError::BadName => "malformed",
        ioctl::StatsError::NoDevice => "not_found",
        ioctl::StatsError::Unsupported => "unsupported",
        ioctl::StatsError::TooMany(_) => "too_many",
        ioctl::StatsError::Changing => "changing",
        ioctl::StatsError::Io(_) => "io",
    };
    (kind, e.to_string())
}
