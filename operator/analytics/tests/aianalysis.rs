//! An AIAnalysis run end to end without Kubernetes: real agent reports ingested into the
//! fleet, the situation built from analytics' state, the real AWS SDK Bedrock client against
//! the `fabricwatch-ai` Converse stand-in on 127.0.0.1 (endpoint override), and the status
//! the runner would apply.

use std::net::SocketAddr;

use chrono::Utc;
use fabricwatch_ai::{
    testing::{Reply, StandIn},
    Analyzer, AnalyzerConfig, ProviderCredentials, SecretString,
};
use fabricwatch_analytics::{
    aianalysis::{
        execute, situation,
        status::{persisted, Persisted},
    },
    fleet::{Fleet, Settings},
};
use fabricwatch_crds::{
    ai_analysis::{AIAnalysisSpec, Phase},
    AIAnalysis,
};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, RdmaPortReport},
    ObjectRef,
};
use serde_json::json;

const SECRET_KEY: &str = "canary-secret-access-key-0123456789";
const NODE_BAD: &str = "gpu-a-17";
const NODE_OK: &str = "gpu-b-03";

fn report(
    node: &str,
    ip: &str,
    seq: u64,
    peer: &str,
    loss: f64,
    symbol_errors: u64,
) -> AgentReport {
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: "fw".into(),
            name: "fabric".into(),
        },
        node: node.into(),
        node_ip: Some(ip.into()),
        agent_version: "0.1.0".into(),
        seq,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: peer.into(),
            address: "10.0.0.9".into(),
            sent: 20,
            received: 20 - (loss / 5.0) as u32,
            loss_percent: loss,
            rtt_avg_seconds: Some(0.0002),
            rtt_p99_seconds: Some(0.0004),
            ..Default::default()
        }],
        rdma: vec![RdmaPortReport {
            device: "mlx5_0".into(),
            port: 1,
            link_layer: "InfiniBand".into(),
            state: "ACTIVE".into(),
            phys_state: "LinkUp".into(),
            counters: [("symbol_error".to_string(), symbol_errors)].into(),
            rates: [("symbol_error".to_string(), symbol_errors as f64 / 10.0)].into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn analysis(endpoint: &str, budget: &str) -> AIAnalysis {
    let spec: AIAnalysisSpec = serde_yaml::from_str(&format!(
        "targetRefs: [{{kind: MonitorTarget, name: fabric}}]
provider: {{type: bedrock, model: anthropic.claude-3-5-haiku-20241022-v1:0, region: eu-west-1, endpoint: '{endpoint}', timeout: 10s, maxTokens: 512}}
{budget}"
    ))
    .expect("spec");
    let mut a = AIAnalysis::new("diag", spec);
    a.metadata.namespace = Some("fw".into());
    a.metadata.generation = Some(1);
    a
}

fn creds() -> ProviderCredentials {
    ProviderCredentials::AwsKeys {
        access_key_id: SecretString::new("AKIDANALYTICSCANARY1"),
        secret_access_key: SecretString::new(SECRET_KEY),
        session_token: None,
    }
}

fn fleet_situation() -> fabricwatch_ai::Situation {
    let mut fleet = Fleet::new(Settings::default());
    let now = Utc::now();
    fleet.ingest(
        &report(NODE_OK, "10.20.0.3", 1, NODE_BAD, 0.0, 0),
        None,
        now,
    );
    fleet.ingest(
        &report(NODE_BAD, "10.20.0.17", 1, NODE_OK, 25.0, 600),
        None,
        now,
    );
    let target = ObjectRef {
        namespace: "fw".into(),
        name: "fabric".into(),
    };
    let nodes = fleet.nodes(&target, now).expect("target known");
    situation::build(3600, &nodes, &[], Vec::new())
}

#[tokio::test]
async fn bedrock_run_writes_deanonymized_findings_usage_and_survives_restart() {
    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("stand-in");
    // The model sees pseudonyms only; it answers in them, and the status must carry the real
    // node name with the port.
    server.set_default(Reply::Answer(
        json!({"findings": [{
            "severity": "critical",
            "title": "Symbol errors on node-1 mlx5_0/1",
            "summary": "node-1 port mlx5_0/1 shows symbol errors and peers see loss towards it.",
            "evidence": ["symbol_error rising on node-1 mlx5_0/1"],
            "affected": ["node-1", "node-1/mlx5_0/1"],
            "recommendation": "Reseat or replace the cable of node-1 mlx5_0/1.",
            "confidence": 0.8
        }]})
        .to_string(),
    ));
    let s = fleet_situation();
    assert!(s
        .rdma_ports
        .iter()
        .any(|p| p.node == NODE_BAD && p.error_rate_per_minute > 0.0));
    let a = analysis(&server.url(), "");
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    let start = Utc::now();
    let run = execute(
        &analyzer,
        &a,
        &s,
        Ok(creds()),
        Persisted::default(),
        None,
        start,
    )
    .await;
    assert!(run.outcome.error.is_none(), "{:?}", run.outcome.error);
    let st = &run.status;
    assert_eq!(st.phase, Some(Phase::Succeeded));
    assert_eq!(st.findings.len(), 1);
    let f = &st.findings[0];
    assert_eq!(f.title, format!("Symbol errors on {NODE_BAD} mlx5_0/1"));
    assert_eq!(
        f.affected,
        vec![NODE_BAD.to_string(), format!("{NODE_BAD}/mlx5_0/1")]
    );
    assert!(f
        .recommendation
        .as_deref()
        .is_some_and(|r| r.contains(NODE_BAD)));
    let usage = st.usage.clone().expect("usage");
    assert!(usage.input_tokens.unwrap_or(0) > 0 && usage.output_tokens.unwrap_or(0) > 0);
    assert!(usage.today_cost_usd.unwrap_or(0.0) > 0.0);
    assert_eq!(usage.day, Some(start.format("%Y-%m-%d").to_string()));
    assert_eq!(
        st.model.as_deref(),
        Some("anthropic.claude-3-5-haiku-20241022-v1:0")
    );
    assert_eq!(st.cache.as_ref().and_then(|c| c.misses), Some(1));

    // On the wire: SigV4-signed, no real names, no IPs, no secret.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0]
        .header("authorization")
        .is_some_and(|h| h.starts_with("AWS4-HMAC-SHA256")));
    let prompt = reqs[0].prompt_text();
    for leak in [NODE_BAD, NODE_OK, "10.20.0.17", "10.20.0.3", SECRET_KEY] {
        assert!(!prompt.contains(leak), "{leak} leaked into the prompt");
    }
    assert!(prompt.contains("node-1") && prompt.contains("mlx5_0"));
    // The status carries no secret either.
    let status_json = serde_json::to_string(st).expect("json");
    assert!(!status_json.contains(SECRET_KEY) && !status_json.contains("AKIDANALYTICSCANARY1"));

    // The same situation again: answered from the cache, no provider call.
    let mut a2 = a.clone();
    a2.status = Some(st.clone());
    let again = execute(
        &analyzer,
        &a2,
        &s,
        Ok(creds()),
        run.persisted.clone(),
        None,
        Utc::now(),
    )
    .await;
    assert!(again.outcome.cache_hit);
    assert_eq!(server.request_count(), 1);
    assert_eq!(again.status.cache.as_ref().and_then(|c| c.hits), Some(1));
    assert_eq!(again.status.findings, st.findings);

    // Restart: a new analyzer (empty cache) and the ledger read back from status. With the
    // daily budget set to what is already spent, no call is made.
    let spent = usage.today_cost_usd.expect("spent");
    let mut restarted = analysis(
        &server.url(),
        &format!("budget: {{dailyUsd: {spent}, prices: {{inputPer1kTokens: 0.0008, outputPer1kTokens: 0.004}}}}"),
    );
    restarted.status = Some(again.status.clone());
    let back = persisted(restarted.status.as_ref());
    assert_eq!(back.usage.today_cost_usd, spent);
    let fresh = Analyzer::new(AnalyzerConfig::default());
    let refused = execute(&fresh, &restarted, &s, Ok(creds()), back, None, Utc::now()).await;
    assert!(
        refused.outcome.budget_exceeded.is_some(),
        "{:?}",
        refused.outcome
    );
    assert_eq!(
        server.request_count(),
        1,
        "zero calls after the budget is spent"
    );
    assert_eq!(refused.status.phase, Some(Phase::BudgetExceeded));
    assert_eq!(
        refused.status.usage.as_ref().and_then(|u| u.today_cost_usd),
        Some(spent),
        "today's spend survives the restart"
    );
    assert_eq!(
        refused.status.findings, st.findings,
        "last good findings kept"
    );
    let be = refused
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "BudgetExceeded")
        .expect("condition");
    assert_eq!(be.status, "True");
}

#[tokio::test]
async fn missing_credentials_fail_without_a_call_and_provider_errors_map_to_reasons() {
    let server = StandIn::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("stand-in");
    let s = fleet_situation();
    let a = analysis(&server.url(), "");
    let analyzer = Analyzer::new(AnalyzerConfig::default());
    let run = execute(
        &analyzer,
        &a,
        &s,
        Err("Secret aws lacks a non-empty AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY".into()),
        Persisted::default(),
        None,
        Utc::now(),
    )
    .await;
    assert_eq!(server.request_count(), 0);
    assert_eq!(run.status.phase, Some(Phase::Failed));
    let pe = run
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "ProviderError")
        .expect("condition");
    assert_eq!(
        (pe.status.as_str(), pe.reason.as_str()),
        ("True", "AuthFailed")
    );

    server.push([Reply::Error {
        status: 403,
        message: "The security token included in the request is invalid".into(),
    }]);
    let run = execute(
        &analyzer,
        &a,
        &s,
        Ok(creds()),
        Persisted::default(),
        None,
        Utc::now(),
    )
    .await;
    let pe = run
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "ProviderError")
        .expect("condition");
    assert_eq!(pe.reason, "AuthFailed", "{pe:?}");
    assert!(!pe.message.contains(SECRET_KEY));
}
