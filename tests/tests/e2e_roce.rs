//! RoCE lossless Ethernet on the local cluster: a node whose NIC reports a PFC pause storm.
//!
//! Every node's RoCE sysfs fixture gets an `ethtool-stats/ens1f0/{driver,statistics}`
//! directory (an mlx5 `ethtool -S` output with PFC on priority 3), which the MonitorTarget
//! names in `spec.rdma.ethtool.statisticsDir`. The test then makes node 2's pause counters and
//! `tx_pause_storm_error_events` rise and checks, from the outside:
//! - the MonitorTarget turns Critical with a problem naming the node, `mlx5_0/1 (ens1f0)` and
//!   `priority 3`;
//! - an AlertRule on `rdma_pause_frames_per_second` fires for that node and port;
//! - the onAlert AIAnalysis sends the LLM stand-in a prompt that carries the congestion
//!   figures (`pause_received/3`) and no real node name or IP.
//!
//! Needs the local cluster (`FABRICWATCH_E2E=1`), the images loaded, `python3` and the
//! stand-in binary (`cargo build -p fabricwatch-ai --features testing --bin llm-standin`, or
//! `FABRICWATCH_LLM_STANDIN_BIN`). The stand-in listens on 10.78.0.1:18091.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use fabricwatch_tests::helm::TestRelease;
use fabricwatch_tests::host::{standin_binary, HostProcess};
use fabricwatch_tests::status;
use fabricwatch_tests::{eventually, http, repo_root, require_cluster, wait_for, FIXTURE_MOUNT};

const HOST: &str = "10.78.0.1";
const STANDIN_PORT: u16 = 18091;
const READY: Duration = Duration::from_secs(240);
const ALERT: Duration = Duration::from_secs(240);
const NETDEV: &str = "ens1f0";
const STATS_DIR: &str = "ethtool-stats";

/// The statistics directories written into the nodes' fixtures; removed on drop.
struct StatsDirs(Vec<PathBuf>);

impl Drop for StatsDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// An mlx5 `ethtool -S` body with PFC on priority 3 (names as `en_stats.c` lists them).
fn statistics(pause_rx: u64, pause_tx: u64, duration_us: u64, storms: u64) -> String {
    let base = std::fs::read_to_string(
        repo_root().join("node-agent/tests/fixtures/ethtool/mlx5_core-ethq-ubuntu1804.txt"),
    )
    .unwrap_or_default();
    let mut out = String::from("NIC statistics:\n");
    for line in base.lines().filter(|l| !l.contains("global_pause")) {
        out.push_str("     ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!(
        "     rx_prio3_pause: {pause_rx}\n     rx_prio3_pause_duration: {duration_us}\n     tx_prio3_pause: {pause_tx}\n     tx_prio3_pause_duration: 0\n     rx_prio3_pause_transition: 0\n     tx_pause_storm_warning_events: {storms}\n     tx_pause_storm_error_events: {storms}\n"
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_storm_is_critical_fires_a_rule_and_reaches_the_ai() -> Result<()> {
    let cluster = require_cluster!();
    let Some(local) = cluster.local().cloned() else {
        eprintln!("skipped: needs the local e2e cluster (node fixtures, host bridge)");
        return Ok(());
    };
    let work = std::env::temp_dir().join(format!("fabricwatch-e2e-roce-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let _standin = HostProcess::start(
        "llm-standin",
        &work,
        Command::new(standin_binary()?).args(["--listen", &format!("{HOST}:{STANDIN_PORT}")]),
    )?;
    let standin = format!("{HOST}:{STANDIN_PORT}");
    eventually("the stand-in serves", Duration::from_secs(30), || async {
        http::request("GET", &standin, "/_standin/requests", None).await?;
        Ok(())
    })
    .await?;

    // Statistics on every node, all counters still.
    let nodes = cluster.ready_nodes().await?;
    ensure!(nodes.len() >= 2, "needs two nodes, found {nodes:?}");
    let mut dirs = StatsDirs(Vec::new());
    for n in 1..=nodes.len() {
        let dir = local.node_fixture_sys(n).join(STATS_DIR).join(NETDEV);
        std::fs::create_dir_all(&dir)?;
        dirs.0
            .push(dir.parent().map(Path::to_path_buf).unwrap_or(dir.clone()));
        std::fs::write(dir.join("driver"), "driver: mlx5_core\nversion: 5.0-0\n")?;
        std::fs::write(dir.join("statistics"), statistics(1000, 500, 0, 0))?;
    }

    let TestRelease {
        ns,
        operator: _,
        release: _release,
    } = TestRelease::install(&cluster, "e2e-roce").await?;

    ns.apply_yaml(&format!(
        r#"
apiVersion: fabricwatch.io/v1alpha1
kind: MonitorTarget
metadata: {{name: roce}}
spec:
  interval: 5s
  ping: {{enabled: false}}
  host: {{enabled: false}}
  rdma:
    devices: [mlx5_0]
    sysfsRoot: {FIXTURE_MOUNT}
    ethtool: {{statisticsDir: {FIXTURE_MOUNT}/{STATS_DIR}}}
---
apiVersion: fabricwatch.io/v1alpha1
kind: AlertRule
metadata: {{name: roce-pause}}
spec:
  targetRef: {{name: roce}}
  metric: rdma_pause_frames_per_second
  operator: gt
  threshold: 1000
  for: 0s
  scope: perNode
  severity: warning
  annotations:
    summary: "PFC pauses on {{{{ node }}}} {{{{ device }}}} port {{{{ port }}}}: {{{{ value }}}}/s"
  analysisRef: {{name: roce-ai}}
---
apiVersion: v1
kind: Secret
metadata: {{name: roce-ai-aws}}
type: Opaque
stringData: {{AWS_ACCESS_KEY_ID: AKIDEXAMPLESTANDIN, AWS_SECRET_ACCESS_KEY: standin-secret}}
---
apiVersion: fabricwatch.io/v1alpha1
kind: AIAnalysis
metadata: {{name: roce-ai}}
spec:
  targetRefs:
    - {{kind: MonitorTarget, name: roce}}
    - {{kind: AlertRule, name: roce-pause}}
  trigger: {{onAlert: true, minInterval: 1m}}
  provider:
    type: bedrock
    model: anthropic.claude-3-5-sonnet-20240620-v1:0
    region: us-east-1
    endpoint: http://{HOST}:{STANDIN_PORT}
    awsCredentialsSecretRef: {{name: roce-ai-aws}}
    maxTokens: 1024
    timeout: 30s
  budget: {{dailyUsd: 5, maxTokensPerRun: 20000, prices: {{inputPer1kTokens: 0.003, outputPer1kTokens: 0.015}}}}
  anonymize: true
  window: 15m
"#
    ))
    .await?;
    let mts = ns.api::<MonitorTarget>();
    let want = nodes.len() as i64;
    wait_for(
        &mts,
        "roce",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let s = status::of(m);
                s["health"] == "Healthy" && s["nodes"]["reporting"].as_i64() == Some(want)
            })
        },
        READY,
    )
    .await?;
    eprintln!("roce target Healthy with {want} nodes and still counters: ok");

    let answer = serde_json::json!({"findings": [{
        "severity": "critical",
        "title": "PFC pause storm on node-2 mlx5_0 port 1 priority 3",
        "summary": "node-2 mlx5_0 port 1 sends and receives PFC pauses on priority 3 and reports pause-storm errors.",
        "evidence": ["pause_received/3 rising on node-2 mlx5_0 port 1"],
        "affected": ["node-2"],
        "recommendation": "Find the receiver that stopped draining priority 3 behind node-2 mlx5_0 port 1.",
        "confidence": 0.7
    }]})
    .to_string();
    let (s, body) = http::request(
        "PUT",
        &standin,
        "/_standin/default",
        Some(&serde_json::json!({"answer": answer}).to_string()),
    )
    .await?;
    ensure!((200..300).contains(&s), "stand-in default: {s} {body}");
    http::request("DELETE", &standin, "/_standin/requests", None).await?;

    // Node 2's counters rise: 10,000 pause frames/s received, 5,000 sent, paused 50 % of the
    // time, one pause-storm error event every 2 s.
    let (node2, node2_ip) = nodes[1].clone();
    let stats = local
        .node_fixture_sys(2)
        .join(STATS_DIR)
        .join(NETDEV)
        .join("statistics");
    let storm = tokio::spawn(async move {
        for i in 1..=150u64 {
            let text = statistics(1000 + i * 20_000, 500 + i * 10_000, i * 1_000_000, i);
            // Written aside and renamed, so the agent never reads half a file.
            let tmp = stats.with_extension("tmp");
            if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, &stats).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    let mt = wait_for(
        &mts,
        "roce",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let s = status::of(m);
                s["health"] == "Critical"
                    && s["problems"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| {
                            let msg = p["message"].as_str().unwrap_or("");
                            p["node"] == node2.as_str()
                                && p["severity"] == "critical"
                                && msg.contains("pause storm")
                                && msg.contains("mlx5_0/1 (ens1f0)")
                                && msg.contains("priority 3")
                        })
                    })
            })
        },
        ALERT,
    )
    .await?;
    eprintln!("pause storm problem: {}", status::of(&mt)["problems"]);

    let rule = wait_for(
        &ns.api::<AlertRule>(),
        "roce-pause",
        |o: Option<&AlertRule>| {
            o.is_some_and(|r| {
                let s = status::of(r);
                let f = s["firing"].to_string();
                s["state"] == "Firing" && f.contains(&node2) && f.contains("mlx5_0")
            })
        },
        ALERT,
    )
    .await?;
    eprintln!("pause rule firing: {}", status::of(&rule)["firing"]);

    wait_for(
        &ns.api::<AIAnalysis>(),
        "roce-ai",
        |o: Option<&AIAnalysis>| {
            o.is_some_and(|x| {
                status::of(x)["findings"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty())
            })
        },
        ALERT,
    )
    .await?;
    let (s, reqs) = http::request("GET", &standin, "/_standin/requests", None).await?;
    ensure!(s == 200, "stand-in requests: {s}");
    ensure!(
        reqs.contains("congestion_per_s") && reqs.contains("pause_received/3"),
        "the prompt carries no congestion figures: {reqs}"
    );
    ensure!(
        !reqs.contains(&node2) && !reqs.contains(&node2_ip),
        "the prompt leaks the real node name or IP"
    );
    storm.abort();
    let _ = storm.await;
    drop(dirs);
    eprintln!("pause storm on {node2} mlx5_0/1 priority 3: Critical, rule Firing, AI prompt with congestion figures and anonymized: ok");
    Ok(())
}
