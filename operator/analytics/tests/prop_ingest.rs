//! Property tests of report ingestion: the real `POST /api/v1/reports` handler (driven
//! in-process, no socket) fed arbitrary bodies and valid reports with arbitrary values swapped
//! in. An agent is outside input (a compromised node can send anything with a valid token):
//! analytics must answer 2xx or 4xx, never panic or 5xx, and keep memory bounded (tracked
//! nodes by the reports it accepted, never by their content).
//!
//! The same holds for the user-written strings of AlertRule and AIAnalysis specs that
//! analytics parses itself (durations, cron schedules): a rule is accepted or refused with a
//! message, never a panic, and what `validate()` accepts the engine accepts too.
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

// ---------------------------------------------------------------------------------------
// AlertRule / AIAnalysis specs: durations and cron schedules as users write them.
// ---------------------------------------------------------------------------------------

use chrono::TimeZone;
use fabricwatch_analytics::{aianalysis::debounce::next_run, rules::rule_spec};
use fabricwatch_crds::{alert_rule::AlertRule, AlertRuleSpec, CronSchedule};

/// Duration text: valid forms, near misses, overflow.
fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "([0-9]{1,4}(\\.[0-9]{1,3})?(ms|s|m|h)){1,3}",
        1 => "[0-9.]{0,25}(ms|s|m|h|d|us|)",
        1 => Just("99999999999999999999h".to_string()),
        1 => Just("1e400s".to_string()),
        1 => "\\PC{0,16}",
    ]
}

/// Cron text: five or six fields of numbers, ranges, steps, names, `L`, `W`, `#`, `?`.
fn cron_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        3 => "[0-9]{1,2}",
        2 => Just("*".to_string()),
        1 => "[0-9]{1,2}-[0-9]{1,2}(/[0-9]{1,3})?",
        1 => "\\*/[0-9]{1,3}",
        1 => "[0-9]{1,2}(,[0-9]{1,2}){1,4}",
        1 => "(MON|SAT|JAN|FEB|L|[0-9]L|[0-9]W|LW|[0-7]#[0-9]|\\?)",
        1 => "[0-9*/,#LW?-]{1,8}",
    ];
    prop_oneof![
        6 => proptest::collection::vec(field, 5..=6).prop_map(|f| f.join(" ")),
        1 => Just("0 0 30 2 *".to_string()),
        1 => Just("0 0 31 4,6,9,11 *".to_string()),
        1 => Just("0 0 29 2 *".to_string()),
        1 => "\\PC{0,40}",
    ]
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

proptest! {
    #![proptest_config(config())]

    /// An AlertRule with any durations and maintenance windows: `rule_spec` accepts it
    /// exactly when `validate()` does, its message is bounded, and every parsed window
    /// answers `active` at any time without panicking.
    #[test]
    fn alert_rule_specs_with_any_durations_and_crons(
        for_ in duration_text(),
        cooldown in duration_text(),
        windows in proptest::collection::vec((cron_text(), duration_text()), 0..3),
        flap in proptest::option::of((duration_text(), duration_text())),
        now_secs in -62_000_000_000i64..250_000_000_000,
    ) {
        let mut yaml = format!(
            "targetRef: {{name: fabric}}\nmetric: ping_loss_percent\noperator: gt\nthreshold: 5\nfor: {}\ncooldown: {}\n",
            yaml_string(&for_), yaml_string(&cooldown)
        );
        if !windows.is_empty() {
            yaml.push_str("maintenanceWindows:\n");
            for (cron, d) in &windows {
                yaml.push_str(&format!("- {{schedule: {}, duration: {}}}\n", yaml_string(cron), yaml_string(d)));
            }
        }
        if let Some((resolve_for, window)) = &flap {
            yaml.push_str(&format!("flapDamping: {{resolveFor: {}, window: {}, maxTransitions: 4}}\n",
                                   yaml_string(resolve_for), yaml_string(window)));
        }
        let spec: AlertRuleSpec = serde_yaml::from_str(&yaml).expect("the YAML is well-formed");
        let valid = spec.validate().is_ok();
        let mut rule = AlertRule::new("r", spec);
        rule.metadata.namespace = Some("ns".into());
        match rule_spec(&rule) {
            Ok(r) => {
                prop_assert!(valid, "rule_spec accepted what validate() refused");
                let now = Utc.timestamp_opt(now_secs, 0).single().unwrap_or_else(Utc::now);
                for w in &r.maintenance {
                    let _ = w.active(now);
                }
            }
            Err(e) => {
                prop_assert!(!valid, "validate() accepted what rule_spec refused: {e}");
                prop_assert!(e.len() <= 4096, "message of {} bytes", e.len());
            }
        }
    }

    /// An AIAnalysis schedule: the next run, when there is one, lies after the given time.
    #[test]
    fn ai_schedules_never_panic(cron in cron_text(), after_secs in -62_000_000_000i64..250_000_000_000) {
        let after = Utc.timestamp_opt(after_secs, 0).single().unwrap_or_else(Utc::now);
        let schedule = CronSchedule::new(cron);
        if let Some(next) = next_run(&schedule, after) {
            prop_assert!(next > after, "{next} is not after {after}");
            prop_assert!(schedule.parse().is_ok());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The `Authorization` header of every request to analytics (agents, the fleet view):
    /// a token is a non-empty run without whitespace taken from the header, and an error
    /// never echoes the header; a ServiceAccount username splits into its two parts or none.
    #[test]
    fn authorization_headers_and_usernames(
        header in proptest::option::of(prop_oneof![
            "(Bearer|bearer|BEARER|Basic|) {0,3}[A-Za-z0-9._~+/=-]{0,40}( [a-z]{0,4})?",
            "\\PC{0,60}",
        ]),
        username in prop_oneof!["system:serviceaccount:[a-z0-9:-]{0,20}", "\\PC{0,40}"],
    ) {
        use fabricwatch_common::auth::{bearer_token, Identity};
        match bearer_token(header.as_deref()) {
            Ok(token) => {
                prop_assert!(!token.is_empty() && !token.contains(char::is_whitespace));
                prop_assert!(header.as_deref().is_some_and(|h| h.contains(token)));
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.len() <= 200);
                if let Some(h) = header.as_deref().map(str::trim).filter(|h| h.len() >= 12) {
                    prop_assert!(!msg.contains(h), "the header echoed in {msg:?}");
                }
            }
        }
        if let Some((ns, name)) = Identity::parse_service_account(&username) {
            prop_assert_eq!(format!("system:serviceaccount:{ns}:{name}"), username);
        }
    }
}
