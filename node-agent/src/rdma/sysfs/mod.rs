//! IO layer of the rdma collector: walks `<sysfs_root>/class/infiniband` and reads every
//! port's attributes and counters, skipping (and recording) any file that cannot be read
//! or parsed.
//!
//! Here: what is read and the walk over devices and ports. `reader`: the file reader
//! (kept-open files, cached listings); `port`: one device's and one port's attributes;
//! `counters`: counter directories.

mod counters;
mod port;
mod reader;

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use fabricwatch_proto::agent_config::{RdmaConfig, RdmaMode};

use super::parse::{self, BadValue, Transport};
use port::{read_info, read_port};
use reader::ListKind;
pub use reader::{ReadMode, SysfsReader, RELIST_EVERY};

/// Why one file was skipped; the bounded `kind` label of
/// `fabricwatch_agent_collector_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorKind {
    /// Content problem (see [`BadValue`]).
    Bad(BadValue),
    /// `EINVAL` on read (counters the hardware cannot report).
    InvalidArgument,
    /// `EACCES` / `EPERM`.
    PermissionDenied,
    /// The file vanished between listing and reading.
    NotFound,
    /// Any other IO error.
    Io,
    /// `state`, `phys_state` or `rate` without their documented shape.
    Malformed,
}

impl FileErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bad(b) => b.as_str(),
            Self::InvalidArgument => "invalid_argument",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::Io => "io",
            Self::Malformed => "malformed",
        }
    }

    fn from_io(e: &io::Error) -> Self {
        match (e.kind(), e.raw_os_error()) {
            (_, Some(libc::EINVAL)) => Self::InvalidArgument,
            (io::ErrorKind::PermissionDenied, _) => Self::PermissionDenied,
            (io::ErrorKind::NotFound, _) => Self::NotFound,
            _ => Self::Io,
        }
    }
}

/// A file the collector skipped.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileError {
    /// Full path of the file.
    pub path: PathBuf,
    /// Why.
    pub kind: FileErrorKind,
    /// Human-readable detail (the OS error or the offending content, truncated).
    pub message: String,
}

/// Device-level identity attributes (each absent when unreadable).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// `fw_ver`.
    pub fw_ver: Option<String>,
    /// `board_id`.
    pub board_id: Option<String>,
    /// `node_guid`.
    pub node_guid: Option<String>,
    /// `hca_type`.
    pub hca_type: Option<String>,
    /// `node_type`, e.g. `1: CA`, `4: RNIC`.
    pub node_type: Option<String>,
}

/// Port identity attributes (each absent when its file is).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortIdentity {
    /// `lid`.
    pub lid: Option<u32>,
    /// `sm_lid`.
    pub sm_lid: Option<u32>,
    /// `sm_sl`.
    pub sm_sl: Option<u8>,
    /// `lid_mask_count` (LMC).
    pub lmc: Option<u8>,
    /// Link width from `rate` (`4X`).
    pub link_width: Option<String>,
    /// Link speed name from `rate` (`HDR`).
    pub link_speed: Option<String>,
    /// Populated GID entries, at most [`MAX_GIDS`].
    pub gids: Vec<fabricwatch_proto::report::GidEntry>,
}

/// GID entries read per port. Entries are read in index order and reading stops at the
/// first unpopulated one after index 0 (an all-zero GID, or EINVAL on its attributes):
/// real tables have 128–256 slots, almost all empty.
pub const MAX_GIDS: u32 = 32;

/// Everything read from one port in one collection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSample {
    /// Device name (`mlx5_0`).
    pub device: String,
    /// Port number.
    pub port: u32,
    /// `link_layer` as read (empty when unreadable).
    pub link_layer: String,
    /// Transport classification.
    pub transport: Transport,
    /// `state` (number, name).
    pub state: Option<(u8, String)>,
    /// `phys_state` (number, name).
    pub phys_state: Option<(u8, String)>,
    /// `rate` in Gb/s.
    pub rate_gbps: Option<f64>,
    /// RoCE netdev from `gid_attrs/ndevs/*`.
    pub netdev: Option<String>,
    /// Device attributes.
    pub info: DeviceInfo,
    /// Port identity (LID, SM, GIDs).
    pub identity: PortIdentity,
    /// `counters/*` by file name, raw (`port_*_data` in 4-octet words).
    pub counters: BTreeMap<String, u64>,
    /// `hw_counters/*` by file name.
    pub hw_counters: BTreeMap<String, u64>,
    /// Files that were skipped.
    pub errors: Vec<FileError>,
}
fn truncate(s: &str) -> String {
    let t = s.trim();
    t.chars().take(80).collect()
}

/// Collects every selected port under `<sysfs_root>/class/infiniband`.
///
/// A missing `class/infiniband` directory means "no RDMA devices" (an empty list, no error);
/// any other failure to list it is returned as the single error of the collection.
pub fn collect(
    reader: &mut SysfsReader,
    sysfs_root: &Path,
    config: &RdmaConfig,
) -> Result<Vec<PortSample>, FileError> {
    reader.begin();
    let class = sysfs_root.join("class/infiniband");
    let devices = match reader.list(&class, ListKind::All) {
        Ok((d, _)) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(FileError {
                kind: FileErrorKind::from_io(&e),
                message: e.to_string(),
                path: class,
            })
        }
    };
    let mut out = Vec::new();
    for device in devices.iter() {
        if !config.devices.is_empty() && !config.devices.contains(device) {
            continue;
        }
        // Device entries are symlinks into /sys/devices/...; Path::is_dir follows them. One
        // `stat` a device: a device removed since the cached listing is skipped at once
        // (and the class listed again), not read through stale descriptors.
        let dev_dir = class.join(device);
        if !dev_dir.is_dir() {
            reader.forget_listing(&class);
            continue;
        }
        let mut dev_errors = Vec::new();
        let info = read_info(reader, &dev_dir, &mut dev_errors);
        let ports_dir = dev_dir.join("ports");
        let ports = match reader.list(&ports_dir, ListKind::All) {
            Ok((p, _)) => p,
            Err(e) => {
                dev_errors.push(io_error(&ports_dir, &e));
                Arc::from(Vec::new())
            }
        };
        let mut port_nums: Vec<u32> = ports.iter().filter_map(|p| p.parse().ok()).collect();
        port_nums.sort_unstable();
        for port in port_nums {
            let sample = read_port(
                reader,
                device,
                port,
                &ports_dir.join(port.to_string()),
                &info,
                config.hw_counters,
            );
            let keep = match config.mode {
                RdmaMode::Auto => true,
                RdmaMode::Infiniband => sample.link_layer == "InfiniBand",
                RdmaMode::Roce => sample.link_layer == "Ethernet",
            };
            if keep {
                let mut sample = sample;
                sample.errors.splice(0..0, dev_errors.iter().cloned());
                out.push(sample);
            }
        }
    }
    Ok(out)
}

fn io_error(path: &Path, e: &io::Error) -> FileError {
    FileError {
        path: path.to_path_buf(),
        kind: FileErrorKind::from_io(e),
        message: e.to_string(),
    }
}
