//! The real axum router on 127.0.0.1, fed real reports over HTTP, with a token table standing
//! in for TokenReview (the cluster test in `tests/` uses the real API server).

use std::sync::Arc;

use chrono::Utc;
use fabricwatch_analytics::{
    fleet::TargetConfig,
    http::router,
    metrics::Metrics,
    state::{Catalog, Shared},
};
use fabricwatch_common::{
    auth::{Identity, StaticTokens},
    serve::{ops_router, Readiness},
};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, PushResponse, RdmaPortReport, REPORT_PATH},
    ObjectRef,
};
use serde_json::Value;

struct OneTarget(TargetConfig);

impl Catalog for OneTarget {
    fn target(&self, t: &ObjectRef) -> Option<TargetConfig> {
        (t.namespace == "fw" && t.name == "fabric").then(|| self.0.clone())
    }
    fn node_label(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

fn agent(ns: &str, sa: &str) -> Identity {
    Identity::named(&format!("system:serviceaccount:{ns}:{sa}"))
}

async fn start() -> (String, Arc<Shared>) {
    start_with(TargetConfig::default()).await
}

async fn start_with(config: TargetConfig) -> (String, Arc<Shared>) {
    let metrics = Metrics::new().expect("metrics");
    let tokens = StaticTokens::new([
        ("good", agent("fw", "fabric-agent")),
        ("other-sa", agent("fw", "default")),
        ("unknown-target", agent("fw", "unknown-agent")),
    ]);
    let shared = Arc::new(Shared {
        auth: Some(Arc::new(tokens)),
        max_body_bytes: 64 * 1024,
        ..Shared::new(metrics.clone(), Arc::new(OneTarget(config)))
    });
    let app = router(
        shared.clone(),
        std::sync::Arc::new(fabricwatch_analytics::authz::Access::open()),
    )
    .merge(ops_router(metrics.registry.clone(), Readiness::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), shared)
}

fn report(node: &str, ip: &str, seq: u64, loss: f64) -> AgentReport {
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
            peer: "x".into(),
            address: "10.0.0.9".into(),
            // 100 probes, `loss` of them lost.
            sent: 100,
            received: 100 - loss.round().clamp(0.0, 100.0) as u32,
            loss_percent: loss,
            rtt_avg_seconds: Some(0.0002),
            rtt_p99_seconds: Some(0.0004),
            ..Default::default()
        }],
        rdma: vec![RdmaPortReport {
            device: "mlx5_0".into(),
            port: 1,
            state: "ACTIVE".into(),
            phys_state: "LinkUp".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn post(base: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(format!("{base}{REPORT_PATH}"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn json(r: &AgentReport) -> Vec<u8> {
    serde_json::to_vec(r).expect("serialize")
}

#[tokio::test]
async fn reports_give_peers_and_health() {
    let (base, _) = start().await;
    let (s, _) = post(&base, Some("good"), json(&report("n1", "10.0.0.1", 1, 0.0))).await;
    assert_eq!(s, 200);
    let (s, body) = post(&base, Some("good"), json(&report("n2", "10.0.0.2", 1, 8.0))).await;
    assert_eq!(s, 200);
    let resp: PushResponse = serde_json::from_value(body).expect("push response");
    assert_eq!(
        resp.peers
            .iter()
            .map(|p| (p.node.as_str(), p.address.as_str()))
            .collect::<Vec<_>>(),
        vec![("n1", "10.0.0.1")]
    );
    assert_eq!(resp.interval_seconds, None, "interval unchanged");

    let views: Value = reqwest::get(format!("{base}/api/v1/targets"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    // 8 of 100 probes lost: at least 1 % (warning) with confidence, not at least 5 %.
    assert_eq!(views[0]["health"], "Warning", "{views}");
    assert_eq!(views[0]["nodes"]["reporting"], 2);
    assert_eq!(views[0]["summary"]["worstLossPercent"], 8.0);
    assert_eq!(views[0]["problems"][0]["node"], "n2");

    let nodes: Value = reqwest::get(format!("{base}/api/v1/targets/fw/fabric/nodes"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(nodes.as_array().map(Vec::len), Some(2));
    let hist: Value = reqwest::get(format!(
        "{base}/api/v1/targets/fw/fabric/nodes/n2/history/ping_loss_percent"
    ))
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    assert_eq!(hist[0]["value"], 8.0);
    let missing = reqwest::get(format!("{base}/api/v1/targets/fw/nope"))
        .await
        .expect("get");
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_are_counted() {
    let (base, shared) = start().await;
    let good = json(&report("n1", "10.0.0.1", 1, 0.0));

    let (s, b) = post(&base, None, good.clone()).await;
    assert_eq!((s, b["reason"].as_str()), (401, Some("unauthenticated")));
    assert!(
        b["error"].as_str().unwrap_or("").contains("Authorization"),
        "{b}"
    );

    let (s, b) = post(&base, Some("forged"), good.clone()).await;
    assert_eq!((s, b["reason"].as_str()), (401, Some("unauthenticated")));

    let (s, b) = post(&base, Some("other-sa"), good.clone()).await;
    assert_eq!((s, b["reason"].as_str()), (403, Some("forbidden")));
    assert!(
        b["error"].as_str().unwrap_or("").contains("fw/default"),
        "{b}"
    );

    let mut elsewhere = report("n1", "10.0.0.1", 1, 0.0);
    elsewhere.target.name = "unknown".into();
    let (s, b) = post(&base, Some("good"), json(&elsewhere)).await;
    assert_eq!(s, 403, "an agent of fw/fabric cannot report for fw/unknown");
    assert!(
        b["error"]
            .as_str()
            .unwrap_or("")
            .contains("expected fw/unknown-agent"),
        "{b}"
    );
    let (s, b) = post(&base, Some("unknown-target"), json(&elsewhere)).await;
    assert_eq!(s, 403);
    assert!(
        b["error"].as_str().unwrap_or("").contains("does not exist"),
        "{b}"
    );

    let (s, b) = post(&base, Some("good"), vec![b' '; 70 * 1024]).await;
    assert_eq!((s, b["reason"].as_str()), (413, Some("too_large")));

    let (s, b) = post(
        &base,
        Some("good"),
        b"{\"schemaVersion\": 1, \"node\": ".to_vec(),
    )
    .await;
    assert_eq!((s, b["reason"].as_str()), (400, Some("malformed")));

    let (s, b) = post(
        &base,
        Some("good"),
        br#"{"schemaVersion": 7, "something": "else"}"#.to_vec(),
    )
    .await;
    assert_eq!((s, b["reason"].as_str()), (400, Some("unsupported_schema")));
    assert!(b["error"].as_str().unwrap_or("").contains("[1]"), "{b}");

    let mut empty_node = report("", "10.0.0.1", 1, 0.0);
    empty_node.interval_seconds = 10.0;
    let (s, b) = post(&base, Some("good"), json(&empty_node)).await;
    assert_eq!((s, b["reason"].as_str()), (400, Some("invalid")));

    let (s, _) = post(&base, Some("good"), good).await;
    assert_eq!(s, 200);

    let m = &shared.metrics.reports;
    for (reason, n) in [
        ("unauthenticated", 2),
        ("forbidden", 3),
        ("too_large", 1),
        ("malformed", 1),
        ("unsupported_schema", 1),
        ("invalid", 1),
        ("accepted", 1),
    ] {
        assert_eq!(m.with_label_values(&[reason]).get(), n, "{reason}");
    }
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("fabricwatch_analytics_reports_total{result=\"too_large\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn max_peers_and_interval_come_from_the_target() {
    let (base, _) = start_with(TargetConfig {
        max_peers: Some(3),
        interval_seconds: 30.0,
        ..TargetConfig::default()
    })
    .await;
    for i in 0..8 {
        let (s, _) = post(
            &base,
            Some("good"),
            json(&report(&format!("n{i}"), &format!("10.0.0.{i}"), 1, 0.0)),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (_, body) = post(&base, Some("good"), json(&report("n0", "10.0.0.0", 2, 0.0))).await;
    let resp: PushResponse = serde_json::from_value(body).expect("push");
    assert_eq!(resp.peers.len(), 3);
    assert!(resp.peers.iter().all(|p| p.node != "n0"));
    assert_eq!(
        resp.interval_seconds,
        Some(30.0),
        "the agent is told the target's interval"
    );
}

#[tokio::test]
async fn anomaly_onsets_are_listed_newest_first() {
    let (base, _) = start().await;
    // 80 reports 10 s apart (past the detectors' 10-minute warm-up), then a loss step.
    let t0 = Utc::now() - chrono::Duration::seconds(900);
    for i in 0..81u64 {
        let mut r = report("n1", "10.0.0.1", i + 1, if i == 80 { 30.0 } else { 0.0 });
        r.collected_at = t0 + chrono::Duration::seconds(10 * i as i64);
        let (s, _) = post(&base, Some("good"), json(&r)).await;
        assert_eq!(s, 200);
    }
    let list: Value = reqwest::get(format!(
        "{base}/api/v1/anomalies?namespace=fw&name=fabric&limit=10"
    ))
    .await
    .expect("get")
    .json()
    .await
    .expect("json");
    let first = &list[0];
    assert_eq!(first["node"], "n1", "{list}");
    assert_eq!(first["target"], "fabric");
    assert!(
        first["since"].is_string() && first.get("ended").is_none(),
        "{list}"
    );
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|r| r["series"] == "ping_loss_percent" && r["score"].as_f64() >= Some(3.0)),
        "{list}"
    );
    let other: Value = reqwest::get(format!("{base}/api/v1/anomalies?namespace=fw&name=nope"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(other, serde_json::json!([]));
}

#[tokio::test]
async fn the_target_api_names_the_suspect() {
    let (base, shared) = start().await;
    let nodes = [("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")];
    for seq in 1..=3u64 {
        for (me, ip) in nodes {
            let mut r = report(me, ip, seq, 0.0);
            r.ping = nodes
                .iter()
                .filter(|(p, _)| *p != me)
                .map(|(p, addr)| {
                    // Every probe to or from n2 is lost with 40 %, from the second round on.
                    let lost = if seq > 1 && (me == "n2" || *p == "n2") {
                        40
                    } else {
                        0
                    };
                    PeerReport {
                        peer: p.to_string(),
                        address: addr.to_string(),
                        sent: 100,
                        received: 100 - lost,
                        loss_percent: f64::from(lost),
                        rtt_avg_seconds: Some(0.0002),
                        rtt_p99_seconds: Some(0.0004),
                        ..Default::default()
                    }
                })
                .collect();
            let (s, _) = post(&base, Some("good"), json(&r)).await;
            assert_eq!(s, 200);
        }
    }
    // The evaluation cycle's localization step.
    shared.fleet.lock().expect("fleet").localize_all(Utc::now());
    let view: Value = reqwest::get(format!("{base}/api/v1/targets/fw/fabric"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let s = &view["suspects"];
    assert_eq!(s.as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(s[0]["name"], "node/n2");
    assert_eq!(s[0]["kind"], "node");
    assert_eq!(s[0]["node"], "n2");
    assert_eq!(s[0]["cause"], "network");
    assert_eq!(
        s[0]["problems"], 4,
        "its pair problems are grouped under it"
    );
    assert!(s[0]["confidence"].as_f64().is_some_and(|c| c > 0.9), "{s}");
    assert!(
        s[0]["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("paths")),
        "{s}"
    );
    assert!(s[0]["since"].is_string());
    assert_eq!(view["health"], "Critical");
}
