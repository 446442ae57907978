//! `POST /api/v1/reports`: a node agent's report, taken in as a few named steps —
//! [`Agent`] authentication (before the body is read), [`read_body`] (bounded), [`parse`]
//! (naming an unknown schema version), [`validate`] (bounds), [`admit`] (the agent's rights
//! and the target's existence) and [`record`] (the fleet, events and anomaly triggers).
//! Every refusal is one [`IngestError`], counted under its reason.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::State,
    Json,
};
use chrono::Utc;
use fabricwatch_proto::report::{AgentReport, PushResponse, REPORT_SCHEMA_VERSION};

use super::{Agent, IngestError};
use crate::{
    fleet::IngestOutcome,
    policy::authorize,
    state::{lock, Shared},
    trigger::Trigger,
};

/// Upper bounds on list sizes in a report, so one report cannot make analytics hold
/// unbounded memory: peers, RDMA ports, counters per port, collector errors.
pub const MAX_PEERS: usize = 1024;
/// See [`MAX_PEERS`].
pub const MAX_PORTS: usize = 256;
/// See [`MAX_PEERS`].
pub const MAX_COUNTERS: usize = 512;
/// See [`MAX_PEERS`].
pub const MAX_COLLECTOR_ERRORS: usize = 256;

/// Checks a report's content beyond its JSON shape.
///
/// # Errors
/// What is wrong, naming the field.
pub fn validate(r: &AgentReport) -> Result<(), String> {
    let name_ok = |s: &str| !s.is_empty() && s.len() <= 253;
    if !name_ok(&r.node) {
        return Err("node must be 1-253 characters".into());
    }
    if !name_ok(&r.target.namespace) || !name_ok(&r.target.name) {
        return Err("target.namespace and target.name must be 1-253 characters".into());
    }
    // Other agents are told to probe this address: only an IP, never a name to resolve.
    if let Some(ip) = &r.node_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("nodeIp {ip:?} is not an IP address"));
        }
    }
    if !(r.interval_seconds.is_finite() && r.interval_seconds > 0.0) {
        return Err(format!(
            "intervalSeconds must be > 0, got {}",
            r.interval_seconds
        ));
    }
    if r.ping.len() > MAX_PEERS {
        return Err(format!(
            "ping has {} peers, at most {MAX_PEERS} accepted",
            r.ping.len()
        ));
    }
    if r.rdma.len() > MAX_PORTS {
        return Err(format!(
            "rdma has {} ports, at most {MAX_PORTS} accepted",
            r.rdma.len()
        ));
    }
    if let Some(p) = r
        .rdma
        .iter()
        .find(|p| p.counters.len() > MAX_COUNTERS || p.rates.len() > MAX_COUNTERS)
    {
        return Err(format!(
            "rdma port {}/{} has more than {MAX_COUNTERS} counters",
            p.device, p.port
        ));
    }
    if r.collector_errors.len() > MAX_COLLECTOR_ERRORS {
        return Err(format!(
            "collectorErrors has more than {MAX_COLLECTOR_ERRORS} entries"
        ));
    }
    Ok(())
}

/// The handler: every step's refusal is counted once, here or in [`Agent`]'s extraction.
pub(super) async fn ingest(
    State(shared): State<Arc<Shared>>,
    agent: Agent,
    body: Body,
) -> Result<Json<PushResponse>, IngestError> {
    accept(&shared, agent, body)
        .await
        .map_err(|e| e.counted(&shared.metrics))
}

async fn accept(
    shared: &Shared,
    agent: Agent,
    body: Body,
) -> Result<Json<PushResponse>, IngestError> {
    let body = read_body(body, shared.max_body_bytes).await?;
    let report = parse(&body)?;
    validate(&report).map_err(IngestError::Invalid)?;
    let config = admit(shared, &agent, &report)?;
    let interval = config.interval_seconds;
    let outcome = record(shared, &report, config);
    shared
        .metrics
        .reports
        .with_label_values(&["accepted"])
        .inc();
    shared.metrics.report_bytes.observe(body.len() as f64);
    shared
        .metrics
        .ingest_seconds
        .observe(agent.received.elapsed().as_secs_f64());
    // The target's interval, when the agent's differs, so it adopts a changed spec.
    let interval_seconds = ((interval - report.interval_seconds).abs() > 1e-9).then_some(interval);
    Ok(Json(PushResponse {
        peers: outcome.peers,
        interval_seconds,
    }))
}

/// The whole body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // `to_bytes` fails for an oversized body (length limit) or a broken connection.
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            IngestError::TooLarge(limit)
        } else {
            IngestError::Unreadable(e.to_string())
        }
    })
}

/// The report in `body`, of the one schema version this analytics speaks.
fn parse(body: &[u8]) -> Result<AgentReport, IngestError> {
    let report: AgentReport = serde_json::from_slice(body).map_err(|e| {
        // Name an unknown schema version rather than the field it broke.
        let version = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("schemaVersion").and_then(serde_json::Value::as_u64));
        match version {
            Some(v) if v != u64::from(REPORT_SCHEMA_VERSION) => IngestError::UnsupportedSchema(v),
            _ => IngestError::InvalidJson(e.to_string()),
        }
    })?;
    if report.schema_version != REPORT_SCHEMA_VERSION {
        return Err(IngestError::UnsupportedSchema(u64::from(
            report.schema_version,
        )));
    }
    Ok(report)
}

/// The settings of the report's MonitorTarget, once the agent may report for that node and
/// target ([`authorize`]) and the target exists.
fn admit(
    shared: &Shared,
    agent: &Agent,
    report: &AgentReport,
) -> Result<crate::fleet::TargetConfig, IngestError> {
    if let Some(id) = &agent.identity {
        let pod_node = match (&id.service_account, &id.pod_name) {
            (Some((ns, _)), Some(pod)) => shared.catalog.pod_node(ns, pod, id.pod_uid.as_deref()),
            _ => None,
        };
        authorize(&shared.policy, id, report, pod_node.as_deref())
            .map_err(IngestError::Forbidden)?;
    }
    shared
        .catalog
        .target(&report.target)
        .ok_or_else(|| IngestError::UnknownTarget(report.target.clone()))
}

/// Takes the report into the fleet (configuring its target first when the settings
/// changed), then records an agent restart and a new anomaly as events; the latter also
/// triggers the AIAnalyses watching for it.
fn record(
    shared: &Shared,
    report: &AgentReport,
    config: crate::fleet::TargetConfig,
) -> IngestOutcome {
    let domain = config
        .topology_key
        .as_deref()
        .and_then(|k| shared.catalog.node_label(&report.node, k));
    let now = Utc::now();
    let mut outcome = {
        let mut fleet = lock(&shared.fleet);
        if fleet.config(&report.target) != Some(&config) {
            fleet.configure(report.target.clone(), config);
        }
        let out = fleet.ingest(report, domain, now);
        shared.metrics.nodes.set(fleet.node_count() as i64);
        out
    };
    if outcome.agent_restarted {
        shared.event(
            "AgentRestarted",
            &report.target,
            Some(&report.node),
            format!(
                "agent on {} restarted (seq went back to {})",
                report.node, report.seq
            ),
        );
    }
    if let Some(anomaly) = outcome.new_anomaly.take() {
        shared.event(
            "Anomaly",
            &report.target,
            Some(&report.node),
            format!(
                "anomalous series on {}: {} (score {:.1})",
                report.node,
                anomaly.flagged.join(", "),
                anomaly.score
            ),
        );
        shared.trigger(Trigger::Anomaly {
            target: report.target.clone(),
            node: report.node.clone(),
            anomaly,
            at: now,
        });
    }
    outcome
}

#[cfg(test)]
mod tests {
    use fabricwatch_proto::ObjectRef;

    use super::*;

    #[test]
    fn node_ip_must_be_an_address() {
        let mut r = AgentReport {
            node: "n1".into(),
            target: ObjectRef {
                namespace: "fw".into(),
                name: "fabric".into(),
            },
            interval_seconds: 10.0,
            node_ip: Some("10.0.0.1".into()),
            ..Default::default()
        };
        assert_eq!(validate(&r), Ok(()));
        r.node_ip = Some("fd00::1".into());
        assert_eq!(validate(&r), Ok(()));
        r.node_ip = Some("attacker.example.com".into());
        let e = validate(&r).expect_err("a name is refused");
        assert!(e.contains("nodeIp"), "{e}");
    }
}
