//! Scenario 3d: an endpoint probe (`spec.endpoints`) from every node to an HTTP server on the
//! host bridge: up everywhere (`fabricwatch_endpoint_up` in Prometheus); the server's replies
//! to fw-n2 dropped → the target Critical naming that node, "unreachable from 1 of N nodes";
//! resolved once the replies pass again. The endpoint is removed from the spec at the end.

use anyhow::{ensure, Result};
use fabricwatch_crds::MonitorTarget;
use fabricwatch_tests::host::NodeRule;
use fabricwatch_tests::{eventually, http, status, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Stack, ALERT, ENDPOINT_PORT, HOST};

/// Serves the endpoint, probes it, blocks fw-n2's replies, checks, unblocks; `prom_addr` is
/// scenario 4's Prometheus.
pub(crate) async fn one_node_cut_off(stack: &Stack<'_>, prom_addr: &str) -> Result<()> {
    let (mts, nodes) = (stack.mts(), &stack.nodes);
    let endpoint_server = TcpListener::bind((HOST, ENDPOINT_PORT)).await?;
    let serving = tokio::spawn(async move {
        while let Ok((mut s, _)) = endpoint_server.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let url = format!("http://{HOST}:{ENDPOINT_PORT}/healthz");
    mts.patch(
        "fabric",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"endpoints": [
            {"name": "host-http", "http": {"url": url}, "timeout": "2s", "slow": "1s"}
        ]}})),
    )
    .await?;
    // Every agent probes it and reports it up: the target stays Healthy with the endpoint
    // in every node's report (checked through the agents' metrics in Prometheus).
    eventually(
        "fabricwatch_endpoint_up == 1 from every node",
        ALERT,
        || async {
            let q = http::get_json(
                prom_addr,
                "/api/v1/query?query=fabricwatch_endpoint_up%7Bendpoint%3D%22host-http%22%7D",
            )
            .await?;
            let ups: Vec<String> = q["data"]["result"]
                .as_array()
                .map(|r| r.iter().map(|s| s["value"][1].to_string()).collect())
                .unwrap_or_default();
            ensure!(
                ups.len() == nodes.len() && ups.iter().all(|v| v == "\"1\""),
                "endpoint_up series: {ups:?}"
            );
            Ok(())
        },
    )
    .await?;
    // nodes[1] is fw-n2: the local cluster numbers its nodes from 1 (as in 3a).
    let (blocked, _) = nodes[1].clone();
    let port = ENDPOINT_PORT.to_string();
    let mut block = NodeRule::insert(
        stack.local,
        2,
        &["-p", "tcp", "-s", HOST, "--sport", &port, "-j", "DROP"],
    )?;
    let mt = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let p = status::of(m)["problems"].to_string();
                status::health(m) == "Critical"
                    && p.contains(&format!("\"node\":\"{blocked}\""))
                    && p.contains("endpoint host-http")
                    && p.contains(&format!("unreachable from 1 of {} nodes", nodes.len()))
            })
        },
        ALERT,
    )
    .await?;
    eprintln!(
        "target with one node's path blocked: {}",
        status::of(&mt)["problems"]
    );
    block.remove()?;
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(|m| status::health(m) == "Healthy"),
        ALERT,
    )
    .await?;
    mts.patch(
        "fabric",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"endpoints": null}})),
    )
    .await?;
    serving.abort();
    eprintln!("scenario 3d (endpoint probe from every node; {blocked}'s replies dropped → named, 1 of {}; resolved): ok", nodes.len());
    Ok(())
}
