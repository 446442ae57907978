//! Synthetic agents pushing reports to analytics over HTTP.
//!
//! `loadgen <base-url> <agents> <interval-seconds> <duration-seconds>`: every agent pushes one
//! report per interval (start times spread evenly), each with 8 ping peers, 2 RDMA ports with
//! the kernel's error counters, and host metrics — the size of a real report. Prints how many
//! pushes succeeded and their latency percentiles.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use fabricwatch_proto::{
    report::{AgentReport, AgentState, HostReport, PeerReport, RdmaPortReport, REPORT_PATH},
    ObjectRef,
};

fn report(i: usize, seq: u64) -> AgentReport {
    let jitter = ((i as u64 * 7919 + seq * 104_729) % 1000) as f64 / 1e7;
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: "bench".into(),
            name: format!("fabric-{}", i % 4),
        },
        node: format!("node-{i:05}"),
        node_ip: Some(format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)),
        pod: Some(format!("fabric-agent-{i:05}")),
        agent_version: "0.1.0".into(),
        seq,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        agent_state: AgentState::Running,
        host: Some(HostReport {
            cpu_usage_percent: 20.0 + jitter * 1e5,
            cpus: 64,
            memory_used_percent: 40.0,
            ..Default::default()
        }),
        ping: (1..=8)
            .map(|k| PeerReport {
                peer: format!("node-{:05}", (i + k * 97) % 100_000),
                address: "10.0.0.1".into(),
                sent: 5,
                received: 5,
                rtt_avg_seconds: Some(0.0001 + jitter),
                rtt_p99_seconds: Some(0.0002 + jitter),
                jitter_seconds: Some(jitter / 2.0),
                ..Default::default()
            })
            .collect(),
        rdma: (0..2)
            .map(|d| RdmaPortReport {
                device: format!("mlx5_{d}"),
                port: 1,
                link_layer: "InfiniBand".into(),
                state: "ACTIVE".into(),
                phys_state: "LinkUp".into(),
                rate_gbps: Some(200.0),
                counters: fabricwatch_analytics::derive::RDMA_ERROR_COUNTERS
                    .iter()
                    .map(|c| (c.to_string(), seq))
                    .chain([
                        ("port_rcv_data".to_string(), seq * 1_000_000),
                        ("port_xmit_data".to_string(), seq * 1_000_000),
                    ])
                    .collect(),
                rates: BTreeMap::new(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: loadgen <base-url> <agents> <interval-seconds> <duration-seconds>";
    let base = a
        .get(1)
        .ok_or_else(|| anyhow::anyhow!(usage))?
        .trim_end_matches('/')
        .to_string();
    let agents: usize = a.get(2).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let interval: f64 = a.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let duration: f64 = a.get(4).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let url = format!("{base}{REPORT_PATH}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..agents {
        let (client, url, ok, failed, lat) = (
            client.clone(),
            url.clone(),
            ok.clone(),
            failed.clone(),
            latencies.clone(),
        );
        let offset = Duration::from_secs_f64(interval * i as f64 / agents as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(interval));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0;
            while started.elapsed().as_secs_f64() < duration {
                tick.tick().await;
                seq += 1;
                let body = serde_json::to_vec(&report(i, seq)).unwrap_or_default();
                let t0 = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(t0.elapsed().as_secs_f64());
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    l.sort_by(f64::total_cmp);
    let q = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
            * 1e3
    };
    println!(
        "agents={agents} ok={} failed={} rate={:.1}/s latency_ms p50={:.2} p99={:.2} max={:.2}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
