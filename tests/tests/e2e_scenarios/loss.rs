//! Scenario 3a: 30 % of the ICMP into fw-n2 from fw-n3 dropped (`iptables -m statistic` in
//! fw-n2's network namespace) → the target Warning or Critical naming the pair, the
//! `fabric-loss` AlertRule Firing, exactly one firing webhook notification, the alert in
//! Alertmanager; removing the rule resolves all of it.

use std::time::Duration;

use anyhow::{ensure, Result};
use fabricwatch_crds::{AlertRule, MonitorTarget};
use fabricwatch_tests::host::NodeRule;
use fabricwatch_tests::{eventually, http, status, wait_for};
use serde_json::Value;

use super::healthy::healthy_but_for_shared_cpu;
use super::peers::Peers;
use super::{Stack, ALERT};

/// Problems other than host ones, and suspects, as one string (to look for node names).
fn network_findings(mt: &MonitorTarget) -> String {
    let s = status::of(mt);
    let problems: Vec<&Value> = s["problems"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["component"] != "host").collect())
        .unwrap_or_default();
    format!(
        "{}{}",
        serde_json::to_string(&problems).unwrap_or_default(),
        s["suspects"]
    )
}

/// Injects the loss, checks target, rule, webhook and Alertmanager, removes it and waits
/// until the rule is Inactive and the target healthy again.
pub(crate) async fn loss_names_the_pair(stack: &Stack<'_>, peers: &mut Peers) -> Result<()> {
    let (mts, nodes, webhook) = (stack.mts(), &stack.nodes, &peers.webhook);
    let rules = stack.ns.api::<AlertRule>();
    let (a, b) = (nodes[1].clone(), nodes[2].clone());
    let mut loss = NodeRule::insert(
        stack.local,
        2,
        &[
            "-p",
            "icmp",
            "-s",
            &b.1,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.3",
            "-j",
            "DROP",
        ],
    )?;
    let mt = wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| {
            o.is_some_and(|m| {
                let h = status::health(m);
                // The pair is a link suspect now, its pair problems grouped under it.
                let p = network_findings(m);
                // Each end by node name or address.
                (h == "Warning" || h == "Critical")
                    && (p.contains(&a.0) || p.contains(&a.1))
                    && (p.contains(&b.0) || p.contains(&b.1))
            })
        },
        ALERT,
    )
    .await?;
    eprintln!(
        "target under loss: {} problems {}",
        status::health(&mt),
        status::of(&mt)["problems"]
    );
    wait_for(
        &rules,
        "fabric-loss",
        |o: Option<&AlertRule>| o.is_some_and(|r| status::rule_state(r) == "Firing"),
        ALERT,
    )
    .await?;
    eventually(
        "one firing webhook notification",
        Duration::from_secs(120),
        || async {
            let n = webhook.firing("fabric-loss").len();
            ensure!(n >= 1, "{n} firing notifications");
            Ok(())
        },
    )
    .await?;
    eventually(
        "the alert in Alertmanager",
        Duration::from_secs(60),
        || async {
            let alerts = http::get_json(&peers.am_addr, "/api/v2/alerts").await?;
            ensure!(
                alerts.to_string().contains("fabric-loss"),
                "alerts: {alerts}"
            );
            Ok(())
        },
    )
    .await?;
    // Grouping and cooldown: no second firing notification while the fault lasts.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let firing = webhook.firing("fabric-loss");
    ensure!(
        firing.len() == 1,
        "expected exactly one firing notification, got {}: {firing:#?}",
        firing.len()
    );
    ensure!(
        !firing[0].to_string().contains("{{"),
        "annotation templates not expanded: {}",
        firing[0]["commonAnnotations"]
    );
    loss.remove()?;
    wait_for(
        &rules,
        "fabric-loss",
        |o: Option<&AlertRule>| o.is_some_and(|r| status::rule_state(r) == "Inactive"),
        ALERT,
    )
    .await?;
    wait_for(
        &mts,
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(healthy_but_for_shared_cpu),
        ALERT,
    )
    .await?;
    peers.alertmanager.ensure_running()?;
    eprintln!("scenario 3a (30 % loss {}<->{}: target degraded naming the pair, rule Firing, 1 webhook, Alertmanager; resolved): ok", a.0, b.0);
    Ok(())
}
