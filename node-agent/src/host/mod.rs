//! The host collector: CPU, load, memory, swap, filesystems, disk IO, network devices,
//! PSI and uptime from a configurable proc root (`/host/proc` in the pod), through the
//! `procfs` crate's parsers.
//!
//! * [`filters`]: pure choices of which filesystems and disks are real.
//! * [`procfile`]: whole-file reads of `/proc` files kept open between collections.
//! * [`statfs`]: `statvfs(3)` with a timeout (a dead NFS server must not hang collection).

pub mod decimal;
pub mod filters;
pub mod procfile;
pub mod statfs;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use fabricwatch_proto::{
    agent_config::HostConfig,
    report::{FilesystemReport, HostReport, NetdevReport, PressureReport},
};
use procfs::{FromBufRead, FromBufReadSI, FromRead};

use crate::{
    agent::{Assembly, Fold},
    health::{self, CollectorResult},
};

/// Cumulative disk IO of one block device (from `/proc/diskstats`, sectors of 512 bytes per
/// `Documentation/admin-guide/iostats.rst`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskIo {
    /// Device name (`sda`, `nvme0n1`).
    pub device: String,
    /// Completed reads.
    pub reads_total: u64,
    /// Completed writes.
    pub writes_total: u64,
    /// Bytes read.
    pub read_bytes_total: u64,
    /// Bytes written.
    pub written_bytes_total: u64,
    /// Seconds spent doing IO (field 10, `io_ticks`).
    pub io_time_seconds_total: f64,
    /// Busy share over the interval, 0–100 (absent on the first collection).
    pub utilization_percent: Option<f64>,
}

/// Cumulative counters of one network device (`/proc/net/dev`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetdevTotals {
    /// Interface name.
    pub name: String,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Transmitted bytes.
    pub tx_bytes: u64,
    /// Received packets.
    pub rx_packets: u64,
    /// Transmitted packets.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Receive drops.
    pub rx_drops: u64,
    /// Transmit drops.
    pub tx_drops: u64,
}

/// Result of one host collection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostOutcome {
    /// The report section (`None` when `/proc/stat` or `/proc/meminfo` is unreadable).
    pub report: Option<HostReport>,
    /// Disk IO counters.
    pub disks: Vec<DiskIo>,
    /// Network device counters.
    pub netdevs: Vec<NetdevTotals>,
    /// Non-fatal problems: (subject, message).
    pub errors: Vec<(String, String)>,
}

impl Fold for HostOutcome {
    /// Failed without a report (`/proc/stat` or `/proc/meminfo` unreadable), Partial when
    /// some other file was.
    fn fold_into(self, a: &mut Assembly<'_>) {
        let HostOutcome {
            report,
            disks,
            netdevs,
            errors,
        } = self;
        a.results.push(match (&report, errors.is_empty()) {
            (None, _) => CollectorResult::Failed,
            (Some(_), false) => CollectorResult::Partial,
            (Some(_), true) => CollectorResult::Ok,
        });
        for (subject, message) in errors {
            a.error("host", "read", subject, message);
        }
        if let Some(h) = &report {
            a.problems
                .extend(health::classify_host(h, &a.config.thresholds));
        }
        a.report.host = report;
        a.snapshot.disks = disks;
        a.snapshot.netdevs = netdevs;
    }
}

#[derive(Clone, Debug, Default)]
struct Previous {
    at: f64,
    cpu_busy: u64,
    cpu_total: u64,
    net: HashMap<String, NetdevTotals>,
    disk_io_ms: HashMap<String, u64>,
}

/// Stateful host collector.
#[derive(Debug)]
pub struct HostCollector {
    proc_root: PathBuf,
    rootfs: PathBuf,
    prev: Option<Previous>,
    statfs: statfs::StatFs,
    /// The last `mounts` file read and its (mount point, fs type) pairs: the file rarely
    /// changes, and procfs's parser (which unescapes and allocates every field) cost more
    /// than the rest of the host collection together.
    mounts: Option<MountsCache>,
    /// `/proc` files, kept open and re-read with `pread` (see [`procfile`]).
    files: procfile::ProcFiles,
    /// Whether a chosen mount point has a filesystem type that may hang `statvfs` (network,
    /// cluster, FUSE; see [`filters::is_local_fs`]); `true` until the mounts were read.
    may_block: bool,
}

/// The bytes of a mounts file that parsed and its (mount point, fs type) pairs.
#[derive(Debug)]
struct MountsCache {
    raw: Vec<u8>,
    pairs: Vec<(String, String)>,
}

/// The directory under which the host's mount points are visible: the parent of a proc
/// root like `/host/proc` (a pod with the host's `/` mounted at `/host`), else `/`.
pub fn rootfs_for(proc_root: &Path) -> PathBuf {
    match (proc_root.file_name(), proc_root.parent()) {
        (Some(n), Some(parent)) if n == "proc" && parent != Path::new("/") => parent.to_path_buf(),
        _ => PathBuf::from("/"),
    }
}

fn rate(cur: u64, prev: u64, dt: f64) -> f64 {
    if dt <= 0.0 || cur < prev {
        0.0
    } else {
        (cur - prev) as f64 / dt
    }
}

impl HostCollector {
    /// A collector reading `proc_root` and statting mount points under [`rootfs_for`].
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            rootfs: rootfs_for(proc_root),
            prev: None,
            statfs: statfs::StatFs::new(Duration::from_secs(2)),
            mounts: None,
            files: procfile::ProcFiles::new(),
            may_block: true,
        }
    }

    /// Whether [`collect`](Self::collect) may block for up to the `statvfs` timeout (2 s)
    /// on a mount point whose filesystem type can hang (NFS, CIFS, FUSE, ...): callers on
    /// an async runtime run such collections on a blocking thread, the others inline. `true`
    /// before the first collection.
    pub fn may_block(&self) -> bool {
        self.may_block
    }

    /// Number of `/proc` files currently kept open.
    pub fn open_files(&self) -> usize {
        self.files.open_files()
    }

    /// Reads `<proc_root>/<name>` (through a kept descriptor) and parses it with `parse`.
    ///
    /// # Errors
    /// `<path>: <OS or parse error>`.
    fn parse_file<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&[u8]) -> procfs::ProcResult<T>,
    ) -> Result<T, String> {
        // Files the kernel renders in one `show()` call (see `procfile`).
        const SINGLE_RECORD: &[&str] = &[
            "stat",
            "meminfo",
            "loadavg",
            "uptime",
            "pressure/cpu",
            "pressure/memory",
            "pressure/io",
        ];
        let path = self.proc_root.join(name);
        let read = if SINGLE_RECORD.contains(&name) {
            self.files.read_single_record(&path)
        } else {
            self.files.read(&path)
        };
        let bytes = read.map_err(|e| format!("{}: {e}", path.display()))?;
        parse(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Collects everything; `now_seconds` is a monotonic clock reading used for rates.
    pub fn collect(&mut self, config: &HostConfig, now_seconds: f64) -> HostOutcome {
        let mut out = HostOutcome::default();
        // Tick rate only scales the absolute times, which are not used: CPU % is a ratio.
        let si = procfs::ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: cfg!(target_endian = "little"),
        };
        let stat = match self.parse_file("stat", |b| procfs::KernelStats::from_buf_read(b, &si)) {
            Ok(s) => s,
            Err(e) => {
                out.errors
                    .push((self.proc_root.join("stat").display().to_string(), e));
                return out;
            }
        };
        let mem = match self.parse_file("meminfo", |b| procfs::Meminfo::from_buf_read(b)) {
            Ok(m) => m,
            Err(e) => {
                out.errors
                    .push((self.proc_root.join("meminfo").display().to_string(), e));
                return out;
            }
        };
        let t = &stat.total;
        let idle = t.idle + t.iowait.unwrap_or(0);
        let busy = t.user
            + t.nice
            + t.system
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0);
        let (d_busy, d_total) = match &self.prev {
            Some(prev) => (
                busy.saturating_sub(prev.cpu_busy),
                (busy + idle).saturating_sub(prev.cpu_total),
            ),
            None => (busy, busy + idle),
        };
        let cpu_usage_percent = if d_total == 0 {
            0.0
        } else {
            d_busy as f64 * 100.0 / d_total as f64
        };

        let mut report = HostReport {
            cpu_usage_percent,
            cpus: u32::try_from(stat.cpu_time.len()).unwrap_or(u32::MAX),
            memory_total_bytes: mem.mem_total,
            ..HostReport::default()
        };
        // Kernels before 3.14 lack MemAvailable; free + buffers + cached approximates it.
        let available = mem
            .mem_available
            .unwrap_or(mem.mem_free + mem.buffers + mem.cached);
        report.memory_available_bytes = available;
        if mem.mem_total > 0 {
            report.memory_used_percent =
                mem.mem_total.saturating_sub(available) as f64 * 100.0 / mem.mem_total as f64;
        }
        if mem.swap_total > 0 {
            report.swap_used_percent =
                mem.swap_total.saturating_sub(mem.swap_free) as f64 * 100.0 / mem.swap_total as f64;
        }
        match self.parse_file("loadavg", decimal::loadavg) {
            Ok([one, five, fifteen]) => {
                report.load1 = one;
                report.load5 = five;
                report.load15 = fifteen;
            }
            Err(e) => out.errors.push(("loadavg".into(), e)),
        }
        match self.parse_file("uptime", |b| procfs::Uptime::from_read(b)) {
            Ok(u) => report.uptime_seconds = Some(u.uptime),
            Err(e) => out.errors.push(("uptime".into(), e)),
        }
        report.pressure = self.pressure();
        report.filesystems = self.filesystems(config, &mut out.errors);

        let dt = self.prev.as_ref().map_or(0.0, |pr| now_seconds - pr.at);
        let mut net_now = HashMap::new();
        // `net/dev` is a link to `self/net/dev`: the reader's network namespace, which in a pod
        // without hostNetwork is the pod's. `1/net/dev` is the namespace of the init process
        // of this proc root, i.e. the node's; fall back to `net/dev` where it is unreadable.
        let net_dev = self
            .parse_file("1/net/dev", |b| {
                procfs::net::InterfaceDeviceStatus::from_buf_read(b)
            })
            .or_else(|_| {
                self.parse_file("net/dev", |b| {
                    procfs::net::InterfaceDeviceStatus::from_buf_read(b)
                })
            });
        match net_dev {
            Ok(devs) => {
                let mut names: Vec<&String> = devs.0.keys().collect();
                names.sort();
                for name in names {
                    let d = &devs.0[name];
                    let wanted = if config.netdevs.is_empty() {
                        name != "lo"
                    } else {
                        config.netdevs.contains(name)
                    };
                    if !wanted {
                        continue;
                    }
                    let tot = NetdevTotals {
                        name: name.clone(),
                        rx_bytes: d.recv_bytes,
                        tx_bytes: d.sent_bytes,
                        rx_packets: d.recv_packets,
                        tx_packets: d.sent_packets,
                        rx_errors: d.recv_errs,
                        tx_errors: d.sent_errs,
                        rx_drops: d.recv_drop,
                        tx_drops: d.sent_drop,
                    };
                    if let Some(prev) = self.prev.as_ref().and_then(|pr| pr.net.get(name)) {
                        report.netdevs.push(NetdevReport {
                            name: name.clone(),
                            rx_bytes_per_second: rate(tot.rx_bytes, prev.rx_bytes, dt),
                            tx_bytes_per_second: rate(tot.tx_bytes, prev.tx_bytes, dt),
                            rx_errors_per_second: rate(tot.rx_errors, prev.rx_errors, dt),
                            tx_errors_per_second: rate(tot.tx_errors, prev.tx_errors, dt),
                            rx_drops_per_second: rate(tot.rx_drops, prev.rx_drops, dt),
                            tx_drops_per_second: rate(tot.tx_drops, prev.tx_drops, dt),
                        });
                    }
                    net_now.insert(name.clone(), tot.clone());
                    out.netdevs.push(tot);
                }
            }
            Err(e) => out.errors.push(("net/dev".into(), e)),
        }

        let mut disk_now = HashMap::new();
        match self.parse_file("diskstats", |b| procfs::DiskStats::from_buf_read(b)) {
            Ok(stats) => {
                for d in stats.0 {
                    if !filters::is_reported_disk(&d.name) {
                        continue;
                    }
                    let util = self
                        .prev
                        .as_ref()
                        .and_then(|pr| pr.disk_io_ms.get(&d.name))
                        .filter(|_| dt > 0.0)
                        .map(|&prev_ms| (rate(d.time_in_progress, prev_ms, dt) / 10.0).min(100.0));
                    disk_now.insert(d.name.clone(), d.time_in_progress);
                    out.disks.push(DiskIo {
                        device: d.name,
                        reads_total: d.reads,
                        writes_total: d.writes,
                        read_bytes_total: d.sectors_read.saturating_mul(512),
                        written_bytes_total: d.sectors_written.saturating_mul(512),
                        io_time_seconds_total: d.time_in_progress as f64 / 1000.0,
                        utilization_percent: util,
                    });
                }
            }
            Err(e) => out.errors.push(("diskstats".into(), e)),
        }

        self.prev = Some(Previous {
            at: now_seconds,
            cpu_busy: busy,
            cpu_total: busy + idle,
            net: net_now,
            disk_io_ms: disk_now,
        });
        out.report = Some(report);
        out
    }

    fn pressure(&mut self) -> Option<PressureReport> {
        let (cpu, _) = self.parse_file("pressure/cpu", decimal::psi_avg10).ok()?;
        let (mem_some, mem_full) = self
            .parse_file("pressure/memory", decimal::psi_avg10)
            .ok()?;
        let (io_some, io_full) = self.parse_file("pressure/io", decimal::psi_avg10).ok()?;
        Some(PressureReport {
            cpu_some_avg10: cpu,
            memory_some_avg10: mem_some,
            memory_full_avg10: mem_full?,
            io_some_avg10: io_some,
            io_full_avg10: io_full?,
        })
    }

    /// Re-reads `path` (the mounts file) when the kernel signals a change (procfs; see
    /// [`procfile`]) or on every call (other files), and parses it only when its bytes
    /// changed.
    ///
    /// # Errors
    /// `<path>: <OS or parse error>`.
    fn refresh_mounts(&mut self, path: &Path) -> Result<(), String> {
        if self.mounts.is_some() && !self.files.changed(path) {
            return Ok(());
        }
        let raw = match self.files.read(path) {
            Ok(r) => r,
            Err(e) => {
                self.mounts = None;
                return Err(format!("{}: {e}", path.display()));
            }
        };
        if self.mounts.as_ref().map(|m| &m.raw[..]) == Some(raw) {
            return Ok(());
        }
        // Bytes that did not parse are not kept: they must never select a cached list.
        let entries = match Vec::<procfs::MountEntry>::from_buf_read(raw) {
            Ok(m) => m,
            Err(e) => {
                self.mounts = None;
                return Err(format!("{}: {e}", path.display()));
            }
        };
        let raw = raw.to_vec();
        let pairs = entries
            .into_iter()
            .map(|m| (m.fs_file, m.fs_vfstype))
            .collect();
        self.mounts = Some(MountsCache { raw, pairs });
        Ok(())
    }

    fn filesystems(
        &mut self,
        config: &HostConfig,
        errors: &mut Vec<(String, String)>,
    ) -> Vec<FilesystemReport> {
        let mounts_path = self.proc_root.join("mounts");
        if let Err(e) = self.refresh_mounts(&mounts_path) {
            self.may_block = false;
            errors.push(("mounts".into(), e));
            return Vec::new();
        }
        let mounts = self.mounts.as_ref().map_or(&[][..], |m| &m.pairs[..]);
        let chosen = filters::choose_mounts(
            mounts.iter().map(|(file, ty)| (file.as_str(), ty.as_str())),
            &config.filesystems,
        );
        // The type of the mount visible at a mount point is that of its last entry.
        let chosen: Vec<(String, bool)> = chosen
            .into_iter()
            .map(|mp| {
                let local = mounts
                    .iter()
                    .rev()
                    .find(|(file, _)| *file == mp)
                    .is_some_and(|(_, ty)| filters::is_local_fs(ty));
                (mp, local)
            })
            .collect();
        self.may_block = chosen.iter().any(|(_, local)| !local);
        let mut out = Vec::new();
        for (mp, local) in chosen {
            let path = self.rootfs.join(mp.trim_start_matches('/'));
            // A local filesystem answers statvfs from memory; only the others can hang and
            // need the worker thread and its timeout.
            let res = if local {
                statfs::statvfs(&path)
            } else {
                self.statfs.stat(&path)
            };
            match res {
                Ok(s) if s.size_bytes > 0 => out.push(FilesystemReport {
                    mountpoint: mp.clone(),
                    size_bytes: s.size_bytes,
                    avail_bytes: s.avail_bytes,
                    free_percent: s.avail_bytes as f64 * 100.0 / s.size_bytes as f64,
                }),
                Ok(_) => {}
                Err(e) => errors.push((mp, e)),
            }
        }
        out
    }
}
