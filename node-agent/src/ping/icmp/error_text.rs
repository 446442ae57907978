//! The `lastError` texts of probes that failed: ICMP errors and socket errors.

use std::{io, net::Ipv4Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
