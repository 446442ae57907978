//! `statvfs(3)` with a timeout. A hung network filesystem blocks `statvfs` forever, so each
//! call runs on its own thread; a mount point that timed out is skipped until that thread
//! returns.

use std::{
    collections::HashSet,
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

/// Sizes of one filesystem in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsSize {
    /// `f_blocks * f_frsize`.
    pub size_bytes: u64,
    /// `f_bavail * f_frsize` (available to unprivileged users).
    pub avail_bytes: u64,
}

/// `statvfs` runner with a per-call timeout.
#[derive(Debug)]
pub struct StatFs {
    timeout: Duration,
    stuck: Arc<Mutex<HashSet<PathBuf>>>,
}

/// One blocking `statvfs` call.
///
/// # Errors
/// The OS error, as text.
pub fn statvfs(path: &Path) -> Result<FsSize, String> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: statvfs is plain data; zeroed is a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path, s is writable.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let frsize = s.f_frsize as u64;
    Ok(FsSize {
        size_bytes: (s.f_blocks as u64).saturating_mul(frsize),
        avail_bytes: (s.f_bavail as u64).saturating_mul(frsize),
    })
}

impl StatFs {
    /// A runner that gives up on a call after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            stuck: Arc::default(),
        }
    }

    /// `statvfs(path)` with the timeout.
    ///
    /// # Errors
    /// The OS error, `timed out`, or `still hung from an earlier call`.
    pub fn stat(&self, path: &Path) -> Result<FsSize, String> {
        if self.stuck.lock().map(|s| s.contains(path)).unwrap_or(false) {
            return Err("statvfs still hung from an earlier call".into());
        }
        // Marked busy before the call; the thread unmarks it when statvfs returns, so a
        // timed-out call keeps the mount skipped exactly until it completes.
        if let Ok(mut s) = self.stuck.lock() {
            s.insert(path.to_path_buf());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.to_path_buf();
        let stuck = Arc::clone(&self.stuck);
        let spawned = std::thread::Builder::new()
            .name("statvfs".into())
            .spawn(move || {
                let r = statvfs(&p);
                if let Ok(mut s) = stuck.lock() {
                    s.remove(&p);
                }
                let _ = tx.send(r);
            });
        if let Err(e) = spawned {
            if let Ok(mut s) = self.stuck.lock() {
                s.remove(path);
            }
            return Err(e.to_string());
        }
        rx.recv_timeout(self.timeout)
            .unwrap_or_else(|_| Err(format!("statvfs timed out after {:?}", self.timeout)))
    }
}
