//! The receiver thread: replies matched to pending probes, kernel receive and transmit
//! stamps (error queue) and ICMP errors (`IP_RECVERR`) decoded from control messages, and
//! the RTT picked from the stamps available.

use std::{
    io, mem::MaybeUninit, net::Ipv4Addr, os::fd::AsRawFd, sync::atomic::Ordering, time::Instant,
};

use socket2::Socket;

use super::{
    describe_icmp_error, find_echo_request, parse_echo_reply, quoted_echo_request, timespec_nanos,
    Counters, Inner, Pending, SocketKind, SCM_TSTAMP_SND, SO_TIMESTAMPING,
};

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

/// Runs until the prober is dropped: waits for replies and queued errors and hands each
/// matched probe its result.
pub(super) fn receive_loop(inner: &Inner) {
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
    use std::sync::atomic::AtomicU64;

    use tokio::sync::oneshot;

    use super::*;

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
}
