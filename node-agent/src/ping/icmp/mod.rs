//! ICMP echo (RFC 792) over an unprivileged ICMP datagram socket, falling back to a raw
//! socket, with kernel transmit and receive timestamps (`Documentation/networking/
//! timestamping.rst`) so that a busy CPU does not inflate the measured RTT.
//!
//! One socket serves every peer: a receiver thread matches replies to outstanding probes by
//! sequence number (and by identifier on a raw socket, which sees every echo reply on the
//! host).
//!
//! * Receive stamps: `SO_TIMESTAMPNS` (`SCM_TIMESTAMPNS` on each reply).
//! * Transmit stamps: `SO_TIMESTAMPING` with `SOF_TIMESTAMPING_TX_SOFTWARE |
//!   SOF_TIMESTAMPING_SOFTWARE`: the kernel stamps the request when the driver takes it
//!   (`skb_tx_timestamp`) and loops a copy of it back on the socket's error queue, read with
//!   `MSG_ERRQUEUE`. The copy is matched to its probe by the echo request in it (found by
//!   the payload marker, since link-layer headers come first). `SOF_TIMESTAMPING_OPT_TSONLY`
//!   with `OPT_ID` is not used: its per-socket counter advances on some failed sends and
//!   not others, so it cannot be mapped back to sequence numbers reliably.
//! * RTT = receive stamp − transmit stamp; where the kernel gives no transmit stamp (a
//!   driver that does not call `skb_tx_timestamp`, `net.core.tstamp_allow_data = 0` for an
//!   unprivileged socket) the send time is a `CLOCK_REALTIME` stamp taken right before
//!   `sendto`, and without a receive stamp a monotonic measurement is used.
//!   [`TimestampCounts`] says which sources were used.
//! * `IP_RECVERR`: an ICMP error for a probe (a router's destination or host unreachable,
//!   TTL exceeded, administratively prohibited) arrives on the error queue and ends the
//!   probe at once with that error instead of a timeout.

use std::{
    collections::HashMap,
    io,
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::oneshot;

use super::stats::ProbeOutcome;

/// Which kind of socket the prober got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    /// `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`: allowed when the process's group is in
    /// `net.ipv4.ping_group_range`; the kernel sets the identifier and filters replies.
    Datagram,
    /// `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`: needs `CAP_NET_RAW`.
    Raw,
}

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const PAYLOAD: &[u8; 16] = b"fabricwatch-ping";

/// `SO_TIMESTAMPING` / `SCM_TIMESTAMPING` (`include/uapi/asm-generic/socket.h`; the
/// `_OLD` value, which is the only one on architectures with a 64-bit `time_t`).
const SO_TIMESTAMPING: libc::c_int = 37;
/// `SCM_TSTAMP_SND` (`include/uapi/linux/errqueue.h`): stamped when the driver sends.
const SCM_TSTAMP_SND: u32 = 0;

/// Where the stamps of the RTTs measured so far came from (counts of replies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampCounts {
    /// Replies whose RTT starts at the kernel's transmit stamp (`SCM_TSTAMP_SND`).
    pub tx_kernel: u64,
    /// Replies whose RTT starts at the user-space stamp taken before `sendto`.
    pub tx_user: u64,
    /// Replies whose RTT ends at the kernel's receive stamp (`SCM_TIMESTAMPNS`).
    pub rx_kernel: u64,
    /// Replies measured with the monotonic clock alone (no usable kernel receive stamp).
    pub rx_user: u64,
    /// Probes ended early by an ICMP error on the error queue (`IP_RECVERR`).
    pub icmp_errors: u64,
}

#[derive(Default)]
struct Counters {
    tx_kernel: AtomicU64,
    tx_user: AtomicU64,
    rx_kernel: AtomicU64,
    rx_user: AtomicU64,
    icmp_errors: AtomicU64,
}

struct Pending {
    sent_realtime: i128,
    sent_mono: Instant,
    /// The kernel's transmit stamp, once read from the error queue.
    tx_kernel: Option<i128>,
    tx: oneshot::Sender<Result<f64, String>>,
}

struct Inner {
    sock: Socket,
    kind: SocketKind,
    ident: u16,
    seq: AtomicU16,
    pending: Mutex<HashMap<u16, Pending>>,
    stop: AtomicBool,
    kernel_timestamps: bool,
    tx_timestamps: bool,
    /// Set once a transmit stamp arrived: from then on a reply whose stamp has not been
    /// read yet makes the receiver look at the error queue first.
    tx_seen: AtomicBool,
    counts: Counters,
}

/// A shared ICMP echo prober. Dropping it stops its receiver thread (within 200 ms).
pub struct IcmpProber {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IcmpProber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpProber")
            .field("kind", &self.inner.kind)
            .field("kernel_timestamps", &self.inner.kernel_timestamps)
            .field("tx_timestamps", &self.inner.tx_timestamps)
            .finish()
    }
}

impl Drop for IcmpProber {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}

/// The Internet checksum (RFC 1071): one's complement of the one's-complement sum of
/// 16-bit words.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an echo request with identifier `ident` and sequence `seq`.
pub fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + PAYLOAD.len());
    p.extend_from_slice(&[ECHO_REQUEST, 0, 0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Parses a received packet into (identifier, sequence) of an echo reply. Raw sockets
/// deliver the IPv4 header first (its length from the IHL field); datagram sockets do not.
pub fn parse_echo_reply(buf: &[u8], kind: SocketKind) -> Option<(u16, u16)> {
    let icmp = match kind {
        SocketKind::Datagram => buf,
        SocketKind::Raw => {
            let ihl = usize::from(*buf.first()? & 0x0f) * 4;
            buf.get(ihl..)?
        }
    };
    if icmp.len() < 8 || icmp[0] != ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// CLOCK_REALTIME in nanoseconds; integers because an `f64` of Unix seconds only resolves
/// about 0.24 µs.
fn realtime_now() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    timespec_nanos(&ts)
}

fn timespec_nanos(ts: &libc::timespec) -> i128 {
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Finds the echo request this prober sent inside `data` (a looped-back packet from the
/// error queue: link-layer and IP headers first, their lengths depending on the device) by
/// its payload marker; returns its (identifier, sequence).
pub fn find_echo_request(data: &[u8]) -> Option<(u16, u16)> {
    let at = data.windows(PAYLOAD.len()).position(|w| w == PAYLOAD)?;
    let icmp = data.get(at.checked_sub(8)?..at)?;
    (icmp[0] == ECHO_REQUEST).then(|| {
        (
            u16::from_be_bytes([icmp[4], icmp[5]]),
            u16::from_be_bytes([icmp[6], icmp[7]]),
        )
    })
}

/// The echo request quoted by an ICMP error from the error queue: on both socket kinds the
/// data starts at the quoted ICMP header (`ping_err`, and `raw_err` without `IP_HDRINCL`,
/// in `net/ipv4`). Routers may quote only its first 8 bytes (RFC 792), which hold the
/// identifier and sequence returned.
pub fn quoted_echo_request(data: &[u8]) -> Option<(u16, u16)> {
    let icmp = data;
    if icmp.len() < 8 || icmp[0] != ECHO_REQUEST {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// The `lastError` text of an ICMP error (RFC 792 types and codes; `errno` is the
/// kernel's mapping, `icmp_err_convert`), naming the router that sent it.
pub fn describe_icmp_error(errno: i32, icmp_type: u8, code: u8, from: Option<Ipv4Addr>) -> String {
    let what = match (icmp_type, code) {
        (3, 0) => "network unreachable".to_string(),
        (3, 1) => "host unreachable".to_string(),
        (3, 2) => "protocol unreachable".to_string(),
        (3, 3) => "port unreachable".to_string(),
        (3, 4) => "fragmentation needed".to_string(),
        (3, 9 | 10 | 13) => "administratively prohibited".to_string(),
        (3, _) => format!("destination unreachable (code {code})"),
        (11, _) => "TTL exceeded in transit".to_string(),
        (12, _) => "parameter problem".to_string(),
        _ => describe_error(&io::Error::from_raw_os_error(errno)),
    };
    match from {
        Some(a) => format!("{what} (ICMP from {a})"),
        None => what,
    }
}

/// Maps a send/receive error to the short text reported as `lastError`.
pub fn describe_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EHOSTUNREACH) => "host unreachable".into(),
        Some(libc::ENETUNREACH) => "network unreachable".into(),
        Some(libc::ECONNREFUSED) => "connection refused".into(),
        Some(libc::EPERM) | Some(libc::EACCES) => "permission denied".into(),
        _ => e.to_string(),
    }
}

impl IcmpProber {
    /// Opens a datagram ICMP socket, or a raw one when that is refused.
    ///
    /// # Errors
    /// When neither socket can be opened (no `ping_group_range` and no `CAP_NET_RAW`); the
    /// message names both causes.
    pub fn new() -> io::Result<Self> {
        Self::with_tx_timestamps(true)
    }

    /// [`new`](Self::new), asking for kernel transmit stamps only when `tx_timestamps`
    /// (without them RTTs start at the user-space send stamp, as `ping` and `fping`
    /// measure; for comparisons).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_tx_timestamps(tx_timestamps: bool) -> io::Result<Self> {
        let (sock, kind) = match Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)) {
            Ok(s) => (s, SocketKind::Datagram),
            Err(dgram_err) => match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
                Ok(s) => (s, SocketKind::Raw),
                Err(raw_err) => {
                    return Err(io::Error::new(
                        raw_err.kind(),
                        format!(
                            "cannot open an ICMP socket: datagram ({dgram_err}; is the group in \
                             net.ipv4.ping_group_range?), raw ({raw_err}; needs CAP_NET_RAW)"
                        ),
                    ))
                }
            },
        };
        let fd = sock.as_raw_fd();
        let kernel_timestamps = set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
        let tx_flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
        let tx_timestamps = tx_timestamps
            && set_int_option(
                fd,
                libc::SOL_SOCKET,
                SO_TIMESTAMPING,
                tx_flags as libc::c_int,
            );
        // Without it a datagram socket drops ICMP errors for unconnected sends.
        if !set_int_option(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1) {
            tracing::debug!("IP_RECVERR refused; ICMP errors end probes by timeout");
        }
        let ident = (std::process::id() as u16) ^ rand::random::<u16>();
        let inner = Arc::new(Inner {
            sock,
            kind,
            ident,
            seq: AtomicU16::new(rand::random()),
            pending: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            kernel_timestamps,
            tx_timestamps,
            tx_seen: AtomicBool::new(false),
            counts: Counters::default(),
        });
        let rx = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("icmp-rx".into())
            .spawn(move || receive_loop(&rx))?;
        Ok(Self { inner })
    }

    /// The socket kind in use.
    pub fn kind(&self) -> SocketKind {
        self.inner.kind
    }

    /// Whether kernel receive timestamps are enabled.
    pub fn kernel_timestamps(&self) -> bool {
        self.inner.kernel_timestamps
    }

    /// Whether kernel transmit timestamps were requested successfully (whether the kernel
    /// delivers them for this socket shows in [`timestamp_counts`](Self::timestamp_counts)).
    pub fn tx_timestamps(&self) -> bool {
        self.inner.tx_timestamps
    }

    /// Which timestamp sources the RTTs measured so far used.
    pub fn timestamp_counts(&self) -> TimestampCounts {
        let c = &self.inner.counts;
        TimestampCounts {
            tx_kernel: c.tx_kernel.load(Ordering::Relaxed),
            tx_user: c.tx_user.load(Ordering::Relaxed),
            rx_kernel: c.rx_kernel.load(Ordering::Relaxed),
            rx_user: c.rx_user.load(Ordering::Relaxed),
            icmp_errors: c.icmp_errors.load(Ordering::Relaxed),
        }
    }

    /// Sends one echo request to `addr` and waits up to `timeout` for the reply.
    pub async fn probe(&self, addr: Ipv4Addr, timeout: Duration) -> ProbeOutcome {
        let (tx, rx) = oneshot::channel();
        let seq = {
            let Ok(mut pending) = self.inner.pending.lock() else {
                return ProbeOutcome::Lost("internal: prober lock poisoned".into());
            };
            let mut seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
            // Skip numbers still in flight after a wrap.
            while pending.contains_key(&seq) {
                seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
            }
            pending.insert(
                seq,
                Pending {
                    sent_realtime: realtime_now(),
                    sent_mono: Instant::now(),
                    tx_kernel: None,
                    tx,
                },
            );
            seq
        };
        let packet = echo_request(self.inner.ident, seq);
        let dst = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(addr, 0)));
        if let Some(p) = self
            .inner
            .pending
            .lock()
            .ok()
            .as_mut()
            .and_then(|m| m.get_mut(&seq))
        {
            // Stamp as close to the send as possible.
            p.sent_realtime = realtime_now();
            p.sent_mono = Instant::now();
        }
        if let Err(e) = self.inner.sock.send_to(&packet, &dst) {
            self.forget(seq);
            return ProbeOutcome::Lost(describe_error(&e));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(rtt))) => ProbeOutcome::Reply(rtt),
            Ok(Ok(Err(icmp_error))) => ProbeOutcome::Lost(icmp_error),
            Ok(Err(_)) => ProbeOutcome::Lost("internal: receiver stopped".into()),
            Err(_) => {
                self.forget(seq);
                ProbeOutcome::Lost("timeout".into())
            }
        }
    }

    fn forget(&self, seq: u16) {
        if let Ok(mut m) = self.inner.pending.lock() {
            m.remove(&seq);
        }
    }
}

fn set_int_option(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: i32) -> bool {
    let v: libc::c_int = value;
    // SAFETY: valid fd, option value points to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// What one `recvmsg` returned besides the data.
#[derive(Debug, Default)]
struct Received {
    len: usize,
    /// `SCM_TIMESTAMPNS`, CLOCK_REALTIME nanoseconds.
    timestampns: Option<i128>,
    /// `SCM_TIMESTAMPING` software stamp (`ts[0]`), CLOCK_REALTIME nanoseconds.
    timestamping: Option<i128>,
    /// `IP_RECVERR` (error queue only) and the offender's address.
    ext_err: Option<(libc::sock_extended_err, Option<Ipv4Addr>)>,
}

/// One non-blocking `recvmsg` (with `MSG_ERRQUEUE` for the error queue), its control
/// messages decoded.
fn recv_msg(sock: &Socket, buf: &mut [u8], errqueue: bool) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for IP_RECVERR (extended error + offender), SCM_TIMESTAMPING and
    // SCM_TIMESTAMPNS, 8-byte aligned.
    let mut control = [0u64; 48];
    let mut src = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // SAFETY: msghdr is plain data; all-zero is a valid initial state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = src.as_mut_ptr().cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let flags = libc::MSG_DONTWAIT | if errqueue { libc::MSG_ERRQUEUE } else { 0 };
    // SAFETY: every pointer in msg refers to live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Received {
        len: n as usize,
        ..Received::default()
    };
    // SAFETY: CMSG_* walk the control buffer the kernel filled, bounded by msg_controllen;
    // each payload is read unaligned with the size its type documents.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let (level, ty) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
            if level == libc::SOL_SOCKET && ty == libc::SCM_TIMESTAMPNS {
                let t = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                out.timestampns = Some(timespec_nanos(&t));
            } else if level == libc::SOL_SOCKET
                && ty == SO_TIMESTAMPING
                && len >= 3 * std::mem::size_of::<libc::timespec>()
            {
                let t = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                if t.tv_sec != 0 || t.tv_nsec != 0 {
                    out.timestamping = Some(timespec_nanos(&t));
                }
            } else if level == libc::IPPROTO_IP
                && ty == libc::IP_RECVERR
                && len >= std::mem::size_of::<libc::sock_extended_err>()
            {
                let e = std::ptr::read_unaligned(data.cast::<libc::sock_extended_err>());
                // SO_EE_OFFENDER: a sockaddr right after the extended error.
                let off = std::mem::size_of::<libc::sock_extended_err>();
                let from = (len >= off + std::mem::size_of::<libc::sockaddr_in>())
                    .then(|| std::ptr::read_unaligned(data.add(off).cast::<libc::sockaddr_in>()))
                    .filter(|a| a.sin_family == libc::AF_INET as libc::sa_family_t)
                    .map(|a| Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)));
                out.ext_err = Some((e, from));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(out)
}

/// Reads the error queue dry: transmit stamps go to their pending probes, ICMP errors end
/// theirs.
fn drain_errqueue(inner: &Inner, buf: &mut [u8]) {
    loop {
        let r = match recv_msg(&inner.sock, buf, true) {
            Ok(r) => r,
            Err(_) => return,
        };
        let Some((ee, from)) = r.ext_err else {
            continue;
        };
        let data = &buf[..r.len];
        if ee.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING && ee.ee_info == SCM_TSTAMP_SND {
            let (Some(ts), Some((ident, seq))) =
                (r.timestamping.or(r.timestampns), find_echo_request(data))
            else {
                continue;
            };
            if inner.kind == SocketKind::Raw && ident != inner.ident {
                continue;
            }
            inner.tx_seen.store(true, Ordering::Relaxed);
            if let Some(p) = inner
                .pending
                .lock()
                .ok()
                .as_mut()
                .and_then(|m| m.get_mut(&seq))
            {
                p.tx_kernel = Some(ts);
            }
        } else if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP {
            let Some((ident, seq)) = quoted_echo_request(data) else {
                continue;
            };
            if inner.kind == SocketKind::Raw && ident != inner.ident {
                continue;
            }
            let Some(p) = inner.pending.lock().ok().and_then(|mut m| m.remove(&seq)) else {
                continue;
            };
            inner.counts.icmp_errors.fetch_add(1, Ordering::Relaxed);
            let msg = describe_icmp_error(ee.ee_errno as i32, ee.ee_type, ee.ee_code, from);
            let _ = p.tx.send(Err(msg));
        }
    }
}

/// Picks the RTT in seconds from the stamps available and counts the sources used: the
/// kernel receive stamp minus the kernel transmit stamp, else minus the user-space send
/// stamp, else the monotonic measurement. A kernel-based value is trusted only when it is
/// positive and not above the monotonic one (plus 1 ms): `CLOCK_REALTIME` may be stepped
/// between the stamps.
fn pick_rtt(p: &Pending, rx_kernel: Option<i128>, user_rtt: f64, c: &Counters) -> f64 {
    let sane = |k: f64| k > 0.0 && k <= user_rtt + 1e-3;
    if let Some(rx) = rx_kernel {
        if let Some(k) = p
            .tx_kernel
            .map(|tx| (rx - tx) as f64 * 1e-9)
            .filter(|k| sane(*k))
        {
            c.tx_kernel.fetch_add(1, Ordering::Relaxed);
            c.rx_kernel.fetch_add(1, Ordering::Relaxed);
            return k;
        }
        let k = (rx - p.sent_realtime) as f64 * 1e-9;
        if sane(k) {
            c.tx_user.fetch_add(1, Ordering::Relaxed);
            c.rx_kernel.fetch_add(1, Ordering::Relaxed);
            return k;
        }
    }
    c.tx_user.fetch_add(1, Ordering::Relaxed);
    c.rx_user.fetch_add(1, Ordering::Relaxed);
    user_rtt
}

/// Waits up to 200 ms (so that a dropped prober is noticed) for the socket to be readable
/// or to have an error queued; returns `(readable, error queued)`.
fn wait_readable(sock: &Socket) -> (bool, bool) {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, 200) };
    if rc <= 0 {
        return (false, false);
    }
    (
        pfd.revents & libc::POLLIN != 0,
        pfd.revents & libc::POLLERR != 0,
    )
}

fn receive_loop(inner: &Inner) {
    let mut buf = [0u8; 1500];
    let mut errbuf = [0u8; 1500];
    while !inner.stop.load(Ordering::Relaxed) {
        let (readable, errors) = wait_readable(&inner.sock);
        // Transmit stamps first: they belong to replies that may be read next.
        if errors {
            drain_errqueue(inner, &mut errbuf);
        }
        if !readable {
            continue;
        }
        loop {
            let r = match recv_msg(&inner.sock, &mut buf, false) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A pending socket error (an ICMP error with IP_RECVERR) is reported
                    // once here; the error queue holds the details.
                    tracing::trace!(error = %e, "icmp receive");
                    drain_errqueue(inner, &mut errbuf);
                    continue;
                }
            };
            let now_mono = Instant::now();
            let Some((ident, seq)) = parse_echo_reply(&buf[..r.len], inner.kind) else {
                continue;
            };
            if inner.kind == SocketKind::Raw && ident != inner.ident {
                continue;
            }
            // A reply read before its transmit stamp (both queued by the same wake-up):
            // read the error queue first.
            let stamp_missing = inner.tx_seen.load(Ordering::Relaxed)
                && inner
                    .pending
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&seq).map(|p| p.tx_kernel.is_none()))
                    .unwrap_or(false);
            if stamp_missing {
                drain_errqueue(inner, &mut errbuf);
            }
            let Some(p) = inner.pending.lock().ok().and_then(|mut m| m.remove(&seq)) else {
                continue;
            };
            let user_rtt = now_mono.duration_since(p.sent_mono).as_secs_f64();
            let rtt = pick_rtt(&p, r.timestampns, user_rtt, &inner.counts);
            let _ = p.tx.send(Ok(rtt));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn looped_back_requests_and_quoted_requests_are_found() {
        let req = echo_request(0x1234, 77);
        // Ethernet (14) + IPv4 (20) headers before the request, padding after it.
        let mut frame = vec![0u8; 34];
        frame.extend_from_slice(&req);
        frame.extend_from_slice(&[0, 0]);
        assert_eq!(find_echo_request(&frame), Some((0x1234, 77)));
        assert_eq!(
            find_echo_request(&req[8..]),
            None,
            "no header before the marker"
        );
        let mut reply = req.clone();
        reply[0] = ECHO_REPLY;
        assert_eq!(find_echo_request(&reply), None, "a reply is not a request");
        assert_eq!(
            quoted_echo_request(&req[..8]),
            Some((0x1234, 77)),
            "routers may quote only 8 bytes of the request"
        );
        assert_eq!(quoted_echo_request(&req), Some((0x1234, 77)));
        assert_eq!(quoted_echo_request(&reply), None);
        assert_eq!(quoted_echo_request(&req[..7]), None);
    }

    #[test]
    fn icmp_errors_are_named_with_their_sender() {
        let r = Some(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            describe_icmp_error(libc::EHOSTUNREACH, 3, 1, r),
            "host unreachable (ICMP from 10.0.0.1)"
        );
        assert_eq!(
            describe_icmp_error(libc::EHOSTUNREACH, 3, 10, None),
            "administratively prohibited"
        );
        assert_eq!(
            describe_icmp_error(0, 11, 0, None),
            "TTL exceeded in transit"
        );
        assert_eq!(
            describe_icmp_error(libc::ENETUNREACH, 99, 0, None),
            "network unreachable"
        );
    }

    #[test]
    fn rtt_prefers_kernel_stamps_and_falls_back_per_direction() {
        let (tx, _rx) = oneshot::channel();
        let mut p = Pending {
            sent_realtime: 1_000_000,
            sent_mono: Instant::now(),
            tx_kernel: Some(1_004_000),
            tx,
        };
        let c = Counters::default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // rx - tx_kernel = 10 µs; rx - user stamp = 14 µs; monotonic 50 µs.
        assert!(close(pick_rtt(&p, Some(1_014_000), 50e-6, &c), 10e-6));
        p.tx_kernel = None;
        assert!(close(pick_rtt(&p, Some(1_014_000), 50e-6, &c), 14e-6));
        assert!(close(pick_rtt(&p, None, 50e-6, &c), 50e-6));
        // A clock step makes the kernel values insane: the monotonic one is used.
        p.tx_kernel = Some(5_000_000_000);
        assert!(close(
            pick_rtt(&p, Some(1_014_000_000_000), 50e-6, &c),
            50e-6
        ));
        let counts = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            (
                counts(&c.tx_kernel),
                counts(&c.tx_user),
                counts(&c.rx_kernel),
                counts(&c.rx_user)
            ),
            (1, 3, 2, 2)
        );
    }

    #[test]
    fn replies_parse_for_both_socket_kinds() {
        let mut reply = echo_request(0xabcd, 42);
        reply[0] = ECHO_REPLY;
        assert_eq!(
            parse_echo_reply(&reply, SocketKind::Datagram),
            Some((0xabcd, 42))
        );
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&reply);
        assert_eq!(parse_echo_reply(&ip, SocketKind::Raw), Some((0xabcd, 42)));
        assert_eq!(
            parse_echo_reply(&echo_request(1, 1), SocketKind::Datagram),
            None
        );
        assert_eq!(parse_echo_reply(&[0x4f], SocketKind::Raw), None);
        assert_eq!(parse_echo_reply(&[], SocketKind::Raw), None);
    }
}
