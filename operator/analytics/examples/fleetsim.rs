//! Fleet simulator for fault localization: synthetic agents push reports through the real
//! ingest API (`POST /api/v1/reports`, the real router served on 127.0.0.1, no token check
//! as with `--insecure-skip-auth`), probe exactly the peers each push response assigns, and
//! lose probes by a fault model; after every round the evaluation cycle's localization step
//! runs and the suspects are read back from `GET /api/v1/targets/{ns}/{name}`.
//!
//! ```text
//! cargo run --release -p fabricwatch-analytics --example fleetsim -- \
//!     [--nodes 100,500] [--max-peers 8,32] [--scenarios healthy,node,link,...] \
//!     [--interval 2] [--warmup 4] [--rounds 6] [--probes 10] [--background 0.001] \
//!     [--rack 20] [--seed 1]
//! ```
//!
//! Fault models (loss per round trip, combined with the background loss as independent
//! drops): `node` (one node's NIC drops 5 % both ways), `node40` (40 %), `link` (one probed
//! pair drops 30 % both ways), `two-nodes` (two nodes, 20 %), `domain` (every path across
//! one rack drops 30 %), `dead` (a node stops: no reports, every probe to it lost), `host`
//! (a node at 99 % CPU whose own probes see RTT p99 of 30 ms). `healthy` has background loss
//! only. Scoring: a suspect is a true positive when its name (`node/…`, `link/…–…`,
//! `domain/…`) is the injected fault's. Precision and recall count every round from the
//! third after the fault started (the "localized within 3 intervals" allowance); time to
//! localize is the first round after the fault starts at which every injected fault is a
//! suspect. CPU: the server's threads (`/proc/self/task/*/stat`) for ingest, and the
//! localization call (single-threaded, no IO) for localization.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use fabricwatch_analytics::{
    evaluator::Evaluator,
    fleet::{Fleet, Settings, TargetConfig},
    http::router,
    metrics::Metrics,
    policy::AgentPolicy,
    state::{lock, Catalog, EventLog, Shared},
};
use fabricwatch_proto::{
    report::{AgentReport, AgentState, HostReport, PeerReport, PushResponse, REPORT_PATH},
    ObjectRef,
};

const NAMESPACE: &str = "sim";
const TOPOLOGY_KEY: &str = "topology.kubernetes.io/rack";

/// SplitMix64: a small deterministic generator (Steele, Lea, Flood 2014).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The catalog of a simulated cluster: every target exists with the scenario's settings;
/// node `node-NNNN` is in rack `NNNN / rack`.
struct SimCatalog {
    config: TargetConfig,
    rack: usize,
}

fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

fn rack_of(i: usize, rack: usize) -> String {
    format!("rack-{:02}", i / rack.max(1))
}

impl Catalog for SimCatalog {
    fn target(&self, t: &ObjectRef) -> Option<TargetConfig> {
        (t.namespace == NAMESPACE).then(|| self.config.clone())
    }
    fn node_label(&self, node: &str, key: &str) -> Option<String> {
        let i: usize = node.strip_prefix("node-")?.parse().ok()?;
        (key == TOPOLOGY_KEY).then(|| rack_of(i, self.rack))
    }
}

/// Injected fault: loss per round trip by node, pair and rack crossing.
#[derive(Clone, Debug, Default)]
struct Fault {
    nodes: BTreeMap<usize, f64>,
    links: BTreeMap<(usize, usize), f64>,
    rack: Option<(String, f64)>,
    dead: BTreeSet<usize>,
    /// Host overload: 99 % CPU, own probes slow.
    host: BTreeSet<usize>,
    expected: BTreeSet<String>,
}

impl Fault {
    fn loss(&self, s: usize, d: usize, rack: usize, bg: f64) -> f64 {
        if self.dead.contains(&d) {
            return 1.0;
        }
        let mut ok = 1.0 - bg;
        for n in [s, d] {
            ok *= 1.0 - self.nodes.get(&n).copied().unwrap_or(0.0);
        }
        ok *= 1.0
            - self
                .links
                .get(&(s.min(d), s.max(d)))
                .copied()
                .unwrap_or(0.0);
        if let Some((r, p)) = &self.rack {
            if (&rack_of(s, rack) == r) != (&rack_of(d, rack) == r) {
                ok *= 1.0 - p;
            }
        }
        1.0 - ok
    }
}

struct Opts {
    interval: f64,
    warmup: usize,
    rounds: usize,
    probes: u32,
    background: f64,
    rack: usize,
    seed: u64,
}

#[derive(Default)]
struct Outcome {
    tp: usize,
    fp: usize,
    fn_: usize,
    time_to_localize: Option<usize>,
    healthy_fp_suspects: usize,
    non_healthy_node_rounds: usize,
    reports: usize,
    ingest_cpu_s: f64,
    localize_s: f64,
    failed: usize,
    last_suspects: Vec<String>,
}

fn server_cpu_seconds() -> f64 {
    // utime + stime of the server runtime's threads, in clock ticks (USER_HZ = 100 on Linux).
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some((comm, rest)) = stat.split_once(") ") else {
                continue;
            };
            if !comm.ends_with("fw-analytics") {
                continue;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields after "pid (comm)": state is index 0, utime 11, stime 12.
            ticks += f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            ticks += f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ticks as f64 / 100.0
}

struct Agent {
    seq: u64,
    peers: Vec<(String, usize)>,
}

#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    client: &reqwest::Client,
    base: &str,
    shared: &Arc<Shared>,
    target: &str,
    n: usize,
    fault_at_start: &Fault,
    scenario: &str,
    o: &Opts,
    rng: &mut Rng,
) -> Outcome {
    let url = format!("{base}{REPORT_PATH}");
    let view_url = format!("{base}/api/v1/targets/{NAMESPACE}/{target}");
    let agents = Arc::new(Mutex::new(
        (0..n)
            .map(|_| Agent {
                seq: 0,
                peers: Vec::new(),
            })
            .collect::<Vec<_>>(),
    ));
    let total = o.warmup + o.rounds;
    let mut out = Outcome::default();
    let mut fault = Fault::default();
    for round in 0..=total {
        let faulty = round > o.warmup;
        if round == o.warmup + 1 {
            fault = fault_at_start.clone();
            // A link fault needs a probed pair: a random node and the first peer it was given.
            if scenario == "link" {
                let a = lock(&agents);
                let me = rng.below(n);
                if let Some((_, p)) = a[me].peers.first() {
                    let (x, y) = (me.min(*p), me.max(*p));
                    fault.links.insert((x, y), 0.3);
                    fault.expected =
                        BTreeSet::from([format!("link/{}–{}", node_name(x), node_name(y))]);
                }
            }
        }
        let started = Instant::now();
        let cpu0 = server_cpu_seconds();
        // One report per live agent, built with this round's losses.
        let mut bodies = Vec::with_capacity(n);
        {
            let mut a = lock(&agents);
            for (i, ag) in a.iter_mut().enumerate() {
                if fault.dead.contains(&i) {
                    continue;
                }
                ag.seq += 1;
                let slow = fault.host.contains(&i);
                let ping = ag
                    .peers
                    .iter()
                    .map(|(name, j)| {
                        let p = fault.loss(i, *j, o.rack, o.background);
                        let received = (0..o.probes).filter(|_| rng.unit() >= p).count() as u32;
                        let base_rtt = if slow {
                            0.030
                        } else {
                            0.000_10 + 0.000_05 * rng.unit()
                        };
                        PeerReport {
                            peer: name.clone(),
                            address: format!("10.0.{}.{}", j / 250, j % 250 + 1),
                            sent: o.probes,
                            received,
                            loss_percent: 100.0 * f64::from(o.probes - received)
                                / f64::from(o.probes),
                            rtt_avg_seconds: (received > 0).then_some(base_rtt),
                            rtt_p50_seconds: (received > 0).then_some(base_rtt),
                            rtt_p99_seconds: (received > 0).then_some(base_rtt * 2.0),
                            jitter_seconds: (received > 0).then_some(base_rtt / 10.0),
                            ..Default::default()
                        }
                    })
                    .collect();
                let r = AgentReport {
                    schema_version: 1,
                    target: ObjectRef {
                        namespace: NAMESPACE.into(),
                        name: target.into(),
                    },
                    node: node_name(i),
                    node_ip: Some(format!("10.0.{}.{}", i / 250, i % 250 + 1)),
                    pod: Some(format!("{target}-agent-{i:04}")),
                    agent_version: "sim".into(),
                    seq: ag.seq,
                    collected_at: Utc::now(),
                    interval_seconds: o.interval,
                    agent_state: AgentState::Running,
                    host: Some(HostReport {
                        cpu_usage_percent: if slow { 99.0 } else { 20.0 },
                        cpus: 32,
                        memory_used_percent: 40.0,
                        ..Default::default()
                    }),
                    ping,
                    ..Default::default()
                };
                bodies.push((i, serde_json::to_vec(&r).unwrap_or_default()));
            }
        }
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(bodies.len());
        for (i, body) in bodies {
            let (client, url, agents, sem) =
                (client.clone(), url.clone(), agents.clone(), sem.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.ok()?;
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .ok()?;
                if !r.status().is_success() {
                    return None;
                }
                let resp: PushResponse = r.json().await.ok()?;
                let peers = resp
                    .peers
                    .into_iter()
                    .filter_map(|p| {
                        let j = p.node.strip_prefix("node-")?.parse().ok()?;
                        Some((p.node, j))
                    })
                    .collect();
                lock(&agents)[i].peers = peers;
                Some(())
            }));
        }
        let sent = tasks.len();
        let mut ok = 0;
        for t in tasks {
            if matches!(t.await, Ok(Some(()))) {
                ok += 1;
            }
        }
        let cpu1 = server_cpu_seconds();
        // The evaluation cycle's localization step, then the API read-back.
        let t0 = Instant::now();
        lock(&shared.fleet).localize_all(Utc::now());
        let loc = t0.elapsed().as_secs_f64();
        let view: serde_json::Value = match client.get(&view_url).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let suspects: BTreeSet<String> = view["suspects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect();
        if round > 0 {
            out.reports += ok;
            out.failed += sent - ok;
            out.ingest_cpu_s += cpu1 - cpu0;
            out.localize_s += loc;
        }
        let non_healthy = view["nodes"]["warning"].as_u64().unwrap_or(0)
            + view["nodes"]["critical"].as_u64().unwrap_or(0);
        if round >= 2 && (!faulty || scenario == "healthy") {
            out.healthy_fp_suspects += suspects.len();
            out.non_healthy_node_rounds += usize::from(non_healthy > 0);
        }
        if faulty && scenario != "healthy" {
            let k = round - o.warmup;
            if out.time_to_localize.is_none() && fault.expected.is_subset(&suspects) {
                out.time_to_localize = Some(k);
            }
            if k >= 3 {
                out.tp += fault.expected.intersection(&suspects).count();
                out.fp += suspects.difference(&fault.expected).count();
                out.fn_ += fault.expected.difference(&suspects).count();
            }
        }
        out.last_suspects = suspects.into_iter().collect();
        let rest = Duration::from_secs_f64(o.interval).saturating_sub(started.elapsed());
        tokio::time::sleep(rest).await;
    }
    out
}

fn fault_for(scenario: &str, n: usize, o: &Opts, rng: &mut Rng) -> Fault {
    let mut f = Fault::default();
    let pick = |rng: &mut Rng| rng.below(n);
    match scenario {
        "node" | "node40" => {
            let v = pick(rng);
            f.nodes
                .insert(v, if scenario == "node" { 0.05 } else { 0.4 });
            f.expected.insert(format!("node/{}", node_name(v)));
        }
        "two-nodes" => {
            let a = pick(rng);
            let mut b = pick(rng);
            while b == a {
                b = pick(rng);
            }
            for v in [a, b] {
                f.nodes.insert(v, 0.2);
                f.expected.insert(format!("node/{}", node_name(v)));
            }
        }
        "domain" => {
            let racks = n.div_ceil(o.rack.max(1));
            let r = rack_of(rng.below(racks) * o.rack, o.rack);
            f.expected.insert(format!("domain/{r}"));
            f.rack = Some((r, 0.3));
        }
        "dead" => {
            let v = pick(rng);
            f.dead.insert(v);
            f.expected.insert(format!("node/{}", node_name(v)));
        }
        "host" => {
            let v = pick(rng);
            f.host.insert(v);
            f.expected.insert(format!("node/{}", node_name(v)));
        }
        _ => {} // healthy; link is set when the fault starts (needs a probed pair)
    }
    f
}

fn list<T: std::str::FromStr>(s: &str) -> Vec<T> {
    s.split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

fn main() -> anyhow::Result<()> {
    let mut nodes = vec![100usize, 500, 2000];
    let mut max_peers = vec![8usize, 32];
    let mut scenarios: Vec<String> = [
        "healthy",
        "node",
        "node40",
        "link",
        "two-nodes",
        "domain",
        "dead",
        "host",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut o = Opts {
        interval: 2.0,
        warmup: 4,
        rounds: 6,
        probes: 10,
        background: 0.001,
        rack: 20,
        seed: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => nodes = list(v),
            "--max-peers" => max_peers = list(v),
            "--scenarios" => scenarios = list(v),
            "--interval" => o.interval = v.parse()?,
            "--warmup" => o.warmup = v.parse()?,
            "--rounds" => o.rounds = v.parse()?,
            "--probes" => o.probes = v.parse()?,
            "--background" => o.background = v.parse()?,
            "--rack" => o.rack = v.parse()?,
            "--seed" => o.seed = v.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    anyhow::ensure!(
        o.warmup >= 2 && o.rounds >= 3,
        "--warmup ≥ 2 and --rounds ≥ 3"
    );
    // The analytics server on its own runtime, so its threads' CPU can be told apart.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fw-analytics")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fw-sim-agents")
        .enable_all()
        .build()?;
    println!(
        "| nodes | maxPeers | scenario | suspects at the end | precision | recall | time to localize (reports) | healthy-phase suspects / non-Healthy rounds | ingest CPU per report (µs) | localization CPU per report (µs) | localization ÷ ingest | failed pushes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut rng = Rng(o.seed);
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for &n in &nodes {
        for &k in &max_peers {
            let metrics = Metrics::new()?;
            let shared = Arc::new(Shared {
                fleet: Mutex::new(Fleet::new(Settings::default())),
                evaluator: Mutex::new(Evaluator::default()),
                events: Mutex::new(EventLog::new(1000)),
                metrics,
                auth: None,
                policy: AgentPolicy::default(),
                catalog: Arc::new(SimCatalog {
                    config: TargetConfig {
                        interval_seconds: o.interval,
                        max_peers: Some(k),
                        topology_key: Some(TOPOLOGY_KEY.into()),
                        desired_nodes: Some(n as u32),
                        ..TargetConfig::default()
                    },
                    rack: o.rack,
                }),
                max_body_bytes: 1 << 20,
                triggers: None,
            });
            let app = router(
                shared.clone(),
                std::sync::Arc::new(fabricwatch_analytics::authz::Access::open()),
            );
            let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
            let base = format!("http://{}", listener.local_addr()?);
            let srv = server.spawn(async move { axum::serve(listener, app).await });
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(128)
                .build()?;
            for scenario in &scenarios {
                let target = format!("{scenario}-{n}-{k}");
                let fault = fault_for(scenario, n, &o, &mut rng);
                let r = client_rt.block_on(run_scenario(
                    &client, &base, &shared, &target, n, &fault, scenario, &o, &mut rng,
                ));
                tp += r.tp;
                fp += r.fp;
                fn_ += r.fn_;
                let ratio = |a: usize, b: usize| {
                    if b == 0 {
                        "—".to_string()
                    } else {
                        format!("{:.2}", a as f64 / b as f64)
                    }
                };
                let per = |s: f64| 1e6 * s / r.reports.max(1) as f64;
                println!(
                    "| {n} | {k} | {scenario} | {} | {} | {} | {} | {} / {} | {:.0} | {:.1} | {:.3} | {} |",
                    if r.last_suspects.is_empty() {
                        "—".to_string()
                    } else {
                        r.last_suspects.join(", ")
                    },
                    ratio(r.tp, r.tp + r.fp),
                    ratio(r.tp, r.tp + r.fn_),
                    r.time_to_localize
                        .map_or("—".to_string(), |t| t.to_string()),
                    r.healthy_fp_suspects,
                    r.non_healthy_node_rounds,
                    per(r.ingest_cpu_s),
                    per(r.localize_s),
                    r.localize_s / r.ingest_cpu_s.max(1e-9),
                    r.failed,
                );
                // The target's nodes stop reporting; drop them so the next scenario starts
                // from an empty fleet (as a deleted MonitorTarget would).
                lock(&shared.fleet).remove(&ObjectRef {
                    namespace: NAMESPACE.into(),
                    name: target.clone(),
                });
            }
            srv.abort();
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    println!(
        "\noverall: precision {:.3} recall {:.3} (tp {tp}, fp {fp}, fn {fn_})",
        pct(tp, tp + fp),
        pct(tp, tp + fn_)
    );
    Ok(())
}
