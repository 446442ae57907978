//! Driver statistics from the kernel: the `SIOCETHTOOL` ioctl with `ETHTOOL_GDRVINFO`,
//! `ETHTOOL_GSSET_INFO`, `ETHTOOL_GSTRINGS` and `ETHTOOL_GSTATS`.
//!
//! Driver-private statistics (`ethtool -S`) have no ethtool-netlink message (netlink's
//! `ETHTOOL_MSG_STATS_GET` carries only the standard IEEE/RMON groups), so the ioctl is the
//! only interface; the netlink `ethtool` crate does not cover it. Layouts and command
//! numbers are those of the kernel's `include/uapi/linux/ethtool.h` (`struct
//! ethtool_drvinfo`, `struct ethtool_sset_info`, `struct ethtool_gstrings`, `struct
//! ethtool_stats`) and `include/uapi/linux/sockios.h` (`SIOCETHTOOL`). None of these
//! commands needs `CAP_NET_ADMIN` (`net/ethtool/ioctl.c`, `dev_ethtool`).
//!
//! Bounds: `ETHTOOL_GSTRINGS` and `ETHTOOL_GSTATS` write as many entries as the driver
//! counts *at the time of the call*, ignoring the length the caller passes. A driver whose
//! count grew since `ETHTOOL_GSSET_INFO` (channels or PFC reconfigured in between) would
//! write past a plain buffer; here each buffer ends at an inaccessible guard page, so such
//! a write fails with `EFAULT` and the read is retried once, never corrupting memory.

use std::{ffi::CString, io, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd};

/// `SIOCETHTOOL` (`include/uapi/linux/sockios.h`).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GDRVINFO`: driver name, version, statistics count.
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
/// `ETHTOOL_GSTRINGS`: the names of a string set.
const ETHTOOL_GSTRINGS: u32 = 0x0000_001b;
/// `ETHTOOL_GSTATS`: the statistics values.
const ETHTOOL_GSTATS: u32 = 0x0000_001d;
/// `ETHTOOL_GSSET_INFO`: string set sizes.
const ETHTOOL_GSSET_INFO: u32 = 0x0000_0037;
/// `ETH_SS_STATS`: the string set of `ETHTOOL_GSTATS`.
const ETH_SS_STATS: u32 = 1;
/// `ETH_GSTRING_LEN`: bytes per name, NUL-padded (not terminated at full length).
const ETH_GSTRING_LEN: usize = 32;
/// `IFNAMSIZ`.
const IFNAMSIZ: usize = 16;
/// Largest statistics count accepted (2 MiB of names); real drivers have a few thousand.
pub const MAX_STATS: usize = 1 << 16;

/// `struct ethtool_drvinfo` (196 bytes).
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ethtool_sset_info` with room for one `data` entry.
#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    data: [u32; 1],
}

/// `struct ifreq` as used by `SIOCETHTOOL`: the name and a pointer (`ifr_data`), padded to
/// the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// What went wrong reading one netdev's statistics.
#[derive(Debug)]
pub enum StatsError {
    /// The name does not fit `IFNAMSIZ` or contains a NUL.
    BadName,
    /// The netdev does not exist (any more): `ENODEV`.
    NoDevice,
    /// The driver has no statistics (`EOPNOTSUPP`, or an empty string set).
    Unsupported,
    /// More than [`MAX_STATS`] statistics.
    TooMany(usize),
    /// The count changed twice while reading.
    Changing,
    /// Any other OS error.
    Io(io::Error),
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadName => write!(f, "not a valid interface name"),
            Self::NoDevice => write!(f, "no such device"),
            Self::Unsupported => write!(f, "the driver reports no statistics"),
            Self::TooMany(n) => write!(f, "{n} statistics, more than {MAX_STATS}"),
            Self::Changing => write!(f, "the statistics count kept changing"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

fn from_io(e: io::Error) -> StatsError {
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => StatsError::NoDevice,
        Some(libc::EOPNOTSUPP) => StatsError::Unsupported,
        _ => StatsError::Io(e),
    }
}

/// An `AF_INET` datagram socket to carry the ioctls (in the caller's network namespace).
pub struct EthtoolSocket {
    fd: OwnedFd,
}

impl EthtoolSocket {
    /// Opens the socket.
    ///
    /// # Errors
    /// The OS error of `socket(2)`.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned descriptor is checked and then owned.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ioctl(&self, name: &[u8; IFNAMSIZ], data: *mut libc::c_void) -> io::Result<()> {
        let mut req = IfReq {
            name: *name,
            data,
            _pad: [0; 16],
        };
        // SAFETY: `req` is a valid `struct ifreq`; `data` points at a command structure
        // whose size matches what the kernel writes for that command (see the module doc
        // for the guard page covering the variable-length ones).
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                SIOCETHTOOL as _,
                &mut req as *mut IfReq,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The driver name (`ethtool -i`'s `driver:`).
    ///
    /// # Errors
    /// See [`StatsError`].
    pub fn driver(&self, ifname: &str) -> Result<String, StatsError> {
        let name = ifname_bytes(ifname)?;
        // SAFETY: all-zero bytes are a valid `DrvInfo`.
        let mut info: DrvInfo = unsafe { std::mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        self.ioctl(&name, (&mut info as *mut DrvInfo).cast())
            .map_err(from_io)?;
        Ok(c_str(&info.driver))
    }

    fn stats_count(&self, name: &[u8; IFNAMSIZ]) -> Result<usize, StatsError> {
        let mut info = SsetInfo {
            cmd: ETHTOOL_GSSET_INFO,
            reserved: 0,
            sset_mask: 1 << ETH_SS_STATS,
            data: [0],
        };
        self.ioctl(name, (&mut info as *mut SsetInfo).cast())
            .map_err(from_io)?;
        if info.sset_mask & (1 << ETH_SS_STATS) == 0 {
            return Err(StatsError::Unsupported);
        }
        Ok(info.data[0] as usize)
    }

    /// Every statistic of `ifname` as (name, value), in the driver's order.
    ///
    /// # Errors
    /// See [`StatsError`]; a count that changed between the calls is retried once.
    pub fn statistics(&self, ifname: &str) -> Result<Vec<(String, u64)>, StatsError> {
        let name = ifname_bytes(ifname)?;
        for _ in 0..2 {
            match self.statistics_once(&name) {
                Err(StatsError::Changing) => continue,
                other => return other,
            }
        }
        Err(StatsError::Changing)
    }

    fn statistics_once(&self, name: &[u8; IFNAMSIZ]) -> Result<Vec<(String, u64)>, StatsError> {
        let n = self.stats_count(name)?;
        if n == 0 {
            return Err(StatsError::Unsupported);
        }
        if n > MAX_STATS {
            return Err(StatsError::TooMany(n));
        }
        // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
        let mut strings = Guarded::new(12 + n * ETH_GSTRING_LEN).map_err(StatsError::Io)?;
        strings.put_u32(0, ETHTOOL_GSTRINGS);
        strings.put_u32(4, ETH_SS_STATS);
        strings.put_u32(8, n as u32);
        self.ioctl(name, strings.ptr()).map_err(changed_or)?;
        if strings.get_u32(8) as usize != n {
            return Err(StatsError::Changing);
        }
        // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }
        let mut values = Guarded::new(8 + n * 8).map_err(StatsError::Io)?;
        values.put_u32(0, ETHTOOL_GSTATS);
        values.put_u32(4, n as u32);
        self.ioctl(name, values.ptr()).map_err(changed_or)?;
        if values.get_u32(4) as usize != n {
            return Err(StatsError::Changing);
        }
        let names = strings.bytes();
        let vals = values.bytes();
        Ok((0..n)
            .map(|i| {
                let off = 12 + i * ETH_GSTRING_LEN;
                let s = c_str(&names[off..off + ETH_GSTRING_LEN]);
                let v = 8 + i * 8;
                let mut b = [0u8; 8];
                b.copy_from_slice(&vals[v..v + 8]);
                (s, u64::from_ne_bytes(b))
            })
            .collect())
    }
}

/// `EFAULT` here means the kernel wrote more entries than counted: the count grew.
fn changed_or(e: io::Error) -> StatsError {
    if e.raw_os_error() == Some(libc::EFAULT) {
        StatsError::Changing
    } else {
        from_io(e)
    }
}

fn ifname_bytes(ifname: &str) -> Result<[u8; IFNAMSIZ], StatsError> {
    let c = CString::new(ifname).map_err(|_| StatsError::BadName)?;
    let b = c.as_bytes();
    if b.is_empty() || b.len() >= IFNAMSIZ {
        return Err(StatsError::BadName);
    }
    let mut out = [0u8; IFNAMSIZ];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// Text up to the first NUL (or the whole field), lossy UTF-8.
fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `len` bytes that end exactly where an inaccessible page starts (anonymous mapping).
struct Guarded {
    base: *mut libc::c_void,
    map_len: usize,
    data: *mut u8,
    len: usize,
}

impl Guarded {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|p| *p > 0)
            .unwrap_or(4096);
        let data_pages = len.div_ceil(page).max(1);
        let map_len = (data_pages + 1) * page;
        // SAFETY: a fresh private anonymous mapping; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let guard_off = data_pages * page;
        // SAFETY: the last page lies inside the mapping just made.
        let rc = unsafe {
            libc::mprotect(
                base.cast::<u8>().add(guard_off).cast(),
                page,
                libc::PROT_NONE,
            )
        };
        let g = Self {
            base,
            map_len,
            // SAFETY: guard_off >= len, so the start lies inside the mapping.
            data: unsafe { base.cast::<u8>().add(guard_off - len) },
            len,
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(g)
    }

    fn ptr(&mut self) -> *mut libc::c_void {
        self.data.cast()
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `data..data+len` is readable, initialised (zero-filled by mmap) memory
        // owned by `self`.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    fn put_u32(&mut self, off: usize, v: u32) {
        // SAFETY: as in `bytes`, writable; callers stay within the header.
        let s = unsafe { std::slice::from_raw_parts_mut(self.data, self.len) };
        s[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes()[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe {
            libc::munmap(self.base, self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_uapi_header() {
        assert_eq!(std::mem::size_of::<DrvInfo>(), 196);
        assert_eq!(std::mem::size_of::<SsetInfo>(), 24);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn names_are_checked() {
        assert!(matches!(ifname_bytes(""), Err(StatsError::BadName)));
        assert!(matches!(
            ifname_bytes("sixteen-chars-xx"),
            Err(StatsError::BadName)
        ));
        assert!(matches!(ifname_bytes("a\0b"), Err(StatsError::BadName)));
        assert!(ifname_bytes("fifteen-chars-x").is_ok());
    }

    #[test]
    fn a_netdev_that_does_not_exist_is_no_device() {
        let s = EthtoolSocket::open().expect("socket");
        assert!(matches!(
            s.statistics("fwnosuchdev0"),
            Err(StatsError::NoDevice)
        ));
        assert!(matches!(
            s.driver("fwnosuchdev0"),
            Err(StatsError::NoDevice)
        ));
    }

    #[test]
    fn loopback_has_no_driver_statistics() {
        let s = EthtoolSocket::open().expect("socket");
        assert!(matches!(s.statistics("lo"), Err(StatsError::Unsupported)));
    }

    #[test]
    fn guarded_buffers_end_at_an_inaccessible_page() {
        let mut g = Guarded::new(12 + 3 * ETH_GSTRING_LEN).expect("mmap");
        g.put_u32(8, 3);
        assert_eq!(g.get_u32(8), 3);
        assert_eq!(g.bytes().len(), 108);
        // The kernel's copy_to_user past the end fails with EFAULT; a read(2) into the
        // byte after the buffer shows the same protection.
        let fd = std::fs::File::open("/proc/self/stat").expect("open");
        // SAFETY: the pointer is the guard page start; read must fail, not write.
        let rc = unsafe { libc::read(fd.as_raw_fd(), g.data.add(g.len).cast(), 1) };
        assert_eq!(rc, -1);
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EFAULT)
        );
    }
}
