//! `statvfs(3)` with a timeout. A hung network filesystem blocks `statvfs` forever, so calls
//! run on a worker thread; when a call times out that worker is abandoned (a new one is
//! started for the next call) and the mount point is skipped until the stuck call returns.

use std::{
    collections::HashSet,
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::{mpsc, Arc, Mutex},
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

type Job = (PathBuf, mpsc::Sender<Result<FsSize, String>>);

/// `statvfs` runner with a per-call timeout.
#[derive(Debug)]
pub struct StatFs {
    timeout: Duration,
    busy: Arc<Mutex<HashSet<PathBuf>>>,
    worker: Option<mpsc::Sender<Job>>,
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
            busy: Arc::default(),
            worker: None,
        }
    }

    fn worker(&mut self) -> Result<mpsc::Sender<Job>, String> {
        if let Some(w) = &self.worker {
            return Ok(w.clone());
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let busy = Arc::clone(&self.busy);
        std::thread::Builder::new()
            .name("statvfs".into())
            .spawn(move || {
                for (path, reply) in rx {
                    let r = statvfs(&path);
                    if let Ok(mut b) = busy.lock() {
                        b.remove(&path);
                    }
                    let _ = reply.send(r);
                }
            })
            .map_err(|e| e.to_string())?;
        self.worker = Some(tx.clone());
        Ok(tx)
    }

    /// `statvfs(path)` with the timeout.
    ///
    /// # Errors
    /// The OS error, `timed out`, or `still hung from an earlier call`.
    pub fn stat(&mut self, path: &Path) -> Result<FsSize, String> {
        if self.busy.lock().map(|s| s.contains(path)).unwrap_or(false) {
            return Err("statvfs still hung from an earlier call".into());
        }
        // Marked busy before the call; the worker unmarks it when statvfs returns, so a
        // timed-out call keeps the mount skipped exactly until it completes.
        if let Ok(mut s) = self.busy.lock() {
            s.insert(path.to_path_buf());
        }
        let (tx, rx) = mpsc::channel();
        let sent = self
            .worker()
            .and_then(|w| w.send((path.to_path_buf(), tx)).map_err(|e| e.to_string()));
        if let Err(e) = sent {
            self.worker = None;
            if let Ok(mut s) = self.busy.lock() {
                s.remove(path);
            }
            return Err(e);
        }
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(_) => {
                // The worker is stuck in the kernel; leave it and use a fresh one next time.
                self.worker = None;
                Err(format!("statvfs timed out after {:?}", self.timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_a_real_filesystem_and_reports_errors() {
        let mut s = StatFs::new(Duration::from_secs(2));
        let r = s.stat(Path::new("/")).expect("statvfs /");
        assert!(r.size_bytes > 0 && r.avail_bytes <= r.size_bytes);
        assert!(s.stat(Path::new("/no/such/dir")).is_err());
        // The worker survives errors and keeps serving.
        assert!(s.stat(Path::new("/")).is_ok());
    }
}
