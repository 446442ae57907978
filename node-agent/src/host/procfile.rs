//! Whole-file reads of `/proc` files through descriptors kept open between collections.
//!
//! procfs files are `seq_file`s: a `pread(2)` at offset 0 resets the iterator and renders
//! the file afresh (`fs/seq_file.c`, `seq_read_iter`: "if request is to read from zero
//! offset, reset iterator to first record"), so re-reading an open descriptor gives what a
//! fresh `open`/`read`/`close` would, without the path walk and the two extra syscalls.
//! Only files on procfs are kept open (checked once with `fstatfs`, `PROC_SUPER_MAGIC`):
//! a regular file (a test fixture, a copied tree) can be replaced or removed, which an
//! open descriptor would not notice.
//!
//! The mount table is rendered from every mount's options (the costliest procfs read of
//! a collection) but rarely changes; [`ProcFiles::changed`] asks the kernel instead:
//! `/proc/<pid>/mounts` signals `POLLPRI | POLLERR` once after each mount or unmount
//! (`proc(5)`, `fs/proc_namespace.c`, `mounts_poll`).

use std::{
    collections::HashMap,
    fs::File,
    io,
    os::{fd::AsRawFd, unix::fs::FileExt},
    path::{Path, PathBuf},
};

/// First size of the read buffer; it doubles while a file does not fit.
const INITIAL_BUF: usize = 16 * 1024;

/// Reader of whole `/proc` files that keeps their descriptors open.
#[derive(Debug, Default)]
pub struct ProcFiles {
    open: HashMap<PathBuf, File>,
    buf: Vec<u8>,
}

/// Whether `file` lives on procfs.
fn on_procfs(file: &File) -> bool {
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open for the duration of the call; s is writable.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), &mut s) };
    rc == 0 && s.f_type == libc::PROC_SUPER_MAGIC
}

/// Reads `file` from offset 0 to end of file into `buf` (grown as needed); returns the
/// length. A short read is not taken as the end: a `seq_file` stops a read early when its
/// next record does not fit, so only a read of 0 bytes ends the file.
///
/// With `single_record`, a read that leaves room in the buffer is the whole file: true of
/// regular files and of procfs files rendered by one `show()` call (`single_open`:
/// `meminfo`, `stat`, `loadavg`, `uptime`, `pressure/*`), whose record is copied whole
/// when it fits. That saves the read of 0 bytes that would confirm the end.
fn read_all_at(file: &File, buf: &mut Vec<u8>, single_record: bool) -> io::Result<usize> {
    if buf.is_empty() {
        buf.resize(INITIAL_BUF, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => return Ok(n),
            Ok(k) if single_record && n + k < buf.len() => return Ok(n + k),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl ProcFiles {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// For a mounts file (`<proc>/mounts`, `<proc>/<pid>/mounts`) read before through a
    /// kept descriptor: whether the mount table changed since the previous call (or the
    /// previous read), by a `poll(2)` that does not wait. `true` when the file is not kept
    /// open (not procfs, never read, or its descriptor failed), so the caller reads it.
    pub fn changed(&mut self, path: &Path) -> bool {
        let Some(file) = self.open.get(path) else {
            return true;
        };
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout never blocks.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc < 0 || pfd.revents & libc::POLLNVAL != 0 {
            self.open.remove(path);
            return true;
        }
        pfd.revents & (libc::POLLPRI | libc::POLLERR) != 0
    }

    /// Number of descriptors currently kept open.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// The whole content of `path`. A kept descriptor that fails is closed and the file
    /// opened again once, so a stale descriptor never sticks.
    ///
    /// # Errors
    /// The OS error of `open(2)` or `pread(2)`.
    pub fn read(&mut self, path: &Path) -> io::Result<&[u8]> {
        self.read_as(path, false)
    }

    /// [`read`](Self::read) for a procfs file rendered by one `show()` call (`meminfo`,
    /// `stat`, `loadavg`, `uptime`, `pressure/*`; `single_open` in the kernel): one `pread`
    /// when the file fits the buffer.
    ///
    /// # Errors
    /// The OS error of `open(2)` or `pread(2)`.
    pub fn read_single_record(&mut self, path: &Path) -> io::Result<&[u8]> {
        self.read_as(path, true)
    }

    fn read_as(&mut self, path: &Path, single_record: bool) -> io::Result<&[u8]> {
        if let Some(file) = self.open.get(path) {
            match read_all_at(file, &mut self.buf, single_record) {
                Ok(n) => return Ok(&self.buf[..n]),
                Err(_) => {
                    self.open.remove(path);
                }
            }
        }
        let file = File::open(path)?;
        let n = read_all_at(&file, &mut self.buf, single_record)?;
        if on_procfs(&file) {
            self.open.insert(path.to_path_buf(), file);
        }
        Ok(&self.buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files whose content does not change between two reads on a quiet host.
    const STABLE: &[&str] = &["/proc/mounts", "/proc/filesystems", "/proc/version"];

    #[test]
    fn reread_of_a_kept_descriptor_equals_a_fresh_read() {
        let mut r = ProcFiles::new();
        for name in STABLE {
            let path = Path::new(name);
            let first = r.read(path).expect("first read").to_vec();
            assert!(r.open_files() > 0, "{name} is on procfs and kept open");
            for _ in 0..3 {
                let again = r.read(path).expect("pread").to_vec();
                let fresh = std::fs::read(path).expect("fresh read");
                assert_eq!(again, fresh, "{name}");
                assert_eq!(again, first, "{name}");
            }
        }
        assert_eq!(r.open_files(), STABLE.len());
    }

    #[test]
    fn single_record_files_are_read_whole_in_one_pread() {
        let mut r = ProcFiles {
            buf: vec![0; 64],
            ..ProcFiles::default()
        };
        // /proc/meminfo is one record of ~1.5 KiB: the 64-byte buffer grows until it fits.
        let text = String::from_utf8(
            r.read_single_record(Path::new("/proc/meminfo"))
                .expect("read")
                .to_vec(),
        )
        .expect("utf8");
        assert!(text.starts_with("MemTotal:"), "{text}");
        assert!(text.contains("\nSwapFree:"), "{text}");
        assert!(text.ends_with('\n'));
        let fresh = std::fs::read_to_string("/proc/meminfo").expect("fresh");
        assert_eq!(text.lines().count(), fresh.lines().count());
    }

    #[test]
    fn files_larger_than_the_buffer_are_read_whole() {
        // The mount table is many records; with a 64-byte buffer every read path (growth,
        // short reads at record boundaries, the final read of 0 bytes) is used.
        let path = Path::new("/proc/self/mounts");
        let mut r = ProcFiles {
            buf: vec![0; 64],
            ..ProcFiles::default()
        };
        let kept = r.read(path).expect("read").to_vec();
        assert!(kept.len() > 64, "mounts is {} bytes", kept.len());
        let again = r.read(path).expect("pread").to_vec();
        let fresh = std::fs::read(path).expect("fresh");
        assert_eq!(kept, fresh);
        assert_eq!(again, fresh);
    }

    #[test]
    fn changing_counters_are_seen_on_reread() {
        // /proc/self/stat's utime/stime and the `ctxt` line of /proc/stat move; a reread
        // must render them again rather than return a cached page. The spinning thread's own
        // schedstat: /proc/self is the thread-group leader, which is idle when the test
        // harness runs this test on a thread of its own.
        let mut r = ProcFiles::new();
        let path = Path::new("/proc/thread-self/schedstat");
        let a = r.read(path).expect("read").to_vec();
        let mut spin = 0u64;
        for i in 0..5_000_000u64 {
            spin = spin.wrapping_add(i * i);
        }
        std::hint::black_box(spin);
        std::thread::yield_now();
        let b = r.read(path).expect("reread").to_vec();
        assert_ne!(a, b, "schedstat (run time in ns) must advance");
        assert_eq!(r.open_files(), 1);
    }

    #[test]
    fn mount_table_changes_are_signalled_by_poll() {
        let mut r = ProcFiles::new();
        let path = Path::new("/proc/self/mounts");
        r.read(path).expect("read");
        assert!(!r.changed(path), "no mount since the read");
        assert!(!r.changed(path));
        // A mount needs CAP_SYS_ADMIN in this mount namespace; without it only the quiet
        // case above is checked.
        let dir = tempfile::tempdir().expect("tempdir");
        let target =
            std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: NUL-terminated strings; a tmpfs mount with no data.
        let rc = unsafe {
            libc::mount(
                c"fwtest".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            eprintln!(
                "mount change not tested: {}",
                std::io::Error::last_os_error()
            );
            return;
        }
        let seen = r.changed(path);
        let after_mount = String::from_utf8_lossy(r.read(path).expect("read")).into_owned();
        // SAFETY: NUL-terminated path of the mount made above.
        unsafe { libc::umount(target.as_ptr()) };
        assert!(seen, "the mount is signalled");
        assert!(after_mount.contains("fwtest"), "{after_mount}");
        assert!(r.changed(path), "the unmount is signalled");
        assert!(!r.changed(path), "once");
    }

    #[test]
    fn regular_files_are_not_kept_open_and_changes_show() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "one\n").expect("write");
        let mut r = ProcFiles::new();
        assert_eq!(r.read(&path).expect("read"), b"one\n");
        assert_eq!(r.open_files(), 0);
        std::fs::remove_file(&path).expect("rm");
        std::fs::write(&path, "two\n").expect("write");
        assert_eq!(r.read(&path).expect("read"), b"two\n");
        std::fs::remove_file(&path).expect("rm");
        assert!(r.read(&path).is_err());
        assert!(r.changed(&path), "files not kept open are always read");
    }
}
