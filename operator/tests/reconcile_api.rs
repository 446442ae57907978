//! The MonitorTarget reconcile ([`monitor_target::reconcile`]) against a scripted API server:
//! no cluster, no root. The client is a [`kube::Client`] over a `tower-test` mock service; each
//! test lists the requests the reconcile must make, in order (method, path and the body
//! fields that matter) with the answer each gets, and fails on a request out of order, one
//! beyond the list, one that never comes, or a reconcile that does not finish in 10 s.
//!
//! Covered: a create (the four agent children applied with the operator's field manager and a
//! controlling owner reference, then `Accepted`/`Ready` written and announced), a converged
//! target (no request at all), a new generation (only the children whose desired object
//! changed are applied again), an invalid spec (`Accepted=False`, no child), drift (an edited
//! or deleted child is applied again), a PodMonitor no longer wanted (deleted, "not found"
//! accepted), and a target being deleted (nothing: the garbage collector removes the children
//! through their owner references).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// kube speaks `http` 1.x, the same crate axum re-exports.
use axum::http::request::Parts;
use axum::http::{Request, Response};
use fabricwatch_crds::{MonitorTarget, API_VERSION, FIELD_MANAGER_OPERATOR};
use fabricwatch_operator::controller::cache::children::{
    observe_daemon_set, observe_resource_version, ChildIndexes, Ledger,
};
use fabricwatch_operator::controller::context::{Backoff, Context, OptionalApis};
use fabricwatch_operator::controller::error::Error;
use fabricwatch_operator::controller::events::Publisher;
use fabricwatch_operator::controller::metrics::Metrics;
use fabricwatch_operator::controller::reconcile::{monitor_target, Outcome};
use fabricwatch_operator::controller::settings::{Settings, AGENT_CONFIG_FILE};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::Client;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tower_test::mock;

/// Namespace of the MonitorTarget (not the client's default, so paths show it is used).
const NS: &str = "team-a";
const NAME: &str = "fabric";
const UID: &str = "0b6c1f2e-7d1a-4c55-9a4e-3f1f2a9c0d11";
/// The agent children's name, `<target>-agent`.
const AGENT: &str = "fabric-agent";
/// Longest a reconcile, with its requests, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// `--resync-seconds` of [`settings`].
const RESYNC: Duration = Duration::from_secs(300);
/// Nodes the mocked DaemonSet schedules.
const NODES: i64 = 2;

type ApiServerHandle = mock::Handle<Request<Body>, Response<Body>>;
/// Checks of a request's head (query, headers) and JSON body (`Null` if none).
type Check = Box<dyn FnOnce(&Parts, &Value)>;
/// An answer's status code and JSON body, from the request's body.
type Answer = Box<dyn FnOnce(&Value) -> (u16, Value)>;

// ---------------------------------------------------------------------------------------------
// The scripted API server

/// One request the reconcile must make next, and the answer it gets.
struct Exchange {
    method: &'static str,
    path: String,
    /// Checks beyond method and path.
    check: Check,
    answer: Answer,
}

/// A fresh `resourceVersion` for every object the server returns.
fn next_resource_version() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(100);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// `body` with `extra`'s fields merged in (objects merged key by key, anything else replaced).
fn merged(mut body: Value, extra: &Value) -> Value {
    match (&mut body, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                let slot = b.entry(k.clone()).or_insert(Value::Null);
                *slot = merged(slot.take(), v);
            }
            body
        }
        _ => extra.clone(),
    }
}

/// A server-side apply of a child: `PATCH` with the operator's field manager, forced, an
/// apply-patch content type, and a body naming the child and its controlling owner. The
/// answer is the object as sent plus `extra` (stored fields: `resourceVersion`, a DaemonSet's
/// generation and status). `check` looks at the rest of the body.
fn apply(
    path: String,
    kind: &'static str,
    extra: Value,
    check: impl FnOnce(&Value) + 'static,
) -> Exchange {
    Exchange {
        method: "PATCH",
        path,
        check: Box::new(move |parts, body| {
            assert_server_side_apply(parts);
            assert_eq!(body["kind"], kind, "{body}");
            assert_eq!(body["metadata"]["name"], AGENT, "{body}");
            assert_eq!(body["metadata"]["namespace"], NS, "{body}");
            let owners = &body["metadata"]["ownerReferences"];
            assert_eq!(
                owners,
                &json!([{"apiVersion": API_VERSION, "kind": "MonitorTarget", "name": NAME,
                         "uid": UID, "controller": true}]),
                "the child must be garbage-collected with its target: {body}"
            );
            check(body);
        }),
        answer: Box::new(move |body| {
            let stored = json!({"metadata": {"resourceVersion": next_resource_version(),
                                              "uid": format!("uid-{kind}")}});
            (200, merged(merged(body.clone(), &stored), &extra))
        }),
    }
}

fn assert_server_side_apply(parts: &Parts) {
    let query = parts.uri.query().unwrap_or_default();
    assert!(
        query.contains(&format!("fieldManager={FIELD_MANAGER_OPERATOR}"))
            && query.contains("force=true"),
        "not a forced apply as {FIELD_MANAGER_OPERATOR}: {}",
        parts.uri
    );
    assert_eq!(
        parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/apply-patch+yaml"),
        "{}",
        parts.uri
    );
}

fn children_path(plural: &str) -> String {
    let group = if plural == "daemonsets" {
        "/apis/apps/v1"
    } else {
        "/api/v1"
    };
    format!("{group}/namespaces/{NS}/{plural}/{AGENT}")
}

/// The apply of the ServiceAccount: no API token mounted.
fn apply_service_account() -> Exchange {
    apply(
        children_path("serviceaccounts"),
        "ServiceAccount",
        json!({}),
        |body| {
            assert_eq!(body["automountServiceAccountToken"], false, "{body}");
        },
    )
}

/// The apply of the ConfigMap; `check` gets the agent config (YAML).
fn apply_config_map(check: impl FnOnce(&str) + 'static) -> Exchange {
    apply(
        children_path("configmaps"),
        "ConfigMap",
        json!({}),
        move |body| {
            let config = body["data"][AGENT_CONFIG_FILE]
                .as_str()
                .unwrap_or_else(|| panic!("no {AGENT_CONFIG_FILE} in {body}"));
            check(config);
        },
    )
}

/// The apply of the Service.
fn apply_service() -> Exchange {
    apply(children_path("services"), "Service", json!({}), |body| {
        assert!(body["spec"]["selector"].is_object(), "{body}");
    })
}

/// The apply of the DaemonSet, answered as stored at `generation` with a status whose
/// controller has seen `observed` and runs [`NODES`] ready agents.
fn apply_daemon_set(generation: i64, observed: i64) -> Exchange {
    let stored = json!({
        "metadata": {"generation": generation},
        "status": {"desiredNumberScheduled": NODES, "currentNumberScheduled": NODES,
                   "numberReady": NODES, "updatedNumberScheduled": NODES,
                   "numberMisscheduled": 0, "observedGeneration": observed},
    });
    apply(children_path("daemonsets"), "DaemonSet", stored, |body| {
        let container = &body["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], settings().agent_image, "{body}");
    })
}

/// The status write: a forced apply of `{apiVersion, kind, status}` on the status
/// subresource with `observedGeneration` and the two conditions `(type, status, reason)`;
/// `nodes` is `status.nodes`, absent when `None`. Answered with the target carrying that
/// status.
fn write_status(
    mt: &MonitorTarget,
    conditions: [(&'static str, &'static str, &'static str); 2],
    nodes: Option<Value>,
    check: impl FnOnce(&Value) + 'static,
) -> Exchange {
    let generation = mt.metadata.generation;
    let current = serde_json::to_value(mt).expect("a MonitorTarget serializes");
    Exchange {
        method: "PATCH",
        path: format!("/apis/fabricwatch.io/v1alpha1/namespaces/{NS}/monitortargets/{NAME}/status"),
        check: Box::new(move |parts, body| {
            assert_server_side_apply(parts);
            assert_eq!(body["apiVersion"], API_VERSION, "{body}");
            assert_eq!(body["kind"], "MonitorTarget", "{body}");
            let status = &body["status"];
            assert_eq!(status["observedGeneration"], json!(generation), "{body}");
            let got: Vec<(&str, &str, &str)> = status["conditions"]
                .as_array()
                .unwrap_or_else(|| panic!("no conditions in {body}"))
                .iter()
                .map(|c| {
                    assert_eq!(c["observedGeneration"], json!(generation), "{c}");
                    assert!(c["lastTransitionTime"].is_string(), "{c}");
                    (
                        c["type"].as_str().unwrap_or_default(),
                        c["status"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(got, conditions, "{body}");
            assert_eq!(status.get("nodes"), nodes.as_ref(), "{body}");
            check(status);
        }),
        answer: Box::new(move |body| {
            let mut stored = current;
            stored["metadata"]["resourceVersion"] = json!(next_resource_version());
            stored["status"] = body["status"].clone();
            (200, stored)
        }),
    }
}

/// The Event announcing a status write: `type_` and `reason` about the target, from the
/// operator; `check` looks at the note.
fn event(
    type_: &'static str,
    reason: &'static str,
    check: impl FnOnce(&str) + 'static,
) -> Exchange {
    Exchange {
        method: "POST",
        path: format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
        check: Box::new(move |_, body| {
            assert_eq!(body["type"], type_, "{body}");
            assert_eq!(body["reason"], reason, "{body}");
            assert_eq!(body["regarding"]["kind"], "MonitorTarget", "{body}");
            assert_eq!(body["regarding"]["name"], NAME, "{body}");
            assert_eq!(body["regarding"]["uid"], UID, "{body}");
            assert_eq!(
                body["reportingController"], FIELD_MANAGER_OPERATOR,
                "{body}"
            );
            check(body["note"].as_str().unwrap_or_default());
        }),
        answer: Box::new(|body| (201, body.clone())),
    }
}

/// Serves `script` in order, then fails on any further request until `done` fires (the
/// reconcile returned). Returns the answers' bodies.
async fn serve(
    handle: &mut ApiServerHandle,
    script: Vec<Exchange>,
    mut done: oneshot::Receiver<()>,
) -> Vec<Value> {
    let total = script.len();
    let mut answers = Vec::new();
    for (i, exchange) in script.into_iter().enumerate() {
        let n = i + 1;
        let (request, send) = tokio::select! {
            next = handle.next_request() => next.expect("the client went away"),
            _ = &mut done => panic!(
                "request {n} of {total} never came: {} {}",
                exchange.method, exchange.path
            ),
        };
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("a readable request body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON request body")
        };
        assert_eq!(
            (parts.method.as_str(), parts.uri.path()),
            (exchange.method, exchange.path.as_str()),
            "request {n} of {total} ({})",
            parts.uri
        );
        (exchange.check)(&parts, &body);
        let (code, answer) = (exchange.answer)(&body);
        let response = Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
            .expect("a valid response");
        send.send_response(response);
        answers.push(answer);
    }
    tokio::select! {
        next = handle.next_request() => {
            if let Some((r, _)) = next {
                panic!("unexpected request after the {total} expected: {} {}", r.method(), r.uri());
            }
        }
        _ = done => {}
    }
    answers
}

/// Runs `reconcile` while serving `script`; returns its result and the answers given.
async fn against<F>(
    handle: &mut ApiServerHandle,
    script: Vec<Exchange>,
    reconcile: F,
) -> (Result<Outcome, Error>, Vec<Value>)
where
    F: Future<Output = Result<Outcome, Error>>,
{
    let (done_tx, done_rx) = oneshot::channel();
    let reconcile = async {
        let result = reconcile.await;
        let _ = done_tx.send(());
        result
    };
    tokio::time::timeout(TIMEOUT, async {
        tokio::join!(reconcile, serve(handle, script, done_rx))
    })
    .await
    .expect("the reconcile did not finish within 10 s (waiting on a request nobody answers?)")
}

// ---------------------------------------------------------------------------------------------
// Objects and context

/// The controller's settings with the chart's defaults and a 300 s resync.
fn settings() -> Settings {
    Settings {
        agent_image: "localhost/fabricwatch-agent:dev".into(),
        agent_image_pull_policy: "IfNotPresent".into(),
        analytics_url: "http://fabricwatch-analytics.fabricwatch.svc:8080".into(),
        token_audience: "fabricwatch-analytics".into(),
        namespace: "fabricwatch".into(),
        operator_image: "localhost/fabricwatch-operator:dev".into(),
        operator_image_pull_policy: "IfNotPresent".into(),
        analytics_service_account: "fabricwatch-analytics".into(),
        notifier_service_account: "fabricwatch-notifier".into(),
        log_format: "text".into(),
        analytics_ui_listen: None,
        resync: RESYNC,
    }
}

/// A client over a mock service, and the handle that plays the API server.
fn mock_client() -> (Client, ApiServerHandle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// A reconciler's context as the controller builds it, empty indexes and ledger; whether the
/// PodMonitor API exists is `pod_monitor_api`.
fn context(client: Client, pod_monitor_api: bool) -> Context {
    let apis = OptionalApis::default();
    apis.set(pod_monitor_api, false);
    Context {
        client: client.clone(),
        settings: settings(),
        events: Publisher::new(client, FIELD_MANAGER_OPERATOR, "fabricwatch-operator-0"),
        metrics: Metrics::new(&prometheus::Registry::new()).expect("metrics register"),
        apis,
        backoff: Backoff::default(),
        children: ChildIndexes::default(),
        ledger: Ledger::default(),
    }
}

/// The target `team-a/fabric` at `generation` with `spec`.
fn target(generation: i64, spec: Value) -> MonitorTarget {
    serde_json::from_value(json!({
        "apiVersion": API_VERSION,
        "kind": "MonitorTarget",
        "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": generation,
                     "resourceVersion": "1"},
        "spec": spec,
    }))
    .expect("a valid MonitorTarget")
}

fn parse<K: DeserializeOwned>(v: &Value) -> K {
    serde_json::from_value(v.clone()).expect("an answer of the right kind")
}

/// The requests of a first reconcile of a valid target whose agents all run: the four
/// children, then the status, then its Event.
fn create_script(mt: &MonitorTarget) -> Vec<Exchange> {
    vec![
        apply_service_account(),
        apply_config_map(|config| {
            assert!(config.contains(&format!("name: {NAME}")), "{config}");
            assert!(config.contains("intervalSeconds: 10"), "{config}");
        }),
        apply_service(),
        apply_daemon_set(1, 1),
        write_status(
            mt,
            [
                ("Accepted", "True", "Valid"),
                ("Ready", "True", "AgentsReady"),
            ],
            Some(json!({"desired": NODES, "ready": NODES})),
            |status| {
                assert_eq!(status["conditions"][1]["message"], "2/2 agents ready");
            },
        ),
        event("Normal", "AgentsReady", |note| {
            assert_eq!(
                note,
                "Accepted=True (Valid): the spec is valid; Ready=True (AgentsReady): 2/2 agents ready"
            );
        }),
    ]
}

/// What the children's watches would report after a reconcile whose applies were answered
/// with `answers` (in [`create_script`]'s order).
fn watch_sees(ctx: &Context, answers: &[Value]) {
    let c = &ctx.children;
    c.service_accounts.apply(
        watcher::Event::Apply(parse::<ServiceAccount>(&answers[0])),
        observe_resource_version,
    );
    c.config_maps.apply(
        watcher::Event::Apply(parse::<ConfigMap>(&answers[1])),
        observe_resource_version,
    );
    c.services.apply(
        watcher::Event::Apply(parse::<Service>(&answers[2])),
        observe_resource_version,
    );
    c.daemon_sets.apply(
        watcher::Event::Apply(parse::<DaemonSet>(&answers[3])),
        observe_daemon_set,
    );
}

/// Creates the target and lets the watches catch up; returns it as its status write left it
/// and the answers of the applies.
async fn converged(handle: &mut ApiServerHandle, ctx: &Context) -> (MonitorTarget, Vec<Value>) {
    let mt = target(1, json!({}));
    let script = create_script(&mt);
    let (result, answers) = against(handle, script, monitor_target::reconcile(&mt, ctx)).await;
    result.expect("the first reconcile succeeds");
    watch_sees(ctx, &answers);
    (parse(&answers[4]), answers)
}

fn assert_requeue(outcome: Outcome, after: Duration) {
    assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    assert_eq!(outcome.action(), Action::requeue(after));
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn create_applies_the_children_then_writes_accepted_and_ready() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let mt = target(1, json!({}));
    let (result, _) = against(
        &mut handle,
        create_script(&mt),
        monitor_target::reconcile(&mt, &ctx),
    )
    .await;
    // Every agent runs: nothing to watch for until the resync.
    assert_requeue(result.expect("reconciled"), RESYNC);
}

#[tokio::test]
async fn a_converged_target_sends_no_request() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let (mt, _) = converged(&mut handle, &ctx).await;
    let (result, _) = against(&mut handle, vec![], monitor_target::reconcile(&mt, &ctx)).await;
    assert_requeue(result.expect("reconciled"), RESYNC);
}

#[tokio::test]
async fn a_new_generation_reapplies_what_changed() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let (mut mt, answers) = converged(&mut handle, &ctx).await;
    let old_config = answers[1]["data"][AGENT_CONFIG_FILE].clone();
    // The user changes the interval: the agent config and so the DaemonSet (its pod template
    // carries the config's hash) change; the ServiceAccount and the Service do not.
    mt.metadata.generation = Some(2);
    mt.spec = serde_json::from_value(json!({"interval": "17s"})).expect("a valid spec");
    let script = vec![
        apply_config_map(move |config| {
            assert!(config.contains("intervalSeconds: 17"), "{config}");
            assert_ne!(json!(config), old_config);
        }),
        // The DaemonSet controller has not seen generation 2 yet.
        apply_daemon_set(2, 1),
        // While agents roll out, the namespace is read for a Pod Security level that would
        // explain agents that never start.
        Exchange {
            method: "GET",
            path: format!("/api/v1/namespaces/{NS}"),
            check: Box::new(|_, body| assert!(body.is_null(), "{body}")),
            answer: Box::new(|_| {
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": NS, "labels": {"kubernetes.io/metadata.name": NS}}}),
                )
            }),
        },
        write_status(
            &mt,
            [
                ("Accepted", "True", "Valid"),
                ("Ready", "False", "RollingOut"),
            ],
            Some(json!({"desired": NODES, "ready": NODES})),
            |status| {
                assert_eq!(
                    status["conditions"][1]["message"],
                    "waiting for the DaemonSet controller to pick up the new agent spec"
                );
            },
        ),
        event("Normal", "RollingOut", |note| {
            assert!(note.starts_with("Ready=False (RollingOut)"), "{note}");
            assert!(!note.contains("Accepted"), "only Ready changed: {note}");
        }),
    ];
    let (result, _) = against(&mut handle, script, monitor_target::reconcile(&mt, &ctx)).await;
    // Agents roll out: look again soon.
    assert_requeue(result.expect("reconciled"), Duration::from_secs(30));
}

#[tokio::test]
async fn an_invalid_spec_is_not_accepted_and_applies_no_child() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let mt = target(
        1,
        json!({"rdma": {"enabled": false}, "ping": {"enabled": false}, "host": {"enabled": false}}),
    );
    let script = vec![
        write_status(
            &mt,
            [
                ("Accepted", "False", "InvalidSpec"),
                ("Ready", "False", "InvalidSpec"),
            ],
            // No DaemonSet counts known yet, none invented.
            None,
            |status| {
                let accepted = status["conditions"][0]["message"]
                    .as_str()
                    .unwrap_or_default();
                assert!(
                    accepted.starts_with("fix the spec: ")
                        && accepted.contains("enable at least one collector"),
                    "{accepted}"
                );
            },
        ),
        event("Warning", "InvalidSpec", |note| {
            assert!(note.contains("Accepted=False (InvalidSpec)"), "{note}");
        }),
    ];
    let (result, _) = against(&mut handle, script, monitor_target::reconcile(&mt, &ctx)).await;
    let outcome = result.expect("an invalid spec is an outcome, not an error");
    assert!(matches!(outcome, Outcome::Invalid), "{outcome:?}");
    assert_eq!(outcome.action(), Action::await_change());
}

#[tokio::test]
async fn an_edited_or_deleted_child_is_applied_again() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let (mt, answers) = converged(&mut handle, &ctx).await;
    // Someone edits the ConfigMap (a new resourceVersion) and deletes the Service.
    let mut edited = answers[1].clone();
    edited["metadata"]["resourceVersion"] = json!("edited-1");
    ctx.children.config_maps.apply(
        watcher::Event::Apply(parse::<ConfigMap>(&edited)),
        observe_resource_version,
    );
    ctx.children.services.apply(
        watcher::Event::Delete(parse::<Service>(&answers[2])),
        observe_resource_version,
    );
    let script = vec![
        apply_config_map(|config| assert!(config.contains("intervalSeconds: 10"), "{config}")),
        apply_service(),
    ];
    // The status is as written before: no status write, no Event.
    let (result, _) = against(&mut handle, script, monitor_target::reconcile(&mt, &ctx)).await;
    assert_requeue(result.expect("reconciled"), RESYNC);
}

#[tokio::test]
async fn a_pod_monitor_no_longer_wanted_is_deleted() {
    let (client, mut handle) = mock_client();
    // The Prometheus Operator's API exists, the spec turns the PodMonitor off.
    let ctx = context(client, true);
    let mt = target(1, json!({"scrape": {"podMonitor": "disabled"}}));
    let mut script = create_script(&mt);
    let status_and_event = script.split_off(4);
    script.push(Exchange {
        method: "DELETE",
        path: format!("/apis/monitoring.coreos.com/v1/namespaces/{NS}/podmonitors/{AGENT}"),
        check: Box::new(|_, _| {}),
        // Never created (or already gone): not an error.
        answer: Box::new(|_| {
            (404, json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                         "reason": "NotFound", "code": 404,
                         "message": format!("podmonitors.monitoring.coreos.com \"{AGENT}\" not found")}))
        }),
    });
    script.extend(status_and_event);
    let (result, _) = against(&mut handle, script, monitor_target::reconcile(&mt, &ctx)).await;
    assert_requeue(result.expect("reconciled"), RESYNC);
}

#[tokio::test]
async fn a_target_being_deleted_sends_no_request() {
    let (client, mut handle) = mock_client();
    let ctx = context(client, false);
    let mut mt = target(1, json!({}));
    mt.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    // The children carry controlling owner references (checked in every apply above): the
    // garbage collector deletes them, the reconcile does nothing.
    let (result, _) = against(&mut handle, vec![], monitor_target::reconcile(&mt, &ctx)).await;
    let outcome = result.expect("reconciled");
    assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    assert_eq!(outcome.action(), Action::await_change());
}
