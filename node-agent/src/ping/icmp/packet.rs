//! ICMP echo packets (RFC 792): building requests, parsing replies, and finding this
//! prober's requests in looped-back packets and in the quotes of ICMP errors.

use super::SocketKind;

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const PAYLOAD: &[u8; 16] = b"fabricwatch-ping";

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
