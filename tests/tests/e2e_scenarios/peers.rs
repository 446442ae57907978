//! The host-side peers the samples in `e2e/samples/` point at, all on the host bridge: the
//! LLM stand-in (Bedrock Converse), Alertmanager, and a webhook receiver that records every
//! notification. Started before the chart is installed.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_tests::eventually;
use fabricwatch_tests::host::{standin_binary, HostProcess};
use fabricwatch_tests::http;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{ALERTMANAGER_PORT, HOST, STANDIN_PORT, WEBHOOK_PORT};

/// The running peers and their addresses.
pub(crate) struct Peers {
    /// The webhook receiver's task (runs until the test's runtime ends).
    _webhook_task: tokio::task::JoinHandle<()>,
    pub(crate) webhook: Webhook,
    pub(crate) alertmanager: HostProcess,
    pub(crate) standin: HostProcess,
    /// `host:port` of the stand-in.
    pub(crate) standin_addr: String,
    /// `host:port` of Alertmanager.
    pub(crate) am_addr: String,
}

impl Peers {
    /// Starts the stand-in, Alertmanager (`prometheus-alertmanager`, a receiver-less config)
    /// and the webhook receiver, with logs and data in `work`, and waits up to 30 s until the
    /// stand-in and Alertmanager serve.
    pub(crate) async fn start(work: &Path) -> Result<Peers> {
        let standin = HostProcess::start(
            "llm-standin",
            work,
            Command::new(standin_binary()?).args(["--listen", &format!("{HOST}:{STANDIN_PORT}")]),
        )?;
        let am_config = work.join("alertmanager.yml");
        std::fs::write(
            &am_config,
            "route: {receiver: none}\nreceivers: [{name: none}]\n",
        )?;
        let alertmanager = HostProcess::start(
            "alertmanager",
            work,
            Command::new(which("prometheus-alertmanager")?).args([
                format!("--config.file={}", am_config.display()),
                format!("--storage.path={}", work.join("am-data").display()),
                format!("--web.listen-address={HOST}:{ALERTMANAGER_PORT}"),
                "--cluster.listen-address=".to_string(),
            ]),
        )?;
        let (webhook, webhook_task) = Webhook::start(&format!("{HOST}:{WEBHOOK_PORT}")).await?;
        let standin_addr = format!("{HOST}:{STANDIN_PORT}");
        let am_addr = format!("{HOST}:{ALERTMANAGER_PORT}");
        eventually(
            "the stand-in and Alertmanager serve",
            Duration::from_secs(30),
            || async {
                http::request("GET", &standin_addr, "/_standin/requests", None).await?;
                let (s, _) = http::request("GET", &am_addr, "/-/ready", None).await?;
                ensure!(s == 200, "alertmanager not ready: {s}");
                Ok(())
            },
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e:#}\nalertmanager log:\n{}\nstand-in log:\n{}",
                alertmanager.log_tail(),
                standin.log_tail()
            )
        })?;
        Ok(Peers {
            _webhook_task: webhook_task,
            webhook,
            alertmanager,
            standin,
            standin_addr,
            am_addr,
        })
    }
}

/// `bin` on `PATH` (Debian's Prometheus packages).
pub(crate) fn which(bin: &str) -> Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{bin} not found on PATH (apt-get install prometheus prometheus-alertmanager)")
        })
}

/// A webhook receiver: records the JSON body of every POST, answers 200.
#[derive(Clone, Default)]
pub(crate) struct Webhook {
    /// Every notification received, in order.
    pub(crate) received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    async fn start(addr: &str) -> Result<(Webhook, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the webhook receiver on {addr}"))?;
        let hook = Webhook::default();
        let h = hook.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                if let Ok(v) = serde_json::from_str::<Value>(&body[..len]) {
                                    if let Ok(mut r) = h.received.lock() {
                                        r.push(v);
                                    }
                                }
                                let _ = s
                                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                                    .await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Ok((hook, task))
    }

    /// The firing notifications that mention `rule`.
    pub(crate) fn firing(&self, rule: &str) -> Vec<Value> {
        self.received
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|v| v["status"] == "firing" && v.to_string().contains(rule))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}
