//! Plain HTTP/1.0 exchanges with servers the e2e tests reach on the host bridge or pod IPs
//! (the LLM stand-in, Alertmanager, Prometheus, the components' `/metrics`). One request per
//! connection, 10 s at most; no TLS.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `METHOD http://addr/path` with an optional JSON body; returns (status, body).
///
/// # Errors
/// When the connection fails, the exchange takes longer than [`TIMEOUT`], or the answer has
/// no HTTP status line. Any status, 4xx and 5xx included, is `Ok`.
pub async fn request(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(TIMEOUT, fut)
        .await
        .with_context(|| format!("{method} http://{addr}{path} timed out"))?
        .with_context(|| format!("{method} http://{addr}{path}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status from {addr}{path}: {head}"))?;
    Ok((status, body.to_string()))
}

/// `GET http://addr/path`, expecting 200 and a JSON body.
///
/// # Errors
/// As [`request`], and for any other status or a body that is not JSON.
pub async fn get_json(addr: &str, path: &str) -> Result<Value> {
    let (status, body) = request("GET", addr, path, None).await?;
    ensure!(status == 200, "GET {addr}{path}: {status} {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {addr}{path}: not JSON: {body}"))
}
