//! IO layer of the rdma collector: walks `<sysfs_root>/class/infiniband` and reads every
//! port's attributes and counters, skipping (and recording) any file that cannot be read
//! or parsed.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::OsString,
    fs::File,
    io::{self, Read},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use fabricwatch_proto::agent_config::{RdmaConfig, RdmaMode};

use super::parse::{self, BadValue, Transport};

/// How counter files are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Keep each file open and re-read it with `pread(2)` at offset 0, which makes kernfs
    /// call the attribute's `show()` again. Measured faster; see BENCHMARKS.md.
    #[default]
    KeepOpen,
    /// `open(2)`, `read(2)`, `close(2)` for every read.
    OpenEachTime,
}

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

/// Reads sysfs attribute files, keeping them open between collections in
/// [`ReadMode::KeepOpen`].
#[derive(Debug, Default)]
pub struct SysfsReader {
    mode: ReadMode,
    // Keyed by the path's bytes: hashing an `OsString` hashes one byte slice, where hashing
    // a `PathBuf` walks its components (most of the lookup cost for ~100 files a port).
    open: HashMap<OsString, (File, u64)>,
    generation: u64,
    // One page reused by every read, so a read neither allocates nor zeroes 4 KiB.
    buf: Vec<u8>,
    // Directory listings by the directory's path bytes (KeepOpen mode only).
    listings: HashMap<OsString, Listing>,
}

/// Directory listings are re-read after this many collections (and at once when a file
/// they name has gone), so devices and counters that appear later show up within this
/// many intervals, without a `getdents` walk of every directory on every collection.
pub const RELIST_EVERY: u64 = 10;

/// What a directory listing keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    /// Every name.
    All,
    /// Names that are not directories (by the `getdents` entry type; no `stat`).
    Files,
}

#[derive(Debug)]
struct Listing {
    names: Arc<[String]>,
    // The generation (collection) in which the directory was read.
    listed: u64,
}

/// Attribute files are a page at most (`PAGE_SIZE`, kernel `sysfs_emit`).
const MAX_ATTR: usize = 4096;

impl SysfsReader {
    /// A reader using `mode`.
    pub fn new(mode: ReadMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Number of files currently held open.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// Starts a collection; files not read since the previous `begin` are closed (their
    /// device went away or the config changed).
    pub fn begin(&mut self) {
        let g = self.generation;
        self.open.retain(|_, (_, seen)| *seen == g);
        self.generation += 1;
        let g = self.generation;
        self.listings.retain(|_, l| g - l.listed < RELIST_EVERY);
    }

    /// Number of directory listings currently cached.
    pub fn cached_listings(&self) -> usize {
        self.listings.len()
    }

    /// The sorted names in `dir` of the given kind, and whether they came from the cache
    /// (at most [`RELIST_EVERY`] collections old; [`ReadMode::OpenEachTime`] never caches).
    ///
    /// # Errors
    /// The OS error of listing the directory (never cached).
    fn list(&mut self, dir: &Path, kind: ListKind) -> io::Result<(Arc<[String]>, bool)> {
        let key = dir.as_os_str();
        if let Some(l) = self.listings.get(key) {
            return Ok((Arc::clone(&l.names), true));
        }
        let names: Arc<[String]> = match kind {
            ListKind::All => list_dir(dir),
            ListKind::Files => list_files(dir),
        }?
        .into();
        if self.mode == ReadMode::KeepOpen {
            self.listings.insert(
                key.to_os_string(),
                Listing {
                    names: Arc::clone(&names),
                    listed: self.generation,
                },
            );
        }
        Ok((names, false))
    }

    /// Drops the cached listing of `dir` (a file it named has gone).
    fn forget_listing(&mut self, dir: &Path) {
        self.listings.remove(dir.as_os_str());
    }

    /// Reads a whole attribute file as text (lossy UTF-8).
    ///
    /// # Errors
    /// The OS error of `open(2)` or `read(2)`.
    pub fn read(&mut self, path: &Path) -> io::Result<String> {
        self.read_with(path, str::to_owned)
    }

    /// Reads a whole attribute file and hands its text (lossy UTF-8) to `f` without
    /// copying it out of the reader's buffer.
    ///
    /// # Errors
    /// The OS error of `open(2)` or `read(2)`.
    pub fn read_with<R>(&mut self, path: &Path, f: impl FnOnce(&str) -> R) -> io::Result<R> {
        if self.buf.len() != MAX_ATTR {
            self.buf = vec![0; MAX_ATTR];
        }
        let buf = &mut self.buf[..];
        let n = match self.mode {
            ReadMode::OpenEachTime => read_fully(&mut File::open(path)?, buf)?,
            ReadMode::KeepOpen => {
                let g = self.generation;
                let key = path.as_os_str();
                let res = match self.open.get_mut(key) {
                    Some((file, seen)) => {
                        *seen = g;
                        file.read_at(buf, 0)
                    }
                    None => {
                        let file = File::open(path)?;
                        let res = file.read_at(buf, 0);
                        self.open.insert(key.to_os_string(), (file, g));
                        res
                    }
                };
                match res {
                    Ok(n) => n,
                    Err(e) => {
                        // A stale descriptor (device removed and re-added) must not stick.
                        self.open.remove(key);
                        return Err(e);
                    }
                }
            }
        };
        Ok(f(&String::from_utf8_lossy(&buf[..n])))
    }
}

fn read_fully(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Lists the names in a directory (following symlinks), sorted.
fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Lists the regular files (and symlinks) in a directory, sorted, using the entry type from
/// `getdents` so that no per-file `stat` is needed.
fn list_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(true))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
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

fn read_text(
    reader: &mut SysfsReader,
    path: &Path,
    errors: &mut Vec<FileError>,
    optional: bool,
) -> Option<String> {
    match reader.read_with(path, |s| s.trim().to_string()) {
        Ok(s) => Some(s),
        Err(e) if optional && e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(io_error(path, &e));
            None
        }
    }
}

fn read_info(reader: &mut SysfsReader, dev: &Path, errors: &mut Vec<FileError>) -> DeviceInfo {
    let mut get =
        |name: &str| read_text(reader, &dev.join(name), errors, true).filter(|s| !s.is_empty());
    DeviceInfo {
        fw_ver: get("fw_ver"),
        board_id: get("board_id"),
        node_guid: get("node_guid"),
        hca_type: get("hca_type"),
        node_type: get("node_type"),
    }
}

fn read_port(
    reader: &mut SysfsReader,
    device: &str,
    port: u32,
    dir: &Path,
    info: &DeviceInfo,
    hw_counters: bool,
) -> PortSample {
    let mut errors = Vec::new();
    let link_layer =
        read_text(reader, &dir.join("link_layer"), &mut errors, true).unwrap_or_default();
    let mut numbered = |name: &str, errors: &mut Vec<FileError>| {
        let path = dir.join(name);
        let text = read_text(reader, &path, errors, false)?;
        let parsed = parse::parse_numbered_state(&text);
        if parsed.is_none() {
            errors.push(FileError {
                path,
                kind: FileErrorKind::Malformed,
                message: format!("unexpected content {:?}", truncate(&text)),
            });
        }
        parsed
    };
    let state = numbered("state", &mut errors);
    let phys_state = numbered("phys_state", &mut errors);
    let mut identity = PortIdentity::default();
    let rate_gbps = {
        let path = dir.join("rate");
        read_text(reader, &path, &mut errors, true).and_then(|t| {
            if let Some((w, sp)) = parse::parse_rate_parts(&t) {
                identity.link_width = Some(w);
                identity.link_speed = sp;
            }
            let r = parse::parse_rate_gbps(&t);
            if r.is_none() {
                errors.push(FileError {
                    path,
                    kind: FileErrorKind::Malformed,
                    message: format!("unexpected content {:?}", truncate(&t)),
                });
            }
            r
        })
    };
    let netdev = read_netdev(reader, &dir.join("gid_attrs/ndevs"));
    {
        let mut num = |name: &str, parse: fn(&str) -> Option<u32>| {
            let path = dir.join(name);
            let text = read_text(reader, &path, &mut errors, true)?;
            let v = parse(&text);
            if v.is_none() {
                errors.push(FileError {
                    path,
                    kind: FileErrorKind::Malformed,
                    message: format!("unexpected content {:?}", truncate(&text)),
                });
            }
            v
        };
        identity.lid = num("lid", parse::parse_hex_u32);
        identity.sm_lid = num("sm_lid", parse::parse_hex_u32);
        identity.sm_sl = num("sm_sl", parse::parse_dec_u8).and_then(|v| u8::try_from(v).ok());
        identity.lmc =
            num("lid_mask_count", parse::parse_dec_u8).and_then(|v| u8::try_from(v).ok());
    }
    identity.gids = read_gids(reader, dir);
    let mut counters = read_counter_dir(reader, &dir.join("counters"), &mut errors);
    // mlx4's 64-bit `counters_ext/` count the same events as `counters/`, which saturate or
    // wrap at 32 bits: the larger value is the 64-bit one whenever it counts, and a
    // `counters_ext` file that reads 0 (no extended PMA counters) does not hide the 32-bit
    // value. The maximum of two non-decreasing counters is non-decreasing, so rates hold.
    for (name, v) in read_counter_dir(reader, &dir.join("counters_ext"), &mut errors) {
        let base = parse::counters_ext_name(&name).unwrap_or(&name).to_string();
        let e = counters.entry(base).or_insert(v);
        *e = (*e).max(v);
    }
    let hw = if hw_counters {
        read_counter_dir(reader, &dir.join("hw_counters"), &mut errors)
    } else {
        BTreeMap::new()
    };
    PortSample {
        device: device.to_string(),
        port,
        transport: parse::classify_transport(device, info.node_type.as_deref(), &link_layer),
        link_layer,
        state,
        phys_state,
        rate_gbps,
        netdev,
        info: info.clone(),
        identity,
        counters,
        hw_counters: hw,
        errors,
    }
}

/// `gid_attrs/ndevs/<i>`: unpopulated GID slots fail with EINVAL; that is normal and not
/// an error worth reporting, so failures here are silent.
fn read_netdev(reader: &mut SysfsReader, dir: &Path) -> Option<String> {
    let (entries, _) = reader.list(dir, ListKind::All).ok()?;
    let mut found = Vec::new();
    // Slot 0 and 1 are the link-local GIDs present on every RoCE port; stop early.
    for name in entries.iter() {
        let Ok(idx) = name.parse::<u32>() else {
            continue;
        };
        let text = reader.read_with(&dir.join(name), |t| {
            (!t.trim().is_empty()).then(|| t.to_string())
        });
        if let Ok(Some(text)) = text {
            found.push((idx, text));
            break;
        }
    }
    parse::pick_netdev(found)
}

/// `gids/<i>` with `gid_attrs/types/<i>` and `gid_attrs/ndevs/<i>`, in index order, up to
/// the first unpopulated entry after index 0 and at most [`MAX_GIDS`]. Failures are
/// silent: unpopulated entries fail with EINVAL, which is normal.
fn read_gids(reader: &mut SysfsReader, dir: &Path) -> Vec<fabricwatch_proto::report::GidEntry> {
    let mut out = Vec::new();
    let gids = dir.join("gids");
    if reader.list(&gids, ListKind::Files).is_err() {
        return out;
    }
    for i in 0..MAX_GIDS {
        let idx = i.to_string();
        let gid = reader
            .read_with(&gids.join(&idx), |t| t.trim().to_string())
            .ok()
            .filter(|g| parse::gid_is_populated(g));
        let Some(gid) = gid else {
            if i == 0 {
                continue;
            }
            break;
        };
        let attr = |reader: &mut SysfsReader, kind: &str| {
            reader
                .read_with(&dir.join("gid_attrs").join(kind).join(&idx), |t| {
                    t.trim().to_string()
                })
                .ok()
                .filter(|s| !s.is_empty())
        };
        out.push(fabricwatch_proto::report::GidEntry {
            index: i,
            gid_type: attr(reader, "types"),
            netdev: attr(reader, "ndevs"),
            gid,
        });
    }
    out
}

/// Reads every regular file in a counter directory. A missing directory (devices without a
/// PMA, `hw_counters` on older kernels) yields no counters and no error.
///
/// The listing is cached (see [`RELIST_EVERY`]); when a file of a cached listing has gone,
/// the directory is listed and read again at once, so a removed counter is not an error.
fn read_counter_dir(
    reader: &mut SysfsReader,
    dir: &Path,
    errors: &mut Vec<FileError>,
) -> BTreeMap<String, u64> {
    match read_counter_files(reader, dir) {
        Ok((out, errs)) => {
            errors.extend(errs);
            out
        }
        Err(Stale) => {
            reader.forget_listing(dir);
            let (out, errs) = read_counter_files(reader, dir).unwrap_or_default();
            errors.extend(errs);
            out
        }
    }
}

/// A file named by a cached directory listing was not found.
struct Stale;

fn read_counter_files(
    reader: &mut SysfsReader,
    dir: &Path,
) -> Result<(BTreeMap<String, u64>, Vec<FileError>), Stale> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let (names, cached) = match reader.list(dir, ListKind::Files) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((out, errors)),
        Err(e) => {
            errors.push(io_error(dir, &e));
            return Ok((out, errors));
        }
    };
    // One path buffer for the whole directory instead of an allocation per file.
    let mut path = dir.to_path_buf();
    for name in names.iter() {
        // `hw_counters/lifespan` is a setting (ms), not a counter.
        if name == "lifespan" {
            continue;
        }
        path.push(name);
        let parsed = reader.read_with(&path, |text| {
            parse::parse_counter(text).map_err(|bad| (bad, truncate(text)))
        });
        match parsed {
            Ok(Ok(v)) => {
                out.insert(name.clone(), v);
            }
            Ok(Err((bad, text))) => errors.push(FileError {
                path: path.clone(),
                kind: FileErrorKind::Bad(bad),
                message: format!("unexpected content {text:?}"),
            }),
            // ENODEV: a kept sysfs descriptor whose attribute was removed (kernfs).
            Err(e)
                if cached
                    && (e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENODEV)) =>
            {
                return Err(Stale)
            }
            Err(e) => errors.push(io_error(&path, &e)),
        }
        path.pop();
    }
    Ok((out, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter removed while its listing is cached: the kernel invalidates the kept
    /// descriptor (ENODEV on kernfs; here the descriptor is dropped and the open fails with
    /// ENOENT). The directory is listed again at once and the counter is gone, not an error.
    #[test]
    fn a_counter_removed_under_a_cached_listing_is_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = dir.path().join("counters");
        std::fs::create_dir_all(&counters).expect("mkdir");
        for (name, v) in [("a", "1\n"), ("b", "2\n"), ("c", "3\n")] {
            std::fs::write(counters.join(name), v).expect("write");
        }
        let mut r = SysfsReader::new(ReadMode::KeepOpen);
        let mut errors = Vec::new();
        r.begin();
        let first = read_counter_dir(&mut r, &counters, &mut errors);
        assert_eq!(first.len(), 3);
        assert_eq!(r.cached_listings(), 1);
        std::fs::remove_file(counters.join("b")).expect("rm");
        r.open.clear();
        r.begin();
        let second = read_counter_dir(&mut r, &counters, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            second.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 1), ("c".to_string(), 3)]
        );
    }

    #[test]
    fn listings_are_cached_for_relist_every_collections_in_keep_open_mode_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x"), "1\n").expect("write");
        let mut r = SysfsReader::new(ReadMode::KeepOpen);
        r.begin();
        assert!(!r.list(dir.path(), ListKind::Files).expect("list").1);
        for _ in 1..RELIST_EVERY {
            r.begin();
            assert!(
                r.list(dir.path(), ListKind::Files).expect("list").1,
                "cached"
            );
        }
        r.begin();
        assert!(
            !r.list(dir.path(), ListKind::Files).expect("list").1,
            "re-listed"
        );
        let mut fresh = SysfsReader::new(ReadMode::OpenEachTime);
        fresh.begin();
        fresh.list(dir.path(), ListKind::Files).expect("list");
        assert_eq!(fresh.cached_listings(), 0);
    }
}
