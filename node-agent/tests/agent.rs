//! The agent binary end to end: standalone on the RoCE fixture tree, and pushing to a real
//! analytics stand-in on 127.0.0.1 that hands out peers.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, routing::post, Json, Router};
use fabricwatch_proto::report::{AgentReport, Peer, PushResponse};

const AGENT: &str = env!("CARGO_BIN_EXE_fabricwatch-agent");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

async fn wait_until<F: Fn(&str) -> bool>(url: &str, ok: F) -> String {
    for _ in 0..150 {
        if let Some((200, body)) = get(url).await {
            if ok(&body) {
                return body;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never satisfied the condition");
}

#[tokio::test]
async fn standalone_serves_metrics_status_and_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        // Host thresholds out of reach: the health asserted below must come from the RDMA
        // fixture, not from how full or busy the machine running the test is.
        "intervalSeconds: 1\nping:\n  protocol: tcp\n  tcpPort: 1\n  packetsPerProbe: 2\n  timeoutSeconds: 0.2\n  externalTargets: [127.0.0.1]\nthresholds:\n  cpuUsagePercent: {warning: 100, critical: 100}\n  memoryUsedPercent: {warning: 100, critical: 100}\n  diskFreePercent: {warning: 0, critical: 0}\n",
    )
    .expect("write");
    let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/roce/sys");
    let snaps = dir.path().join("snaps");
    let child = Command::new(AGENT)
        .args(["--standalone", "--config"])
        .arg(&cfg)
        .arg("--sysfs-root")
        .arg(&sysfs)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--snapshot-dir")
        .arg(&snaps)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    let metrics = wait_until(&format!("{base}/metrics"), |b| {
        b.contains("fabricwatch_ping_up")
    })
    .await;
    for line in [
        r#"fabricwatch_rdma_port_received_bytes_total{device="mlx5_0",port="1"} 421527243180"#,
        r#"fabricwatch_rdma_port_counters_total{device="mlx5_0",port="1",counter="symbol_error"} 12"#,
        r#"fabricwatch_rdma_congestion_cnp_sent_total{device="mlx5_0",port="1"} 743"#,
        r#"fabricwatch_rdma_congestion_ecn_marked_packets_total{device="mlx5_1",port="1"} 4676"#,
        r#"fabricwatch_rdma_port_active{device="mlx5_1",port="1"} 0"#,
        r#"fabricwatch_rdma_port_rate_bytes_per_second{device="mlx5_0",port="1"} 12500000000"#,
        r#"fabricwatch_ping_up{peer="127.0.0.1",external="true"} 1"#,
        r#"fabricwatch_agent_state{state="running"} 1"#,
        "# TYPE fabricwatch_rdma_port_counters_total counter",
    ] {
        assert!(metrics.contains(line), "missing {line}");
    }
    assert!(metrics.contains("fabricwatch_host_memory_total_bytes"));
    assert_eq!(get(&format!("{base}/readyz")).await.map(|r| r.0), Some(200));
    assert_eq!(
        get(&format!("{base}/healthz")).await.map(|r| r.0),
        Some(200)
    );
    let status: serde_json::Value =
        serde_json::from_str(&get(&format!("{base}/status")).await.expect("status").1)
            .expect("json");
    assert_eq!(status["state"], "Running");
    assert_eq!(
        status["health"], "Warning",
        "mlx5_1 is Disabled: {}",
        status["problems"]
    );
    assert_eq!(status["rdmaPorts"][0]["netdev"], "ens1f0");
    assert_eq!(status["report"]["rdma"][0]["counters"]["np_cnp_sent"], 743);
    // Snapshots appear.
    for _ in 0..50 {
        if snaps.join("latest.json").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snaps.join("latest.json")).expect("latest"))
            .expect("json");
    assert_eq!(
        latest["report"]["node"].as_str().map(|s| !s.is_empty()),
        Some(true)
    );
    // SIGTERM stops it cleanly.
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let mut exited = None;
    for _ in 0..50 {
        if let Ok(Some(s)) = child.0.try_wait() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exited.expect("exited after SIGTERM").success());
}

#[tokio::test]
async fn bad_config_fails_naming_the_field() {
    let out = Command::new(AGENT)
        .args(["--standalone"])
        .env("FABRICWATCH_PING__TIMEOUT_SECONDS", "-1")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ping.timeoutSeconds"), "{err}");
    let out = Command::new(AGENT).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("analytics.url"));
}

#[tokio::test]
async fn pushes_reports_and_applies_peers_from_the_response() {
    let reports: Arc<Mutex<Vec<AgentReport>>> = Arc::default();
    let app = Router::new()
        .route(
            "/api/v1/reports",
            post(|State(s): State<Arc<Mutex<Vec<AgentReport>>>>, Json(r): Json<AgentReport>| async move {
                s.lock().expect("lock").push(r);
                Json(PushResponse {
                    peers: vec![Peer {
                        node: "peer-node".into(),
                        address: "127.0.0.1".into(),
                    }],
                    interval_seconds: Some(1.0),
                })
            }),
        )
        .with_state(Arc::clone(&reports));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "secret-token").expect("write");
    let port = free_port();
    let child = Command::new(AGENT)
        .env("FABRICWATCH_INTERVAL_SECONDS", "2")
        .env("FABRICWATCH_ANALYTICS__URL", format!("http://{addr}"))
        .env("FABRICWATCH_ANALYTICS__TOKEN_FILE", &token)
        .env("FABRICWATCH_PING__PROTOCOL", "tcp")
        .env("FABRICWATCH_PING__TCP_PORT", "1")
        .env("FABRICWATCH_PING__TIMEOUT_SECONDS", "0.2")
        .env("FABRICWATCH_RDMA__ENABLED", "false")
        .env("NODE_NAME", "node-a")
        .env("POD_NAME", "agent-xyz")
        .env("POD_IP", "10.0.0.9")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let _child = Proc(child);
    let mut with_peer = None;
    for _ in 0..100 {
        if let Some(r) = reports
            .lock()
            .expect("lock")
            .iter()
            .find(|r| !r.ping.is_empty())
            .cloned()
        {
            with_peer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = with_peer.expect("a report probing the peer analytics assigned");
    assert_eq!(r.node, "node-a");
    assert_eq!(r.pod.as_deref(), Some("agent-xyz"));
    assert_eq!(r.node_ip.as_deref(), Some("10.0.0.9"));
    assert_eq!(r.ping[0].peer, "peer-node");
    assert!(!r.ping[0].external);
    assert_eq!(
        r.interval_seconds, 1.0,
        "interval from the push response applied"
    );
    let first = reports.lock().expect("lock")[0].clone();
    assert_eq!(first.seq, 1);
    assert!(first.host.is_some());
}
