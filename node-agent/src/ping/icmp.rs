//! ICMP echo (RFC 792) over an unprivileged ICMP datagram socket, falling back to a raw
//! socket, with kernel receive timestamps (`SO_TIMESTAMPNS`, `Documentation/networking/
//! timestamping.rst`) so that a busy CPU does not inflate the measured RTT.
//!
//! One socket serves every peer: a receiver thread matches replies to outstanding probes by
//! sequence number (and by identifier on a raw socket, which sees every echo reply on the
//! host).

use std::{
    collections::HashMap,
    io,
    mem::MaybeUninit,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, AtomicU16, Ordering},
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

struct Pending {
    sent_realtime: i128,
    sent_mono: Instant,
    tx: oneshot::Sender<f64>,
}

struct Inner {
    sock: Socket,
    kind: SocketKind,
    ident: u16,
    seq: AtomicU16,
    pending: Mutex<HashMap<u16, Pending>>,
    stop: AtomicBool,
    kernel_timestamps: bool,
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
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        let one: libc::c_int = 1;
        // SAFETY: valid fd, option value points to a c_int of the given size.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let ident = (std::process::id() as u16) ^ rand::random::<u16>();
        let inner = Arc::new(Inner {
            sock,
            kind,
            ident,
            seq: AtomicU16::new(rand::random()),
            pending: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            kernel_timestamps: rc == 0,
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
            Ok(Ok(rtt)) => ProbeOutcome::Reply(rtt),
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

/// Receives one datagram with its `SCM_TIMESTAMPNS` control message. Returns the length and
/// the kernel timestamp (CLOCK_REALTIME nanoseconds) when present.
fn recv_with_timestamp(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, Option<i128>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u8; 128];
    let mut src = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    // SAFETY: msghdr is plain data; all-zero is a valid initial state.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = src.as_mut_ptr().cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: every pointer in msg refers to live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ts = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, bounded by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                ts = Some(timespec_nanos(&t));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, ts))
}

fn receive_loop(inner: &Inner) {
    let mut buf = [0u8; 1500];
    while !inner.stop.load(Ordering::Relaxed) {
        let (n, kernel_ts) = match recv_with_timestamp(&inner.sock, &mut buf) {
            Ok(v) => v,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::debug!(error = %e, "icmp receive failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let now_mono = Instant::now();
        let Some((ident, seq)) = parse_echo_reply(&buf[..n], inner.kind) else {
            continue;
        };
        if inner.kind == SocketKind::Raw && ident != inner.ident {
            continue;
        }
        let Some(p) = inner.pending.lock().ok().and_then(|mut m| m.remove(&seq)) else {
            continue;
        };
        let user_rtt = now_mono.duration_since(p.sent_mono).as_secs_f64();
        // The kernel stamp is CLOCK_REALTIME; trust it only when it is consistent with the
        // monotonic measurement (no clock step in between).
        let rtt = match kernel_ts.map(|t| (t - p.sent_realtime) as f64 * 1e-9) {
            Some(k) if k > 0.0 && k <= user_rtt + 1e-3 => k,
            _ => user_rtt,
        };
        let _ = p.tx.send(rtt);
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
