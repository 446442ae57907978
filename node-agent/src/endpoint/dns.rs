//! DNS probe: one query over UDP to one resolver (hickory-proto builds and parses the
//! messages), so the resolver named in the spec is the one measured, not whatever the
//! node's stub resolver or cache answers.

use std::{net::SocketAddr, time::Instant};

use fabricwatch_proto::endpoint::{DnsProbe, DnsRecordType};
use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RecordType},
};
use tokio::net::UdpSocket;

use super::Trace;

/// Most answers kept in a report.
pub const MAX_ANSWERS: usize = 16;
/// Largest response accepted (EDNS-less UDP answers are at most 512 bytes; servers that
/// ignore that are still read up to here).
const MAX_RESPONSE_BYTES: usize = 4096;

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

/// Record data as `dig +short` prints it; TXT strings without quotes.
fn answer_text(r: &hickory_proto::rr::Record) -> String {
    r.data.to_string().trim_matches('"').to_string()
}

/// Whether every expected answer is among `got` (names compared case-insensitively and
/// with or without the trailing dot).
pub fn answers_match(expected: &[String], got: &[String]) -> Result<(), String> {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !got.iter().any(|g| norm(g) == norm(e)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("answer {got:?} lacks {missing:?}"))
    }
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
    sock.send(&wire)
        .await
        .map_err(|e| format!("resolver {server}: {e}"))?;
    let mut buf = vec![0u8; MAX_RESPONSE_BYTES];
    // Answers with another id (late answers to someone else's query) are skipped; the
    // caller's timeout bounds the wait.
    let resp = loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| format!("resolver {server}: {e}"))?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == id => break m,
            Ok(_) => continue,
            Err(e) => return Err(format!("response does not parse: {e}")),
        }
    };
    trace.phases.resolve = Some(t.elapsed().as_secs_f64());
    let rcode = resp.metadata.response_code;
    if rcode != ResponseCode::NoError {
        return Err(match rcode {
            ResponseCode::NXDomain => format!("NXDOMAIN: {name} does not exist"),
            other => format!("{}", other).to_uppercase(),
        });
    }
    if resp.metadata.truncation {
        return Err("answer truncated (TC); TCP fallback is not done".into());
    }
    let got: Vec<String> = resp
        .answers
        .iter()
        .filter(|r| r.record_type() == qtype)
        .map(answer_text)
        .take(MAX_ANSWERS)
        .collect();
    trace.answers = got.clone();
    if got.is_empty() {
        return Err(format!("no {} record for {name}", cfg.record_type.as_str()));
    }
    answers_match(&cfg.expected_answers, &got)
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
    }
}
