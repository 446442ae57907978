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
//!
//! Here: the socket and sending probes. `packet`: echo requests and replies on the wire;
//! `receive`: the receiver thread and the RTT from the stamps; `error_text`: the
//! `lastError` texts.

mod error_text;
mod packet;
mod receive;

use std::{
    collections::HashMap,
    io,
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
pub use error_text::{describe_error, describe_icmp_error};
pub use packet::{
    checksum, echo_request, find_echo_request, parse_echo_reply, quoted_echo_request,
};
use receive::receive_loop;

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
