//! Scenario 4: Debian's Prometheus on the host scrapes every component over pod IPs (agents,
//! analytics, notifier, both operator replicas): every target `up == 1`; `promtool check
//! metrics` runs on each endpoint. Prometheus keeps running for scenario 3d.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_tests::host::{run, HostProcess};
use fabricwatch_tests::{eventually, http, TestNamespace};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::peers::which;
use super::{pods, Stack};

/// The running Prometheus and what scenario 4 found.
pub(crate) struct Prometheus {
    /// The process (killed on drop).
    _process: HostProcess,
    /// `127.0.0.1:port` of its HTTP API.
    pub(crate) addr: String,
    /// `promtool check metrics` failures, one message per endpoint; reported at the end so
    /// that one run also exercises the fault scenarios.
    pub(crate) lint_failures: Vec<String>,
}

fn pod_ip(p: &Pod) -> Option<String> {
    p.status.as_ref()?.pod_ip.clone()
}

/// Every metrics endpoint of the release: (job, host:port).
async fn endpoints(ns: &TestNamespace) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (job, selector, port) in [
        ("operator", "app.kubernetes.io/component=operator", 8080),
        (
            "analytics",
            "app.kubernetes.io/name=fabricwatch,app.kubernetes.io/component=analytics",
            8080,
        ),
        (
            "notifier",
            "app.kubernetes.io/name=fabricwatch,app.kubernetes.io/component=notifier",
            8080,
        ),
        ("agent", "app.kubernetes.io/component=agent", 9470),
    ] {
        for p in pods(ns, selector).await? {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ip = pod_ip(&p).with_context(|| format!("pod {} has no IP", p.name_any()))?;
            out.push((job.to_string(), format!("{ip}:{port}")));
        }
    }
    Ok(out)
}

/// Starts Prometheus on every endpoint (config and data in `work`), waits for `up == 1`
/// everywhere, then lints each endpoint's `/metrics` with promtool.
pub(crate) async fn scrape_everything(
    stack: &Stack<'_>,
    work: &std::path::Path,
) -> Result<Prometheus> {
    let (ns, nodes) = (stack.ns, &stack.nodes);
    let targets = endpoints(ns).await?;
    ensure!(
        targets.iter().filter(|(j, _)| j == "agent").count() == nodes.len()
            && targets.iter().filter(|(j, _)| j == "operator").count() == 2,
        "unexpected endpoints: {targets:?}"
    );
    let mut jobs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (j, t) in &targets {
        jobs.entry(j.as_str()).or_default().push(t.as_str());
    }
    let mut prom_cfg =
        String::from("global: {scrape_interval: 5s, scrape_timeout: 4s}\nscrape_configs:\n");
    for (j, ts) in &jobs {
        prom_cfg.push_str(&format!(
            "  - job_name: {j}\n    static_configs: [{{targets: {ts:?}}}]\n"
        ));
    }
    let prom_file = work.join("prometheus.yml");
    std::fs::write(&prom_file, &prom_cfg)?;
    run(Command::new(which("promtool")?).args(["check", "config", &prom_file.to_string_lossy()]))?;
    let prom_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let prom_addr = format!("127.0.0.1:{prom_port}");
    let mut prometheus = HostProcess::start(
        "prometheus",
        work,
        Command::new(which("prometheus")?).args([
            format!("--config.file={}", prom_file.display()),
            format!("--storage.tsdb.path={}", work.join("prom-data").display()),
            format!("--web.listen-address={prom_addr}"),
        ]),
    )?;
    let up = eventually(
        "every Prometheus target up == 1",
        Duration::from_secs(90),
        || async {
            let v = http::get_json(&prom_addr, "/api/v1/query?query=up").await?;
            let res = v["data"]["result"].as_array().cloned().unwrap_or_default();
            ensure!(
                res.len() == targets.len(),
                "{} of {} series: {res:?}",
                res.len(),
                targets.len()
            );
            let down: Vec<_> = res.iter().filter(|r| r["value"][1] != "1").collect();
            ensure!(down.is_empty(), "targets down: {down:?}");
            Ok(res.len())
        },
    )
    .await;
    prometheus.ensure_running()?;
    let up =
        up.map_err(|e| anyhow::anyhow!("{e:#}\nprometheus log:\n{}", prometheus.log_tail()))?;
    let promtool = which("promtool")?;
    let mut lint_failures = Vec::new();
    for (job, t) in &targets {
        let (status_code, body) = http::request("GET", t, "/metrics", None).await?;
        ensure!(status_code == 200, "{job} {t}/metrics: {status_code}");
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("promtool stdin")?;
        std::io::Write::write_all(&mut stdin, body.as_bytes())?;
        drop(stdin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            lint_failures.push(format!(
                "promtool check metrics failed for {job} {t}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    // Reported at the end, so one run also exercises the fault scenarios.
    if lint_failures.is_empty() {
        eprintln!(
            "scenario 4 (promtool check metrics clean on all {} endpoints): ok",
            targets.len()
        );
    } else {
        eprintln!(
            "scenario 4 (promtool): FAILED\n{}",
            lint_failures.join("\n")
        );
    }
    eprintln!("scenario 4 (Prometheus: {up} targets up == 1): ok");
    Ok(Prometheus {
        _process: prometheus,
        addr: prom_addr,
        lint_failures,
    })
}
