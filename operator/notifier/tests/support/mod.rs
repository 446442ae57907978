//! Test receivers: a capturing HTTP server with scripted answers, an SMTP server
//! (Python's aiosmtpd) and an Alertmanager (Debian's prometheus-alertmanager).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

/// One captured request.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: &str) -> Self {
        Self {
            status: 200,
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            ..Self::ok(body)
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Clone)]
struct State {
    requests: Arc<Mutex<Vec<Captured>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    default: Reply,
}

/// A capturing HTTP receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    state: State,
    task: tokio::task::JoinHandle<()>,
}

async fn handle(
    axum::extract::State(s): axum::extract::State<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    s.requests.lock().expect("lock").push(Captured {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let reply = s
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| s.default.clone());
    tokio::time::sleep(reply.delay).await;
    let mut resp = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body.clone(),
    )
        .into_response();
    for (k, v) in &reply.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    resp
}

impl Receiver {
    /// Starts on a free port; answers `default` once the script is used up.
    pub async fn start(default: Reply) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), default).await
    }

    /// Starts on `addr` (to bring a "down" receiver up on its old port).
    pub async fn start_on(addr: SocketAddr, default: Reply) -> Self {
        let state = State {
            requests: Arc::default(),
            script: Arc::default(),
            default,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn push(&self, r: Reply) {
        self.state.script.lock().expect("lock").push_back(r);
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// A child process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SMTP_SINK: &str = r#"
import asyncio, os, sys
from aiosmtpd.controller import Controller
out = sys.argv[2]
class Sink:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(out))
        with open(os.path.join(out, "msg%03d.eml" % n), "wb") as f:
            f.write(envelope.content)
        return "250 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
try:
    asyncio.get_event_loop().run_forever()
finally:
    c.stop()
"#;

/// Starts aiosmtpd (plain SMTP, no AUTH) writing each message to `dir`; `Err` says why not.
pub fn start_smtp(dir: &std::path::Path) -> Result<(Child, u16), String> {
    use std::io::BufRead;
    let python = "/usr/bin/python3";
    let ok = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err("aiosmtpd is not installed (apt-get install python3-aiosmtpd)".into());
    }
    let port = free_port().port();
    let mut child = std::process::Command::new(python)
        .args([
            "-c",
            SMTP_SINK,
            &port.to_string(),
            &dir.display().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start python: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let child = Child(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        return Err(format!("aiosmtpd did not start: {line:?}"));
    }
    Ok((child, port))
}

/// Starts Debian's Alertmanager on a free loopback port; `Err` says why not.
pub async fn start_alertmanager(dir: &std::path::Path) -> Result<(Child, String), String> {
    let bin = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)",
        )?;
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: devnull\nreceivers:\n  - name: devnull\n",
    )
    .map_err(|e| e.to_string())?;
    let addr = free_port();
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start alertmanager: {e}"))?;
    let child = Child(child);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status().is_success() {
                return Ok((child, base));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("alertmanager did not become ready in 10 s".into())
}
