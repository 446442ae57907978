//! Templates, filters and the pages rendered from fleet state.

use chrono::Utc;
use fabricwatch_crds::AIAnalysis;
use fabricwatch_proto::ObjectRef;

use super::{login::cookie_safe, render::env, *};
use crate::{
    alert::RuleState,
    authz::{Caller, Scope},
    http::Api,
};

#[test]
fn every_template_parses() {
    for (name, _) in TEMPLATES {
        assert!(env().get_template(name).is_ok(), "{name}");
    }
}

#[test]
fn ages_read_naturally() {
    let now = Utc::now();
    assert_eq!(ago(now - chrono::Duration::seconds(5), now), "5 s ago");
    assert_eq!(ago(now - chrono::Duration::minutes(5), now), "5 min ago");
    assert_eq!(ago(now - chrono::Duration::hours(5), now), "5 h ago");
    assert_eq!(ago(now + chrono::Duration::seconds(5), now), "0 s ago");
}

/// A firing AlertRule with one delivery in its status shows state, value, firing series
/// and the channel's result.
#[test]
fn alerts_show_state_series_and_deliveries() {
    use crate::{
        alert::RuleSpec,
        authz::Access,
        derive::tests::peer,
        evaluator::{Evaluator, RuleInput},
        fleet::{Fleet, Settings},
        metrics::Metrics,
        state::{EventLog, OpenCatalog, Shared},
    };
    use chrono::Duration;
    use fabricwatch_crds::alert_rule::{Metric, Operator, Scope as RuleScope};
    use fabricwatch_proto::{report::AgentReport, Severity};
    use kube::runtime::{reflector, watcher};
    use std::sync::{Arc, Mutex};

    let target = ObjectRef {
        namespace: "ns".into(),
        name: "fabric".into(),
    };
    let rule = ObjectRef {
        namespace: "ns".into(),
        name: "loss".into(),
    };
    let spec = RuleSpec {
        rule: rule.clone(),
        target: target.clone(),
        metric: Metric::PingLossPercent,
        op: Operator::Gt,
        threshold: 5.0,
        for_: Duration::zero(),
        scope: RuleScope::PerNode,
        severity: Severity::Critical,
        resolve_for: Duration::zero(),
        flap: None,
        cooldown: Duration::zero(),
        repeat_interval: None,
        maintenance: vec![],
        silence: None,
        acknowledge: None,
        annotations: Default::default(),
        analysis_ref: None,
    };
    let now = Utc::now();
    let mut fleet = Fleet::new(Settings::default());
    fleet.ingest(
        &AgentReport {
            schema_version: 1,
            target: target.clone(),
            node: "n1".into(),
            collected_at: now,
            interval_seconds: 10.0,
            ping: vec![peer("n2", 40.0, 0.001)],
            ..Default::default()
        },
        None,
        now,
    );
    let mut ev = Evaluator::default();
    ev.sync(vec![RuleInput {
        rule: rule.clone(),
        spec: Ok(spec),
        recorded_firing: vec![],
        generation: Some(1),
    }]);
    let cycle = ev.evaluate(&fleet, now);
    assert_eq!(cycle.reports[0].state, Some(RuleState::Firing));

    let (store, mut writer) = reflector::store::<fabricwatch_crds::AlertRule>();
    let obj: fabricwatch_crds::AlertRule = serde_json::from_value(serde_json::json!({
        "apiVersion": "fabricwatch.io/v1alpha1", "kind": "AlertRule",
        "metadata": {"name": "loss", "namespace": "ns"},
        "spec": {"targetRef": {"name": "fabric"}, "metric": "ping_loss_percent",
                 "operator": "gt", "threshold": 5},
        "status": {"notifications": [{"channel": "oncall-slack", "result": "Sent",
                                        "message": "HTTP 200"}]}
    }))
    .expect("AlertRule");
    writer.apply_watcher_event(&watcher::Event::Apply(obj));

    let shared = Arc::new(Shared {
        fleet: Mutex::new(fleet),
        evaluator: Mutex::new(ev),
        events: Mutex::new(EventLog::new(10)),
        max_body_bytes: 1024,
        ..Shared::new(Metrics::new().expect("metrics"), Arc::new(OpenCatalog))
    });
    let api = Api::new(shared, Arc::new(Access::open())).with_rules(Some(store));
    let html = alerts_html(&api, &Scope::All, &Caller::Trusted).expect("render");
    let row = html
        .split(r#"data-rule="ns/loss""#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("row");
    assert!(
        row.contains(r#"class="state-firing""#)
            || html.contains(r#"data-rule="ns/loss" class="state-firing""#),
        "{html}"
    );
    assert!(row.contains(">Firing<"), "{row}");
    assert!(row.contains("40.000"), "value: {row}");
    assert!(row.contains("n1 → n2"), "series: {row}");
    assert!(
        row.contains("oncall-slack: Sent (HTTP 200)"),
        "delivery: {row}"
    );
    assert!(
        !row.contains("/silence"),
        "no silence form without a Kubernetes API"
    );
    struct Noop;
    impl silence::RuleSilencer for Noop {
        fn set<'a>(
            &'a self,
            _: &'a ObjectRef,
            _: Option<silence::SilenceRequest>,
        ) -> silence::SilenceFuture<'a> {
            Box::pin(async { Ok(()) })
        }
        fn acknowledge<'a>(
            &'a self,
            _: &'a ObjectRef,
            _: Option<silence::AckRequest>,
        ) -> silence::SilenceFuture<'a> {
            Box::pin(async { Ok(()) })
        }
    }
    let api = api.with_silencer(Some(Arc::new(Noop)));
    let html = alerts_html(&api, &Scope::All, &Caller::Trusted).expect("render");
    assert!(
        html.contains(r#"action="/ui/alerts/ns/loss/silence""#)
            && html.contains(">Silence</button>"),
        "{html}"
    );
    assert!(
        html.contains(r#"action="/ui/alerts/ns/loss/acknowledge""#)
            && html.contains(">Acknowledge</button>"),
        "a firing rule can be acknowledged: {html}"
    );
    // Outside the caller's scope, nothing.
    let none = alerts_html(
        &api,
        &Scope::Only(std::collections::BTreeSet::from(["other".to_string()])),
        &Caller::Trusted,
    )
    .expect("render");
    assert!(!none.contains("ns/loss"));
}

/// An AIAnalysis's findings show with severity, evidence and recommendation, the cost of
/// the day, and its latest finding on the overview row of the target it analyses.
#[test]
fn analyses_show_findings_and_cost() {
    use crate::{
        authz::Access,
        fleet::{Fleet, Settings},
        metrics::Metrics,
        state::{EventLog, OpenCatalog, Shared},
    };
    use fabricwatch_proto::report::AgentReport;
    use kube::runtime::{reflector, watcher};
    use std::sync::{Arc, Mutex};

    let (store, mut writer) = reflector::store::<AIAnalysis>();
    let obj: AIAnalysis = serde_json::from_value(serde_json::json!({
        "apiVersion": "fabricwatch.io/v1alpha1", "kind": "AIAnalysis",
        "metadata": {"name": "diag", "namespace": "ns"},
        "spec": {"targetRefs": [{"kind": "MonitorTarget", "name": "fabric"}],
                 "provider": {"type": "ollama", "model": "llama3"}},
        "status": {"phase": "Succeeded", "model": "llama3",
                   "usage": {"todayCostUsd": 0.0123},
                   "findings": [{"severity": "critical", "title": "Bad cable on n2",
                                 "summary": "n2 drops 30 % towards n9.",
                                 "evidence": ["180 of 600 probes lost"],
                                 "affected": ["n2"],
                                 "recommendation": "Reseat the n2 cable."}]}
    }))
    .expect("AIAnalysis");
    writer.apply_watcher_event(&watcher::Event::Apply(obj));
    let now = Utc::now();
    let mut fleet = Fleet::new(Settings::default());
    fleet.ingest(
        &AgentReport {
            schema_version: 1,
            target: ObjectRef {
                namespace: "ns".into(),
                name: "fabric".into(),
            },
            node: "n1".into(),
            collected_at: now,
            interval_seconds: 10.0,
            ..Default::default()
        },
        None,
        now,
    );
    let shared = Arc::new(Shared {
        fleet: Mutex::new(fleet),
        events: Mutex::new(EventLog::new(10)),
        max_body_bytes: 1024,
        ..Shared::new(Metrics::new().expect("metrics"), Arc::new(OpenCatalog))
    });
    let api = Api::new(shared, Arc::new(Access::open())).with_analyses(Some(store));
    let html = analyses_html(&api, &Scope::All, &Caller::Trusted).expect("render");
    for want in [
        "ns/diag",
        "Bad cable on n2",
        "180 of 600 probes lost",
        "Recommendation: Reseat the n2 cable.",
        "cost today 0.0123 USD",
    ] {
        assert!(html.contains(want), "{want}: {html}");
    }
    let overview = overview_html(&api, &Scope::All, &Caller::Trusted).expect("render");
    let row = overview
        .split(r#"data-target="ns/fabric""#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("row");
    assert!(row.contains("Bad cable on n2"), "{row}");
}

#[test]
fn only_cookie_safe_tokens_are_stored() {
    assert!(cookie_safe("eyJhbGciOi.JSUzI1-NiIs_In.R5cCI6"));
    assert!(!cookie_safe("a;b"));
    assert!(!cookie_safe("a b"));
    assert!(!cookie_safe(""));
}

/// The node page charts RTT p50 next to p99 and the RDMA receive and transmit rates in
/// bytes per second (SI-prefixed on the axis), and lists each peer's p50 beside its p99.
#[test]
fn node_page_charts_rtt_p50_and_rdma_traffic() {
    use crate::{
        authz::Access,
        derive::tests::peer,
        fleet::{Fleet, Settings},
        metrics::Metrics,
        state::{OpenCatalog, Shared},
    };
    use fabricwatch_proto::report::{AgentReport, PeerReport, RdmaPortReport};
    use std::sync::{Arc, Mutex};

    let target = ObjectRef {
        namespace: "ns".into(),
        name: "fabric".into(),
    };
    let now = Utc::now();
    let mut fleet = Fleet::new(Settings::default());
    for seq in 1..=3u64 {
        let at = now - chrono::Duration::seconds(10 * (3 - seq as i64));
        fleet.ingest(
            &AgentReport {
                schema_version: 1,
                target: target.clone(),
                node: "n1".into(),
                seq,
                collected_at: at,
                interval_seconds: 10.0,
                ping: vec![PeerReport {
                    rtt_p50_seconds: Some(0.000_25),
                    ..peer("n2", 0.0, 0.004)
                }],
                rdma: vec![RdmaPortReport {
                    device: "mlx5_0".into(),
                    port: 1,
                    state: "ACTIVE".into(),
                    // 4-octet words: 1 GB received and 0.5 GB sent every 10 s.
                    counters: [
                        ("port_rcv_data".to_string(), seq * 250_000_000),
                        ("port_xmit_data".to_string(), seq * 125_000_000),
                    ]
                    .into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            None,
            at,
        );
    }
    let rx = fleet
        .history(&target, "n1", "rdma_receive_bytes_per_second")
        .expect("rx history");
    assert_eq!(
        rx.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![1.0e8, 1.0e8],
        "two rates from three reports"
    );
    let shared = Arc::new(Shared {
        fleet: Mutex::new(fleet),
        ..Shared::new(Metrics::new().expect("metrics"), Arc::new(OpenCatalog))
    });
    let api = Api::new(shared, Arc::new(Access::open()));
    let html = node_html(&api, &target, "n1", &Caller::Trusted)
        .expect("node known")
        .expect("render");
    let figure = |series: &str| {
        html.split(&format!(r#"id="chart-{series}""#))
            .nth(1)
            .and_then(|f| f.split("</figure>").next())
            .unwrap_or_default()
            .to_string()
    };
    let p50 = figure("ping_rtt_p50_seconds");
    assert!(
        p50.contains("RTT p50 (worst peer) (ms)") && p50.contains("<polyline"),
        "{p50}"
    );
    assert!(
        html.find(r#"id="chart-ping_rtt_p50_seconds""#)
            < html.find(r#"id="chart-ping_rtt_p99_seconds""#),
        "p50 next to p99"
    );
    for (series, title) in [
        (
            "rdma_receive_bytes_per_second",
            "RDMA received (all ports) (MB",
        ),
        (
            "rdma_transmit_bytes_per_second",
            "RDMA transmitted (all ports) (MB",
        ),
    ] {
        let f = figure(series);
        assert!(f.contains(title), "{series}: {f}");
        assert!(f.contains(">\nMB/s\n</text>"), "{series} axis: {f}");
        assert!(f.contains("<polyline"), "{series} line: {f}");
    }
    assert!(
        html.contains(r#"<td class="num">0.250 ms</td><td class="num">4.000 ms</td>"#),
        "peer p50 beside p99: {html}"
    );
    assert!(node_html(&api, &target, "n9", &Caller::Trusted).is_none());
}
