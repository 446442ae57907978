//! The Kubernetes client against an API server that vanishes without a FIN or RST (a node
//! or network gone, a conntrack entry dropped): the client sits in one network namespace,
//! a minimal HTTP server in another, and an iptables DROP in the server's namespace makes
//! the server silent mid-connection. Without dead-peer detection a request written into
//! the pooled connection, or a watch waiting on it, hangs until kube's 295 s read timeout;
//! with it, both fail within about a minute, so the caller retries on a new connection.
//!
//! Needs root, `ip` and `iptables`; skipped otherwise.

// The shared namespace helpers call `geteuid` and `setns` (each block says why it is sound).
#![allow(unsafe_code)]

#[path = "../../node-agent/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use fabricwatch_common::kube_client::{
    from_config, PoolLimits, TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTERVAL, TCP_KEEPALIVE_RETRIES,
    TCP_USER_TIMEOUT,
};
use kube::Config;
use support::{enter, sh, skip_reason, VethPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 36_555;
const VERSION: &str = r#"{"major":"1","minor":"20","gitVersion":"v1.20.2","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#;

/// Serves `GET /version` on every request of every connection (HTTP/1.1 keep-alive); any
/// other path gets response headers and then nothing, like a watch with no events.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                let Ok(n) = sock.read(&mut buf).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..n]);
                let reply = if head.starts_with("GET /version ") {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{VERSION}",
                        VERSION.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
                };
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Runs `f` on a current-thread runtime in a new thread inside network namespace `ns`, so
/// that every socket it opens belongs to that namespace.
fn in_netns<T: Send + 'static>(
    ns: String,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        enter(&ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(f())
    })
}

/// The client under test, for the server at `url`.
fn client(url: &str) -> Result<kube::Client, String> {
    let uri = url.parse().map_err(|e| format!("url: {e}"))?;
    from_config(Config::new(uri), PoolLimits::default()).map_err(|e| format!("client: {e}"))
}

/// The namespaces, the server running in `b`, and a client in `a` whose first request has
/// succeeded (its connection is now pooled); then `b` drops everything sent to the server.
struct Setup {
    pair: VethPair,
}

impl Setup {
    fn new(name: &str, subnet: &str) -> Option<Self> {
        if let Some(why) = skip_reason(&["ip", "iptables"]) {
            eprintln!("skipped: {why}");
            return None;
        }
        let pair = VethPair::new(
            format!("fwkc-{name}-a"),
            format!("fwkc-{name}-b"),
            "kca",
            "kcb",
            subnet.to_string(),
        );
        let addr = format!("{}:{PORT}", pair.addr_b());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        // The server thread lives until the namespace is deleted (its listener then fails).
        drop(in_netns(pair.b.clone(), move || {
            Box::pin(async move {
                let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
                let _ = ready_tx.send(());
                serve(listener).await;
            })
        }));
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server listening");
        Some(Self { pair })
    }

    /// A function that makes the server silent: namespace `b` drops every packet sent to
    /// it, so the client sees neither answers nor a FIN or RST.
    fn silencer(&self) -> impl FnOnce() + Send + 'static {
        let b = self.pair.b.clone();
        move || {
            sh(&format!(
                "ip netns exec {b} iptables -I INPUT -p tcp --dport {PORT} -j DROP"
            ))
            .expect("iptables DROP");
        }
    }
}

/// A request written into a pooled connection whose server went silent fails after
/// `TCP_USER_TIMEOUT` (its bytes stay unacknowledged) instead of waiting for a response
/// until the 295 s read timeout.
#[test]
fn a_request_on_a_silently_dead_connection_fails_within_the_user_timeout() {
    let Some(setup) = Setup::new("req", "10.213.7") else {
        return;
    };
    let url = format!("http://{}:{PORT}", setup.pair.addr_b());
    let silence = setup.silencer();
    // One runtime for both requests: the pooled connection lives in the runtime that
    // opened it.
    let (outcome, took) = in_netns(setup.pair.a.clone(), move || {
        Box::pin(async move {
            let client = match client(&url) {
                Ok(c) => c,
                Err(e) => return (Err(e), Duration::ZERO),
            };
            if let Err(e) = client.apiserver_version().await {
                return (Err(format!("first request: {e}")), Duration::ZERO);
            }
            // The connection is pooled; now the server goes silent.
            silence();
            let t0 = Instant::now();
            let r =
                tokio::time::timeout(Duration::from_secs(120), client.apiserver_version()).await;
            let outcome = match r {
                Err(_) => Err("still waiting after 120 s".to_string()),
                Ok(Ok(_)) => Err("the request succeeded".to_string()),
                Ok(Err(e)) => Ok(fabricwatch_common::error_chain(&e)),
            };
            (outcome, t0.elapsed())
        })
    })
    .join()
    .expect("client thread");
    eprintln!("request on a dead connection: {outcome:?} after {took:?}");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(
        took >= TCP_USER_TIMEOUT - Duration::from_secs(1) && took < TCP_USER_TIMEOUT * 2,
        "failed after {took:?}; expected about {TCP_USER_TIMEOUT:?}"
    );
}

/// A long-poll (a watch with no events) on a connection whose server went silent fails once
/// TCP keepalive gives up (idle, then the probes) instead of waiting for the read timeout.
#[test]
fn an_idle_watch_on_a_silently_dead_connection_fails_by_keepalive() {
    let Some(setup) = Setup::new("watch", "10.213.8") else {
        return;
    };
    let url = format!("http://{}:{PORT}", setup.pair.addr_b());
    let silence = setup.silencer();
    let (outcome, took) = in_netns(setup.pair.a.clone(), move || {
        Box::pin(async move {
            let client = match client(&url) {
                Ok(c) => c,
                Err(e) => return (Err(e), Duration::ZERO),
            };
            let req = match axum::http::Request::get("/api/v1/namespaces/x/configmaps?watch=true")
                .body(Vec::new())
            {
                Ok(r) => r,
                Err(e) => return (Err(format!("request: {e}")), Duration::ZERO),
            };
            let mut lines = match client.request_events::<serde_json::Value>(req).await {
                Ok(s) => Box::pin(s),
                Err(e) => return (Err(format!("watch start: {e}")), Duration::ZERO),
            };
            // The watch is established and idle; now the server goes silent.
            silence();
            let t0 = Instant::now();
            use futures::StreamExt;
            let r = tokio::time::timeout(Duration::from_secs(240), lines.next()).await;
            let outcome = match r {
                Err(_) => Err("still waiting after 240 s".to_string()),
                Ok(None) => Ok("stream ended"),
                Ok(Some(Err(_))) => Ok("stream failed"),
                Ok(Some(Ok(_))) => Err("an event arrived".to_string()),
            };
            (outcome.map(str::to_string), t0.elapsed())
        })
    })
    .join()
    .expect("client thread");
    eprintln!("idle watch on a dead connection: {outcome:?} after {took:?}");
    assert!(outcome.is_ok(), "{outcome:?}");
    let bound = TCP_KEEPALIVE_IDLE + TCP_KEEPALIVE_INTERVAL * (TCP_KEEPALIVE_RETRIES + 2);
    assert!(
        took < bound,
        "the dead watch was noticed after {took:?}, bound {bound:?}"
    );
    drop(setup);
}
