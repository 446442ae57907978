//! Endpoint probes against real servers: HTTP, HTTPS (a CA generated here with rcgen), a
//! TCP listener and dnsmasq run in a network namespace `probes-s-<pid>`; the probes run in
//! `probes-c-<pid>`, joined to it by a veth pair (10.198.<n>.1 ↔ .2). Faults are injected
//! by the servers (slowness, resets, wrong status, hostile responses), by the certificates
//! (expired, expiring, wrong name) and by `tc netem` on the link. Needs root, iproute2,
//! tc and dnsmasq; skips (with the reason printed) otherwise.

mod support;

use std::{
    net::IpAddr,
    process::{Child, Command},
    sync::Arc,
    time::{Duration, Instant},
};

use fabricwatch_agent::endpoint::{probe_once, CachedTlsHandle};
use fabricwatch_proto::endpoint::{
    DnsProbe, DnsRecordType, EndpointConfig, EndpointReport, EndpointState, HttpMethod, HttpProbe,
    TcpProbe, TlsConfig,
};
use support::{enter, skip_reason, VethPair};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};

/// Client and server namespaces; removed on drop (also when the test fails).
struct Net {
    pair: VethPair,
    dnsmasq: Option<Child>,
}

impl Net {
    fn new() -> Self {
        let pid = std::process::id();
        let net = u8::try_from(20 + pid % 200).unwrap_or(20);
        Net {
            pair: VethPair::new(
                format!("probes-c-{pid}"),
                format!("probes-s-{pid}"),
                &format!("prbc{pid}"),
                &format!("prbs{pid}"),
                format!("10.198.{net}"),
            ),
            dnsmasq: None,
        }
    }

    fn client(&self) -> &str {
        &self.pair.a
    }

    fn server(&self) -> &str {
        &self.pair.b
    }

    fn server_ip(&self) -> IpAddr {
        self.pair.addr_b().parse().expect("ip")
    }
}

impl Drop for Net {
    // dnsmasq runs in the server namespace: stopped before `pair` deletes it.
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

/// Certificates of the test: a CA, and leaf certificates for `probes.test` (and the
/// server's IP) valid now, expired, and expiring in ten days.
struct Pki {
    ca_pem: String,
    valid: (Vec<u8>, Vec<u8>),
    expired: (Vec<u8>, Vec<u8>),
    expiring: (Vec<u8>, Vec<u8>),
    ca_der: Vec<u8>,
}

/// Sets `p`'s validity to whole days from today (UTC midnight) `from`..`to`.
fn validity(p: &mut rcgen::CertificateParams, from: i64, to: i64) {
    use chrono::Datelike;
    let day = |d: i64| {
        let t = chrono::Utc::now().date_naive() + chrono::TimeDelta::days(d);
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    };
    p.not_before = day(from);
    p.not_after = day(to);
}

impl Pki {
    fn new(ip: IpAddr) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "fabricwatch probes test CA");
        validity(&mut ca, -30, 365);
        let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().to_vec();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |from: i64, to: i64| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(vec!["probes.test".to_string()]).expect("params");
            p.subject_alt_names.push(SanType::IpAddress(ip));
            validity(&mut p, from, to);
            let cert = p.signed_by(&key, &issuer).expect("leaf");
            (cert.der().to_vec(), key.serialize_der())
        };
        Pki {
            ca_pem,
            valid: leaf(-1, 90),
            expired: leaf(-30, -2),
            expiring: leaf(-30, 10),
            ca_der,
        }
    }
}

fn tls_acceptor(leaf: &(Vec<u8>, Vec<u8>), ca_der: &[u8]) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(leaf.0.clone()),
                CertificateDer::from(ca_der.to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.1.clone())),
        )
        .expect("server cert");
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// Reads a request head (bounded) and answers by path; see the module docs for the faults.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, reset: impl FnOnce(&mut S)) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhello ok".to_vec();
    let reply: Vec<u8> = match path.as_str() {
        "/ok" => ok,
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            ok
        }
        "/503" => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/redirect" => b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/auth"
            if text
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cret") =>
        {
            ok
        }
        "/auth" => b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec(),
        "/reset" => {
            reset(&mut s);
            return;
        }
        "/endless" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 64 * 1024];
            while s.write_all(&chunk).await.is_ok() {}
            return;
        }
        "/slowloris" => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            loop {
                if s.write_all(b"X").await.is_err() {
                    return;
                }
                let _ = s.flush().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        "/huge" => {
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..4000 {
                r.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(100)).as_bytes());
            }
            r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            r
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    let _ = s.write_all(&reply).await;
    let _ = s.shutdown().await;
}

fn rst(s: &mut tokio::net::TcpStream) {
    // SO_LINGER 0: close sends RST instead of FIN (and does not block: nothing is unsent).
    let _ = socket2::SockRef::from(&*s).set_linger(Some(Duration::ZERO));
}

/// Relays DNS queries on `ip`:5300 to `ip`:53, each held `delay` first.
async fn delaying_dns_relay(ip: IpAddr, delay: Duration) {
    let front = Arc::new(
        tokio::net::UdpSocket::bind((ip, 5300))
            .await
            .expect("bind 5300"),
    );
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = front.recv_from(&mut buf).await {
            let (q, front) = (buf[..n].to_vec(), front.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let Ok(back) = tokio::net::UdpSocket::bind((ip, 0)).await else {
                    return;
                };
                let mut ans = vec![0u8; 4096];
                if back.send_to(&q, (ip, 53)).await.is_ok() {
                    if let Ok(Ok(m)) =
                        tokio::time::timeout(Duration::from_secs(1), back.recv(&mut ans)).await
                    {
                        let _ = front.send_to(&ans[..m], from).await;
                    }
                }
            });
        }
    });
}

async fn run_servers(ip: IpAddr, pki: Arc<Pki>) {
    delaying_dns_relay(ip, Duration::from_millis(60)).await;
    // A resolver that never answers (bound, so no ICMP port unreachable either).
    let silent = tokio::net::UdpSocket::bind((ip, 5301))
        .await
        .expect("bind 5301");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while silent.recv(&mut buf).await.is_ok() {}
    });
    let plain = TcpListener::bind((ip, 80)).await.expect("bind 80");
    tokio::spawn(async move {
        while let Ok((s, _)) = plain.accept().await {
            tokio::spawn(async move {
                let mut s = s;
                serve_http(&mut s, |s| rst(s)).await;
            });
        }
    });
    for (port, leaf) in [
        (443, pki.valid.clone()),
        (8443, pki.expired.clone()),
        (9443, pki.expiring.clone()),
    ] {
        let l = TcpListener::bind((ip, port)).await.expect("bind tls");
        let acceptor = tls_acceptor(&leaf, &pki.ca_der);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(t) = acceptor.accept(s).await {
                        serve_http(t, |_| {}).await;
                    }
                });
            }
        });
    }
}

fn http(name: &str, url: &str) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        http: Some(HttpProbe {
            url: url.into(),
            ..HttpProbe::default()
        }),
        tcp: None,
        dns: None,
        timeout_seconds: 2.0,
        slow_seconds: 1.0,
        interval_seconds: None,
    }
}

fn with_http(mut e: EndpointConfig, f: impl FnOnce(&mut HttpProbe)) -> EndpointConfig {
    if let Some(h) = e.http.as_mut() {
        f(h);
    }
    e
}

fn tcp(name: &str, host: &str, port: u16, tls: Option<TlsConfig>) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        http: None,
        tcp: Some(TcpProbe {
            host: host.into(),
            port,
            tls,
        }),
        dns: None,
        timeout_seconds: 2.0,
        slow_seconds: 1.0,
        interval_seconds: None,
    }
}

fn dns(name: &str, q: &str, t: DnsRecordType, expect: &[&str], resolver: &str) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        http: None,
        tcp: None,
        dns: Some(DnsProbe {
            name: q.into(),
            record_type: t,
            expected_answers: expect.iter().map(|s| s.to_string()).collect(),
            resolver: Some(resolver.into()),
        }),
        timeout_seconds: 2.0,
        slow_seconds: 1.0,
        interval_seconds: None,
    }
}

/// What a case expects: the state, a fragment of the error (or none), and a check.
struct Case {
    cfg: EndpointConfig,
    state: EndpointState,
    error: Option<&'static str>,
    check: fn(&EndpointReport) -> Result<(), String>,
}

fn case(cfg: EndpointConfig, state: EndpointState, error: Option<&'static str>) -> Case {
    Case {
        cfg,
        state,
        error,
        check: |_| Ok(()),
    }
}

fn run_cases(client_ns: &str, cases: Vec<Case>) -> Vec<String> {
    let ns = client_ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut failures = Vec::new();
            for c in cases {
                let t = Instant::now();
                let r = probe_once(&c.cfg, &mut CachedTlsHandle::default(), "/nonexistent").await;
                let wall = t.elapsed().as_secs_f64();
                let line = serde_json::to_string(&r).unwrap_or_default();
                eprintln!("{}: {line}", c.cfg.name);
                let mut why = Vec::new();
                if r.state != c.state {
                    why.push(format!("state {:?}, want {:?}", r.state, c.state));
                }
                match (c.error, &r.error) {
                    (None, Some(e)) => why.push(format!("unexpected error {e:?}")),
                    (Some(w), None) => why.push(format!("no error, want {w:?}")),
                    (Some(w), Some(e)) if !e.contains(w) => {
                        why.push(format!("error {e:?} lacks {w:?}"))
                    }
                    _ => {}
                }
                // Every probe is bounded by its timeout (plus scheduling slack).
                if wall > c.cfg.timeout_seconds + 0.5 {
                    why.push(format!(
                        "took {wall:.3}s, timeout {}",
                        c.cfg.timeout_seconds
                    ));
                }
                if let Err(e) = (c.check)(&r) {
                    why.push(e);
                }
                if !why.is_empty() {
                    failures.push(format!("{}: {} ({line})", c.cfg.name, why.join("; ")));
                }
            }
            failures
        })
    })
    .join()
    .expect("client thread")
}

#[test]
fn endpoint_probes_against_real_servers() {
    if let Some(r) = skip_reason(&["ip", "tc", "dnsmasq"]) {
        eprintln!("skipping endpoint netns test: {r}");
        return;
    }
    let mut net = Net::new();
    let ip = net.server_ip();
    let pki = Arc::new(Pki::new(ip));
    {
        let (server_ns, pki) = (net.server().to_string(), pki.clone());
        std::thread::spawn(move || {
            enter(&server_ns);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                run_servers(ip, pki).await;
                std::future::pending::<()>().await;
            });
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &pki.ca_pem).expect("ca file");
    let headers = dir.path().join("headers");
    std::fs::create_dir(&headers).expect("headers dir");
    std::fs::write(headers.join("Authorization"), "Bearer s3cret\n").expect("header");
    let dnsmasq = Command::new("ip")
        .args([
            "netns",
            "exec",
            net.server(),
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .arg(format!("--listen-address={ip}"))
        .args([
            "--port=53",
            "--local=/probes.test/",
            "--pid-file=",
            "--user=root",
        ])
        .arg(format!("--host-record=www.probes.test,{ip}"))
        // 40 A records: 670 bytes, more than the 512 of a UDP answer without EDNS, so
        // dnsmasq answers UDP with TC set and the probe must ask again over TCP.
        .args((1..=40).map(|i| format!("--host-record=many.probes.test,10.99.0.{i}")))
        .args([
            "--cname=api.probes.test,www.probes.test",
            "--txt-record=probes.test,hello",
        ])
        .spawn()
        .expect("dnsmasq");
    net.dnsmasq = Some(dnsmasq);
    // Servers and dnsmasq listening before the first probe.
    std::thread::sleep(Duration::from_millis(500));

    let base = format!("http://{ip}");
    let tls = |server_name: &str| TlsConfig {
        ca_file: Some(ca_file.to_string_lossy().into_owned()),
        server_name: Some(server_name.into()),
        insecure_skip_verify: false,
    };
    let https = |name: &str, port: u16, server_name: &str| {
        with_http(http(name, &format!("https://{ip}:{port}/ok")), |h| {
            h.tls = tls(server_name)
        })
    };
    let resolver = format!("{ip}:53");
    let mut cases = vec![
        Case {
            check: |r| {
                let p = &r.phases;
                if r.status_code != Some(200) || p.connect.is_none() || p.processing.is_none() {
                    return Err("status 200 with connect and processing phases expected".into());
                }
                if p.tls.is_some() {
                    return Err("no tls phase on http".into());
                }
                Ok(())
            },
            ..case(http("ok", &format!("{base}/ok")), EndpointState::Up, None)
        },
        case(
            with_http(http("body", &format!("{base}/ok")), |h| {
                h.body_match = Some("hello".into())
            }),
            EndpointState::Up,
            None,
        ),
        case(
            with_http(http("body-miss", &format!("{base}/ok")), |h| {
                h.body_match = Some("goodbye".into())
            }),
            EndpointState::Down,
            Some("does not contain \"goodbye\""),
        ),
        case(
            with_http(http("head", &format!("{base}/ok")), |h| {
                h.method = HttpMethod::Head
            }),
            EndpointState::Up,
            None,
        ),
        case(
            http("status", &format!("{base}/503")),
            EndpointState::Down,
            Some("status 503, expected 2xx"),
        ),
        case(
            with_http(http("status-ok", &format!("{base}/503")), |h| {
                h.valid_status_codes = vec![503]
            }),
            EndpointState::Up,
            None,
        ),
        case(
            http("redirect-not-followed", &format!("{base}/redirect")),
            EndpointState::Down,
            Some("status 302, expected 2xx"),
        ),
        case(
            with_http(http("redirect", &format!("{base}/redirect")), |h| {
                h.follow_redirects = true
            }),
            EndpointState::Up,
            None,
        ),
        case(
            with_http(http("redirect-loop", &format!("{base}/loop")), |h| {
                h.follow_redirects = true
            }),
            EndpointState::Down,
            Some("more than 5 redirects"),
        ),
        case(
            http("auth-missing", &format!("{base}/auth")),
            EndpointState::Down,
            Some("status 401"),
        ),
        case(
            with_http(http("auth", &format!("{base}/auth")), |h| {
                h.headers_dir = Some(headers.to_string_lossy().into_owned())
            }),
            EndpointState::Up,
            None,
        ),
        Case {
            check: |r| match r.phases.processing {
                Some(p) if p >= 0.3 => Ok(()),
                other => Err(format!("processing {other:?}, want >= 0.3")),
            },
            ..case(
                EndpointConfig {
                    slow_seconds: 0.2,
                    ..http("slow", &format!("{base}/slow"))
                },
                EndpointState::Slow,
                None,
            )
        },
        case(
            EndpointConfig {
                timeout_seconds: 0.2,
                slow_seconds: 0.1,
                ..http("timeout", &format!("{base}/slow"))
            },
            EndpointState::Down,
            Some("timeout after 200ms (in processing)"),
        ),
        case(
            http("reset", &format!("{base}/reset")),
            EndpointState::Down,
            Some("http: "),
        ),
        case(
            http("refused", &format!("http://{ip}:81/")),
            EndpointState::Down,
            Some("Connection refused"),
        ),
        case(
            http("resolve", "http://no-such-host.invalid/"),
            EndpointState::Down,
            Some("resolve no-such-host.invalid"),
        ),
        // Hostile servers: bounded in time (timeout) and memory (64 KiB of body).
        case(
            http("endless-body", &format!("{base}/endless")),
            EndpointState::Up,
            None,
        ),
        case(
            EndpointConfig {
                timeout_seconds: 1.0,
                slow_seconds: 0.5,
                ..http("slowloris", &format!("{base}/slowloris"))
            },
            EndpointState::Down,
            Some("timeout after 1s (in processing)"),
        ),
        case(
            http("huge-headers", &format!("{base}/huge")),
            EndpointState::Down,
            Some("message head is too large"),
        ),
        // TLS.
        Case {
            check: |r| {
                let d = r
                    .tls_expiry_days(chrono::Utc::now())
                    .ok_or_else(|| "no expiry".to_string())?;
                if !(80.0..=91.0).contains(&d) {
                    return Err(format!("expiry in {d} days, want ~90"));
                }
                if r.phases.tls.is_none() || r.tls_version.is_none() {
                    return Err("tls phase and version expected".into());
                }
                Ok(())
            },
            ..case(https("https", 443, "probes.test"), EndpointState::Up, None)
        },
        case(
            https("wrong-name", 443, "wrong.test"),
            EndpointState::Down,
            Some("not valid for name"),
        ),
        Case {
            check: |r| match r.tls_expiry_days(chrono::Utc::now()) {
                Some(d) if d < -1.0 => Ok(()),
                other => Err(format!("expiry {other:?} days, want < -1")),
            },
            ..case(
                https("expired", 8443, "probes.test"),
                EndpointState::Down,
                Some("expired"),
            )
        },
        Case {
            check: |r| match r.tls_expiry_days(chrono::Utc::now()) {
                Some(d) if (8.0..=10.0).contains(&d) => Ok(()),
                other => Err(format!("expiry {other:?} days, want 9-10")),
            },
            ..case(
                https("expiring", 9443, "probes.test"),
                EndpointState::Up,
                None,
            )
        },
        case(
            with_http(http("untrusted", &format!("https://{ip}/ok")), |h| {
                h.tls.server_name = Some("probes.test".into())
            }),
            EndpointState::Down,
            Some("invalid peer certificate"),
        ),
        case(
            with_http(http("insecure", &format!("https://{ip}:8443/ok")), |h| {
                h.tls.insecure_skip_verify = true
            }),
            EndpointState::Up,
            None,
        ),
        case(
            with_http(http("missing-ca", &format!("https://{ip}/ok")), |h| {
                h.tls.ca_file = Some("/nonexistent/ca.crt".into())
            }),
            EndpointState::Down,
            Some("CA file /nonexistent/ca.crt: No such file"),
        ),
        // TCP.
        case(
            tcp("tcp", &ip.to_string(), 80, None),
            EndpointState::Up,
            None,
        ),
        case(
            tcp("tcp-refused", &ip.to_string(), 81, None),
            EndpointState::Down,
            Some("Connection refused"),
        ),
        case(
            tcp("tcp-tls", &ip.to_string(), 443, Some(tls("probes.test"))),
            EndpointState::Up,
            None,
        ),
        case(
            tcp(
                "tcp-tls-expired",
                &ip.to_string(),
                8443,
                Some(tls("probes.test")),
            ),
            EndpointState::Down,
            Some("expired"),
        ),
        // DNS.
        Case {
            check: |r| match r.phases.resolve {
                Some(_) if r.answers.len() == 1 => Ok(()),
                _ => Err("one answer and a resolve phase expected".into()),
            },
            ..case(
                dns("dns", "www.probes.test", DnsRecordType::A, &[], &resolver),
                EndpointState::Up,
                None,
            )
        },
        Case {
            check: |r| match r.phases.resolve {
                Some(_) if r.answers.len() == 16 => Ok(()),
                _ => Err(format!(
                    "16 answers kept of 40 (asked again over TCP), got {}",
                    r.answers.len()
                )),
            },
            ..case(
                dns(
                    "dns-truncated",
                    "many.probes.test",
                    DnsRecordType::A,
                    &["10.99.0.40"],
                    &resolver,
                ),
                EndpointState::Up,
                None,
            )
        },
        case(
            dns(
                "dns-expected",
                "www.probes.test",
                DnsRecordType::A,
                &[&ip.to_string()],
                &resolver,
            ),
            EndpointState::Up,
            None,
        ),
        case(
            dns(
                "dns-wrong",
                "www.probes.test",
                DnsRecordType::A,
                &["192.0.2.1"],
                &resolver,
            ),
            EndpointState::Down,
            Some("lacks [\"192.0.2.1\"]"),
        ),
        case(
            dns(
                "dns-cname",
                "api.probes.test",
                DnsRecordType::Cname,
                &["www.probes.test"],
                &resolver,
            ),
            EndpointState::Up,
            None,
        ),
        case(
            dns(
                "dns-txt",
                "probes.test",
                DnsRecordType::Txt,
                &["hello"],
                &resolver,
            ),
            EndpointState::Up,
            None,
        ),
        case(
            dns(
                "nxdomain",
                "nope.probes.test",
                DnsRecordType::A,
                &[],
                &resolver,
            ),
            EndpointState::Down,
            Some("NXDOMAIN: nope.probes.test"),
        ),
        case(
            dns(
                "no-aaaa",
                "www.probes.test",
                DnsRecordType::Aaaa,
                &[],
                &resolver,
            ),
            EndpointState::Down,
            Some("no AAAA record for www.probes.test"),
        ),
        case(
            dns(
                "dns-refused",
                "www.probes.test",
                DnsRecordType::A,
                &[],
                &format!("{ip}:5353"),
            ),
            EndpointState::Down,
            Some("resolver 10.198."),
        ),
        case(
            EndpointConfig {
                timeout_seconds: 0.3,
                slow_seconds: 0.1,
                ..dns(
                    "dns-silent",
                    "www.probes.test",
                    DnsRecordType::A,
                    &[],
                    &format!("{ip}:5301"),
                )
            },
            EndpointState::Down,
            Some("timeout after 300ms (in resolve)"),
        ),
    ];
    let mut failures = run_cases(net.client(), std::mem::take(&mut cases));

    // A slow resolver: a UDP relay in the server namespace (port 5300) that holds each
    // query 60 ms before passing it to dnsmasq (the kernel here has no netem qdisc).
    let slow = vec![Case {
        check: |r| match r.phases.resolve {
            Some(d) if d >= 0.06 => Ok(()),
            other => Err(format!("resolve {other:?}, want >= 60 ms")),
        },
        ..case(
            EndpointConfig {
                slow_seconds: 0.05,
                ..dns(
                    "delayed-dns",
                    "www.probes.test",
                    DnsRecordType::A,
                    &[],
                    &format!("{ip}:5300"),
                )
            },
            EndpointState::Slow,
            None,
        )
    }];
    failures.extend(run_cases(net.client(), slow));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
