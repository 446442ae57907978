//! DNS probe: one query over UDP to one resolver (hickory-proto builds and parses the
//! messages), so the resolver named in the spec is the one measured, not whatever the
//! node's stub resolver or cache answers. A truncated UDP answer (TC bit) is asked again over
//! TCP, as RFC 7766 §5 requires of every resolver client, with the two-byte length prefix of
//! RFC 1035 §4.2.2.

use std::{net::SocketAddr, time::Instant};

use fabricwatch_proto::endpoint::{DnsProbe, DnsRecordType};
use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RecordType},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::Trace;

/// Most answers kept in a report.
pub const MAX_ANSWERS: usize = 16;
/// Longest answer text kept, in characters (a cut one ends in `…`). A domain name is at most
/// 253 characters (RFC 1035 §2.3.4), so no name or address is cut; a TXT record can carry
/// up to 64 KiB of strings (RFC 1035 §3.3.14), which a report must not.
pub const MAX_ANSWER_CHARS: usize = 256;
/// Largest UDP response accepted (EDNS-less UDP answers are at most 512 bytes; servers that
/// ignore that are still read up to here).
const MAX_RESPONSE_BYTES: usize = 4096;
/// Largest TCP response accepted: the two-byte length allows 65,535 bytes, all of which a
/// legitimate answer may use.
const MAX_TCP_RESPONSE_BYTES: usize = u16::MAX as usize;

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
        DnsRecordType::Txt => RecordType::TXT,
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::Ptr => RecordType::PTR,
    }
}

/// The resolver address: `ip`, `ip:port`, or the first `nameserver` of `resolv_conf`.
///
/// # Errors
/// When the setting does not parse or `resolv.conf` names no nameserver.
pub fn resolver_addr(setting: Option<&str>, resolv_conf: &str) -> Result<SocketAddr, String> {
    if let Some(s) = setting {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(a);
        }
        return s
            .parse::<std::net::IpAddr>()
            .map(|ip| SocketAddr::new(ip, 53))
            .map_err(|_| format!("resolver {s:?} is not an IP address or ip:port"));
    }
    let text = std::fs::read_to_string(resolv_conf).map_err(|e| format!("{resolv_conf}: {e}"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| format!("{resolv_conf} names no nameserver"))
}

/// Record data as `dig +short` prints it; TXT strings without quotes; cut to
/// [`MAX_ANSWER_CHARS`]. An expected answer (at most 253 characters) is never equal to a
/// cut one, so matching on the cut text loses nothing.
fn answer_text(r: &hickory_proto::rr::Record) -> String {
    let text = r.data.to_string();
    let text = text.trim_matches('"');
    match text.char_indices().nth(MAX_ANSWER_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Whether every expected answer is among `got` (names compared case-insensitively and
/// with or without the trailing dot).
///
/// # Errors
/// `answer [<the first MAX_ANSWERS of got>] lacks [<missing>]`, with `(and N more)` when
/// `got` is longer: a resolver may answer thousands of records, the message stays bounded.
pub fn answers_match(expected: &[String], got: &[String]) -> Result<(), String> {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !got.iter().any(|g| norm(g) == norm(e)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let shown = &got[..got.len().min(MAX_ANSWERS)];
    Err(match got.len() - shown.len() {
        0 => format!("answer {shown:?} lacks {missing:?}"),
        more => format!("answer {shown:?} (and {more} more) lacks {missing:?}"),
    })
}

/// Runs the query. The whole exchange is the `resolve` phase.
///
/// # Errors
/// `NXDOMAIN`, `SERVFAIL` and other response codes, an empty answer, a missing expected
/// answer, a response that does not parse or does not match the query.
pub async fn probe(cfg: &DnsProbe, resolv_conf: &str, trace: &mut Trace) -> Result<(), String> {
    let server = resolver_addr(cfg.resolver.as_deref(), resolv_conf)?;
    trace.address = Some(server.to_string());
    let name = Name::from_ascii(&cfg.name).map_err(|e| format!("name {:?}: {e}", cfg.name))?;
    let qtype = record_type(cfg.record_type);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), qtype));
    let id = msg.metadata.id;
    let wire = msg.to_vec().map_err(|e| format!("query: {e}"))?;
    trace.stage = "resolve";
    let t = Instant::now();
    let mut resp = over_udp(server, &wire, id).await?;
    if resp.metadata.truncation {
        trace.stage = "resolve over TCP";
        resp = over_tcp(server, &wire, id).await?;
    }
    trace.phases.resolve = Some(t.elapsed().as_secs_f64());
    let rcode = resp.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return Err(match rcode {
            ResponseCode::NXDomain => format!("NXDOMAIN: {name} does not exist"),
            other => format!("{}", other).to_uppercase(),
        });
    }
    if resp.metadata.truncation {
        return Err("answer truncated over TCP too (TC)".into());
    }
    // Expected answers are looked for in the whole answer; the report keeps the first
    // MAX_ANSWERS.
    let got: Vec<String> = resp
        .answers
        .iter()
        .filter(|r| r.record_type() == qtype)
        .map(answer_text)
        .collect();
    trace.answers = got.iter().take(MAX_ANSWERS).cloned().collect();
    if got.is_empty() {
        return Err(format!("no {} record for {name}", cfg.record_type.as_str()));
    }
    answers_match(&cfg.expected_answers, &got)
}

/// One query over UDP: the answer with the query's `id` (answers with another id, late
/// answers to someone else's query, are skipped; the caller's timeout bounds the wait).
async fn over_udp(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("udp socket: {e}"))?;
    sock.connect(server)
        .await
        .map_err(|e| format!("resolver {server}: {e}"))?;
    sock.send(wire)
        .await
        .map_err(|e| format!("resolver {server}: {e}"))?;
    let mut buf = vec![0u8; MAX_RESPONSE_BYTES];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| format!("resolver {server}: {e}"))?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == id => return Ok(m),
            Ok(_) => continue,
            Err(e) => return Err(format!("response does not parse: {e}")),
        }
    }
}

/// The same query over TCP, each message prefixed with its length (RFC 1035 §4.2.2).
async fn over_tcp(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, String> {
    let err = |e: std::io::Error| format!("resolver {server} over TCP: {e}");
    let len = u16::try_from(wire.len()).map_err(|_| "query too long for TCP".to_string())?;
    let mut conn = TcpStream::connect(server).await.map_err(err)?;
    let mut out = Vec::with_capacity(wire.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wire);
    conn.write_all(&out).await.map_err(err)?;
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).await.map_err(err)?;
    let n = usize::from(u16::from_be_bytes(len)).min(MAX_TCP_RESPONSE_BYTES);
    let mut buf = vec![0u8; n];
    conn.read_exact(&mut buf).await.map_err(err)?;
    match Message::from_vec(&buf) {
        Ok(m) if m.metadata.id == id => Ok(m),
        Ok(m) => Err(format!(
            "answer over TCP has id {}, the query {id}",
            m.metadata.id
        )),
        Err(e) => Err(format!("response over TCP does not parse: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_setting_and_resolv_conf() {
        assert_eq!(
            resolver_addr(Some("10.0.0.10"), "/nonexistent"),
            Ok("10.0.0.10:53".parse().expect("addr"))
        );
        assert_eq!(
            resolver_addr(Some("[::1]:5353"), "/nonexistent"),
            Ok("[::1]:5353".parse().expect("addr"))
        );
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("resolv.conf");
        std::fs::write(
            &f,
            "search x\n# nameserver 1.1.1.1\nnameserver 10.96.0.10\n",
        )
        .expect("write");
        assert_eq!(
            resolver_addr(None, &f.to_string_lossy()),
            Ok("10.96.0.10:53".parse().expect("addr"))
        );
        std::fs::write(&f, "search x\n").expect("write");
        assert!(resolver_addr(None, &f.to_string_lossy())
            .expect_err("none")
            .ends_with("names no nameserver"));
    }

    #[test]
    fn expected_answers() {
        let got = vec!["10.0.0.1".to_string(), "Host.Example.".to_string()];
        assert!(answers_match(&[], &got).is_ok());
        assert!(answers_match(&["host.example".into()], &got).is_ok());
        assert_eq!(
            answers_match(&["10.0.0.2".into()], &got),
            Err("answer [\"10.0.0.1\", \"Host.Example.\"] lacks [\"10.0.0.2\"]".into())
        );
        // Thousands of records (one TCP answer holds ~4,000 A records): the message names
        // the first MAX_ANSWERS and counts the rest.
        let many: Vec<String> = (0..4000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let e = answers_match(&["10.9.9.9".into()], &many).expect_err("missing");
        assert!(e.contains("(and 3984 more) lacks [\"10.9.9.9\"]"), "{e}");
        assert!(e.len() < 400, "{} bytes", e.len());
    }
}
