//! A Kubernetes client whose connection pool gives idle connections back.
//!
//! kube's default client talks HTTP/1.1 through a hyper pool with no limit on idle
//! connections and no timer to close them: after a burst of `N` concurrent requests the
//! process keeps `N` TLS connections (≈ 50 KiB of buffers each) for as long as it lives.
//! The controller runs 64 reconciles at once, so one burst left ~100 connections and
//! ~4.5 MiB of heap behind (BENCHMARKS.md, controller section). This builds the same stack
//! as `kube::Client::try_from(Config)` (TLS from the kubeconfig or in-cluster config,
//! connect/read/write timeouts, base URI, auth, extra headers, kube's retry policy for
//! 429/503/504) with [`PoolLimits`] applied and a tokio timer that closes idle
//! connections, plus dead-peer detection (TCP keepalive and `TCP_USER_TIMEOUT`, see
//! [`TCP_USER_TIMEOUT`]): kube's client has none, so a watch or request on a connection
//! whose server vanished without a FIN waits for the 295 s read timeout.
//!
//! Left out compared with kube's builder: the `tracing` span per HTTP request (kube logs
//! them at debug level; our own logs name the object instead) and the expiry time of
//! exec-plugin client certificates (in-cluster service-account tokens are re-read by the
//! auth layer, which is kept).

use std::time::Duration;

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::retry::RetryPolicy;
use kube::client::ConfigExt;
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

/// Bounds on the idle connections the client keeps to the API server.
///
/// A connection stays open while it is busy (watches hold theirs for the watch's life);
/// these limits apply once a request has finished and the connection waits in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most idle connections kept; more are closed as their requests finish.
    pub max_idle: usize,
    /// An idle connection unused this long is closed (checked every `idle_timeout`, so
    /// one lives at most twice this long).
    pub idle_timeout: Duration,
}

impl Default for PoolLimits {
    /// 16 idle connections for 30 s: enough to carry a steady trickle of requests
    /// without new TLS handshakes, and a burst's connections are gone within a minute.
    fn default() -> Self {
        Self {
            max_idle: 16,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A client from the inferred configuration (in-cluster service account, else
/// `KUBECONFIG` / `~/.kube/config`), with a bounded pool.
///
/// # Errors
/// No usable configuration, or TLS/auth settings that cannot be built.
pub async fn infer(limits: PoolLimits) -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    from_config(config, limits)
}

/// A client for `config` with a bounded pool.
///
/// # Errors
/// TLS settings (CA, client certificate) or auth settings that cannot be built.
pub fn from_config(config: Config, limits: PoolLimits) -> Result<Client, kube::Error> {
    // rustls cannot pick a process-wide provider when both `ring` and `aws-lc-rs` are
    // linked (the AWS SDK brings the latter) and would panic building the TLS config.
    // An error only means another thread installed one first.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    dead_peer_detection(&mut http);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);

    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(limits.max_idle)
        .pool_idle_timeout(limits.idle_timeout)
        .pool_timer(TokioTimer::new())
        // hyper grows a connection's read buffer up to ~400 KiB for large responses (a
        // LIST of 1,000 DaemonSets) and keeps it while the connection lives; a watch then
        // holds such a buffer for hours. 64 KiB still reads a TLS record (≤ 16 KiB) whole.
        .http1_max_buf_size(64 * 1024)
        .build(connector);

    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(hyper);
    Ok(Client::new(service, config.default_namespace))
}

/// First TCP keepalive probe after this long idle: client-go's dialer default (30 s).
pub const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Interval between keepalive probes, and how many unanswered probes close the connection.
pub const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// See [`TCP_KEEPALIVE_INTERVAL`].
pub const TCP_KEEPALIVE_RETRIES: u32 = 3;
/// `TCP_USER_TIMEOUT` (RFC 5482, `tcp(7)`): sent data unacknowledged this long closes the
/// connection.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes a connection to an API server that vanished without a FIN or RST (a node or
/// network gone, a NAT or conntrack entry dropped) fail within about a minute instead of
/// hanging: an idle watch is probed by TCP keepalive (30 s idle, then 3 probes 10 s apart,
/// so ≤ 60 s), and a request written into such a connection fails once its bytes stay
/// unacknowledged for [`TCP_USER_TIMEOUT`]. Without these the kernel defaults (2 h idle,
/// 9 × 75 s probes) and kube's 295 s read timeout apply, and a controller can sit on a dead
/// watch for minutes seeing no change. Keepalive probes cost one empty segment per idle
/// connection per 30 s.
fn dead_peer_detection(http: &mut HttpConnector) {
    http.set_keepalive(Some(TCP_KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(TCP_KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
    #[cfg(target_os = "linux")]
    http.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
}

#[cfg(test)]
mod tests {
    use super::*;

    // The pool's behaviour against a real API server is covered by the controller
    // benchmark (open sockets after a burst); here: the stack builds from a config and
    // sends requests to the configured server.
    #[tokio::test]
    async fn requests_reach_the_configured_server() -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await?;
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let body = r#"{"major":"1","minor":"20","gitVersion":"v1.20.2","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#;
            sock.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
            anyhow::Ok(head)
        });
        let config = Config::new(format!("http://{addr}").parse()?);
        let client = from_config(config, PoolLimits::default())?;
        let version = client.apiserver_version().await?;
        assert_eq!(version.git_version, "v1.20.2");
        let head = server.await??;
        assert!(head.starts_with("GET /version HTTP/1.1"), "{head}");
        Ok(())
    }
}
