//! Property tests of report ingestion: the real `POST /api/v1/reports` handler (driven
//! in-process, no socket) fed arbitrary bodies and valid reports with arbitrary values swapped
//! in. An agent is outside input (a compromised node can send anything with a valid token):
//! analytics must answer 2xx or 4xx, never panic or 5xx, and keep memory bounded (tracked
//! nodes by the reports it accepted, never by their content).
//!
//! Case counts: 256 per property by default; `PROPTEST_CASES` for a longer run.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use chrono::Utc;
use fabricwatch_analytics::{
    fleet::TargetConfig,
    http::router,
    metrics::Metrics,
    state::{Catalog, Shared},
};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, RdmaPortReport, REPORT_PATH},
    ObjectRef,
};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const MAX_BODY_BYTES: usize = 64 * 1024;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(cases)
}

struct AnyTarget;

impl Catalog for AnyTarget {
    fn target(&self, _: &ObjectRef) -> Option<TargetConfig> {
        Some(TargetConfig::default())
    }
    fn node_label(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        max_body_bytes: MAX_BODY_BYTES,
        ..Shared::new(Metrics::new().expect("metrics"), Arc::new(AnyTarget))
    })
}

fn valid_report() -> Value {
    serde_json::to_value(AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: "fw".into(),
            name: "fabric".into(),
        },
        node: "n1".into(),
        node_ip: Some("10.0.0.1".into()),
        agent_version: "0.1.0".into(),
        seq: 1,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: "n2".into(),
            address: "10.0.0.2".into(),
            sent: 5,
            received: 4,
            loss_percent: 20.0,
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
    })
    .expect("serialize")
}

/// Every path to a value inside `v` (object keys and array indexes).
fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{prefix}/{k}");
                out.push(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                paths(child, &p, out);
            }
        }
        _ => {}
    }
}

/// JSON values an agent could send: edge numbers, long and odd strings, nesting.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(-1.0),
            Just(1e308),
            Just(-1e308),
            Just(5e-324),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ]
        .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        "(10\\.0\\.0\\.[0-9]{1,3}|::1|fe80::1%eth0|[0-9a-f:.]{0,20}|n[0-9])".prop_map(Value::from),
        (0usize..400).prop_map(|n| Value::from("x".repeat(n))),
        "(ACTIVE|DOWN|INIT|LinkUp|Polling|icmp|tcp|2026-12-06T04:00:00Z|1970-01-01T00:00:00Z|9999-12-31T23:59:59Z)"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid report with `swaps` values replaced (by path index) and a peer list grown to
/// `peers` copies of the first peer.
fn mutated_report() -> impl Strategy<Value = Vec<u8>> {
    let base = valid_report();
    let mut all = Vec::new();
    paths(&base, "", &mut all);
    let n = all.len();
    (
        proptest::collection::vec((0..n, any_json()), 0..4),
        0usize..1200,
    )
        .prop_map(move |(swaps, peers)| {
            let mut v = base.clone();
            if peers > 1 {
                if let Some(Value::Array(list)) = v.pointer_mut("/ping") {
                    let first = list[0].clone();
                    list.extend((1..peers).map(|i| {
                        let mut p = first.clone();
                        p["peer"] = Value::from(format!("n{i}"));
                        p
                    }));
                }
            }
            for (i, value) in swaps {
                if let Some(slot) = v.pointer_mut(&all[i]) {
                    *slot = value;
                }
            }
            serde_json::to_vec(&v).expect("serialize")
        })
}

fn post(shared: &Arc<Shared>, body: Vec<u8>) -> (u16, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let req = Request::post(REPORT_PATH)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = router(
            shared.clone(),
            std::sync::Arc::new(fabricwatch_analytics::authz::Access::open()),
        )
        .oneshot(req)
        .await
        .expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        (status, bytes)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bodies_get_a_4xx(body in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        "\\PC{0,512}".prop_map(String::into_bytes),
        any_json().prop_map(|v| serde_json::to_vec(&v).expect("json")),
        (0usize..(2 * MAX_BODY_BYTES)).prop_map(|n| vec![b'['; n]),
    ]) {
        let s = shared();
        let (status, len) = post(&s, body);
        prop_assert!((200..500).contains(&status), "status {status}");
        prop_assert!(len <= 16 * 1024, "response of {len} bytes");
    }

    #[test]
    fn mutated_reports_never_panic_and_stay_bounded(bodies in proptest::collection::vec(mutated_report(), 1..4)) {
        let s = shared();
        let mut accepted = 0;
        for body in bodies {
            let (status, len) = post(&s, body);
            prop_assert!((200..500).contains(&status), "status {status}");
            prop_assert!(len <= 64 * 1024, "response of {len} bytes");
            accepted += usize::from(status == 200);
        }
        let fleet = s.fleet.lock().expect("fleet lock");
        prop_assert!(fleet.node_count() <= accepted, "{} nodes from {accepted} reports", fleet.node_count());
    }
}
