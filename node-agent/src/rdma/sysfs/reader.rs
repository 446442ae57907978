//! Reading sysfs attribute files: kept open and re-read with `pread(2)`
//! ([`ReadMode::KeepOpen`]) or opened for every read, with directory listings cached for
//! [`RELIST_EVERY`] collections.

use std::{
    collections::HashMap,
    ffi::OsString,
    fs::File,
    io::{self, Read},
    os::unix::fs::FileExt,
    path::Path,
    sync::Arc,
};

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
pub(super) enum ListKind {
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
    pub(super) fn list(&mut self, dir: &Path, kind: ListKind) -> io::Result<(Arc<[String]>, bool)> {
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
    pub(super) fn forget_listing(&mut self, dir: &Path) {
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

    /// Drops every kept descriptor, as a removed sysfs attribute invalidates them.
    #[cfg(test)]
    pub(super) fn drop_open_files(&mut self) {
        self.open.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

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
