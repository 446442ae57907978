//! TCP connect probes: the RTT is the time `connect(2)` takes (SYN → SYN-ACK). A refused
//! connection (RST) also proves the peer's stack answered, so it counts as a reply; only a
//! timeout or a routing error counts as loss.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpSocket;

use super::{icmp::describe_error, stats::ProbeOutcome};

/// Connects to `addr` with `timeout` and closes with a RST (linger 0) so that thousands of
/// probes leave no TIME_WAIT sockets behind.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let sock = match if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    } {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::Lost(describe_error(&e)),
    };
    let start = std::time::Instant::now();
    match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Ok(Ok(stream)) => {
            let rtt = start.elapsed().as_secs_f64();
            // Linger 0 on an established socket only turns close into a RST; it cannot block.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            ProbeOutcome::Reply(rtt)
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ProbeOutcome::Reply(start.elapsed().as_secs_f64())
        }
        Ok(Err(e)) => ProbeOutcome::Lost(describe_error(&e)),
        Err(_) => ProbeOutcome::Lost("timeout".into()),
    }
}
