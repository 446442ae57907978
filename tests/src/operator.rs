//! A `fabricwatch-controller` process for tests: the real binary
//! ([`crate::controller_binary`]), scoped to one namespace, its log in a file, its /metrics
//! readable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Cluster;

/// A running `fabricwatch-controller`, killed on drop.
pub struct Operator {
    child: Child,
    log: PathBuf,
    metrics: SocketAddr,
}

impl Operator {
    /// Starts a controller scoped to `ns` (its Lease and central workloads live there too).
    ///
    /// # Errors
    /// When the binary is missing or cannot be started.
    pub fn start(cluster: &Cluster, ns: &str, tag: &str, extra: &[&str]) -> Result<Operator> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::env::temp_dir().join(format!("fabricwatch-operator-{ns}-{tag}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(crate::controller_binary()?)
            .args(["--listen", &metrics.to_string()])
            .args(["--namespace", ns, "--watch-namespace", ns])
            .args(["--identity", &format!("{ns}-{tag}")])
            .args(extra)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("RUST_LOG", "info,fabricwatch_operator=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting fabricwatch-controller")?;
        Ok(Operator {
            child,
            log,
            metrics,
        })
    }

    /// The last 40 lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Value of an unlabelled metric, or the sum of a labelled one's series matching `filter`.
    ///
    /// # Errors
    /// When /metrics cannot be read or the metric is not exposed.
    pub async fn metric(&self, name: &str, filter: &str) -> Result<f64> {
        let text = http_get(self.metrics, "/metrics").await?;
        let mut sum = 0.0;
        let mut found = false;
        for line in text.lines() {
            if line.starts_with(name)
                && line[name.len()..].starts_with(['{', ' '])
                && line.contains(filter)
            {
                if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                    sum += v;
                    found = true;
                }
            }
        }
        ensure!(found, "metric {name} ({filter}) not exposed");
        Ok(sum)
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Operator {
    /// Process id (for /proc measurements).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file (stdout and stderr).
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Address of its /metrics.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("operator log {}:\n{}", self.log.display(), self.log_tail());
        }
    }
}

/// `GET path` over HTTP/1.0; the whole response, status line included.
///
/// # Errors
/// Connection failures and non-200 answers.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    ensure!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "GET {path}: {}",
        text.lines().next().unwrap_or("")
    );
    Ok(text)
}
