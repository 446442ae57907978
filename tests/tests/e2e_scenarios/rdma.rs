//! Scenario 3b: fw-n2's `mlx5_0` port 1 counts symbol errors and flaps (edits of that node's
//! copy of the RoCE sysfs fixture) → `rdma-symbol-errors` Firing for that node and port, the
//! onAlert AIAnalysis calls the LLM stand-in with an anonymized prompt and writes findings
//! naming the real node and port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fabricwatch_crds::{AIAnalysis, AlertRule};
use fabricwatch_tests::{http, status, wait_for};

use super::peers::Peers;
use super::{Stack, ALERT};

/// Files of a node's RDMA fixture changed by the test; the old contents come back on drop.
struct FixtureEdit {
    saved: Vec<(PathBuf, String)>,
}

impl FixtureEdit {
    fn new() -> Self {
        FixtureEdit { saved: Vec::new() }
    }

    fn write(&mut self, path: &Path, text: &str) -> Result<()> {
        if !self.saved.iter().any(|(p, _)| p == path) {
            let old = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            self.saved.push((path.to_path_buf(), old));
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn add(&mut self, path: &Path, delta: u64) -> Result<u64> {
        let now: u64 = std::fs::read_to_string(path)?
            .trim()
            .parse()
            .with_context(|| format!("{} is not a counter", path.display()))?;
        self.write(path, &format!("{}\n", now + delta))?;
        Ok(now + delta)
    }
}

impl Drop for FixtureEdit {
    fn drop(&mut self) {
        for (p, text) in self.saved.drain(..).rev() {
            if let Err(e) = std::fs::write(&p, text) {
                eprintln!("restoring {}: {e}", p.display());
            }
        }
    }
}

/// Sets the stand-in's answer, injects the errors and the flap, checks rule, findings and
/// prompt, and puts the fixture back.
pub(crate) async fn symbol_errors_reach_the_ai(stack: &Stack<'_>, peers: &Peers) -> Result<()> {
    let (ns, standin_addr) = (stack.ns, &peers.standin_addr);
    let rules = ns.api::<AlertRule>();
    let a = stack.nodes[1].clone();
    // Names are registered sorted, so fw-n2 is node-2 in the anonymized prompt.
    let answer = serde_json::json!({"findings": [{
        "severity": "critical",
        "title": "Symbol errors and a link flap on node-2 mlx5_0 port 1",
        "summary": "node-2 mlx5_0 port 1 counts symbol errors and went down once: a failing cable or transceiver.",
        "evidence": ["symbol_error rising on node-2 mlx5_0 port 1", "link_downed incremented"],
        "affected": ["node-2"],
        "recommendation": "Reseat or replace the cable of node-2 mlx5_0 port 1.",
        "confidence": 0.8
    }]})
    .to_string();
    let (s, body) = http::request(
        "PUT",
        standin_addr,
        "/_standin/default",
        Some(&serde_json::json!({"answer": answer}).to_string()),
    )
    .await?;
    ensure!((200..300).contains(&s), "stand-in default: {s} {body}");
    http::request("DELETE", standin_addr, "/_standin/requests", None).await?;
    let port_dir = stack
        .local
        .node_fixture_sys(2)
        .join("class/infiniband/mlx5_0/ports/1");
    let mut fixture = FixtureEdit::new();
    fixture.add(&port_dir.join("counters/link_downed"), 1)?;
    fixture.write(&port_dir.join("state"), "1: DOWN\n")?;
    fixture.write(&port_dir.join("phys_state"), "3: Disabled\n")?;
    let errors = {
        let dir = port_dir.clone();
        tokio::spawn(async move {
            let mut edit = FixtureEdit::new();
            // Only this task touches symbol_error, so the two FixtureEdits restore disjoint
            // files whatever order they are dropped in.
            for _ in 0..90u32 {
                if edit.add(&dir.join("counters/symbol_error"), 40).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            edit
        })
    };
    // The link comes back after about one agent interval.
    tokio::time::sleep(Duration::from_secs(12)).await;
    fixture.write(&port_dir.join("state"), "4: ACTIVE\n")?;
    fixture.write(&port_dir.join("phys_state"), "5: LinkUp\n")?;
    let rule = wait_for(
        &rules,
        "rdma-symbol-errors",
        |o: Option<&AlertRule>| {
            o.is_some_and(|r| {
                let f = status::of(r)["firing"].to_string();
                status::rule_state(r) == "Firing" && f.contains(&a.0) && f.contains("mlx5_0")
            })
        },
        ALERT,
    )
    .await?;
    eprintln!("rdma rule firing: {}", status::of(&rule)["firing"]);
    let aia = wait_for(
        &ns.api::<AIAnalysis>(),
        "fabric-ai",
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
    let findings = status::of(&aia)["findings"].to_string();
    ensure!(
        findings.contains(&a.0) && findings.contains("mlx5_0") && findings.contains("port 1"),
        "findings do not name {} mlx5_0 port 1: {findings}",
        a.0
    );
    ensure!(
        !findings.contains("node-2"),
        "findings still carry the pseudonym: {findings}"
    );
    let reqs = http::get_json(standin_addr, "/_standin/requests")
        .await?
        .to_string();
    ensure!(
        reqs.contains("mlx5_0"),
        "the prompt does not mention mlx5_0"
    );
    ensure!(
        !reqs.contains(&a.0) && !reqs.contains(&a.1),
        "the prompt leaks the real node name or IP"
    );
    // Aborting the task drops its FixtureEdit, which puts symbol_error back.
    errors.abort();
    let _ = errors.await;
    drop(fixture);
    eprintln!("scenario 3b (RDMA symbol errors + flap on {} mlx5_0/1: rule Firing, AI findings name it, prompt anonymized): ok", a.0);
    Ok(())
}
