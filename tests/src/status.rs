//! Reading the status of fabricwatch objects the way a user sees it (`kubectl get -o json`):
//! as JSON, so that a wait also accepts fields the typed status does not model yet.

use fabricwatch_crds::{AlertRule, MonitorTarget};
use serde_json::Value;

/// The object's `status` as JSON (`Null` when it has none).
pub fn of(obj: &impl serde::Serialize) -> Value {
    serde_json::to_value(obj)
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

/// A MonitorTarget's `status.health` (`Healthy`, `Warning`, `Critical`, ...; empty when
/// not reported yet).
pub fn health(mt: &MonitorTarget) -> String {
    of(mt)["health"].as_str().unwrap_or("").to_string()
}

/// Names of a MonitorTarget's `status.suspects` (`node/fw-n2`, `link/fw-n2–fw-n3`, ...),
/// most severe first.
pub fn suspects(mt: &MonitorTarget) -> Vec<String> {
    mt.status
        .as_ref()
        .map(|s| s.suspects.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default()
}

/// An AlertRule's `status.state` (`Inactive`, `Pending`, `Firing`; empty when not reported).
pub fn rule_state(rule: &AlertRule) -> String {
    of(rule)["state"].as_str().unwrap_or("").to_string()
}

/// A ping-only MonitorTarget named `fabric` over every node: ICMP every 5 s, 10 probes,
/// host and RDMA collection off. Host collection is off because every local node reads the
/// one machine's `/proc/stat`: a busy build machine would otherwise make each node a host
/// suspect. Used by the fault tests, whose faults are network or control-plane faults.
pub const PING_ONLY_TARGET: &str = r#"
apiVersion: fabricwatch.io/v1alpha1
kind: MonitorTarget
metadata: {name: fabric}
spec:
  interval: 5s
  ping: {enabled: true, protocol: icmp, packetsPerProbe: 10, timeout: 1s}
  host: {enabled: false}
  rdma: {enabled: false}
  thresholds:
    rttP99Seconds: {warning: 0.05, critical: 0.2}
"#;

/// True when the target is Healthy, has no suspect and `reporting` agents report.
pub fn healthy_and_reporting(mt: &MonitorTarget, reporting: i32) -> bool {
    health(mt) == "Healthy"
        && suspects(mt).is_empty()
        && mt
            .status
            .as_ref()
            .and_then(|s| s.nodes.as_ref())
            .and_then(|n| n.reporting)
            == Some(reporting)
}

/// Waits up to `timeout` until the MonitorTarget `fabric` in `ns` is
/// [`healthy_and_reporting`] with `reporting` agents.
///
/// # Errors
/// On a timeout, with the wait's dump.
pub async fn wait_healthy_and_reporting(
    ns: &crate::TestNamespace,
    reporting: i32,
    timeout: std::time::Duration,
) -> anyhow::Result<MonitorTarget> {
    Ok(crate::wait_for(
        &ns.api::<MonitorTarget>(),
        "fabric",
        |o: Option<&MonitorTarget>| o.is_some_and(|m| healthy_and_reporting(m, reporting)),
        timeout,
    )
    .await?)
}

/// Creates [`PING_ONLY_TARGET`] in `ns` and waits up to 240 s until it is Healthy with
/// `reporting` agents: the baseline of the fault tests.
///
/// # Errors
/// When the apply fails or the wait times out.
pub async fn start_ping_only_target(
    ns: &crate::TestNamespace,
    reporting: i32,
) -> anyhow::Result<MonitorTarget> {
    ns.apply_yaml(PING_ONLY_TARGET).await?;
    wait_healthy_and_reporting(ns, reporting, std::time::Duration::from_secs(240)).await
}
