//! HTTP edge: `POST /api/v1/reports` (agent ingest) and the read-only JSON API.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v1/reports` | `PushResponse` (200), or `{"error", "reason"}` with 400/401/403/413/503 |
//! | `GET /api/v1/targets` | every target's `TargetView` |
//! | `GET /api/v1/targets/{ns}/{name}` | one `TargetView` (404 when unknown) |
//! | `GET /api/v1/targets/{ns}/{name}/nodes` | `NodeView`s: health, findings, anomaly, rolling stats, latest sample |
//! | `GET /api/v1/targets/{ns}/{name}/nodes/{node}/history/{series}` | the window of one series (`[{at, value}]`) |
//! | `GET /api/v1/alerts` | every AlertRule's last evaluation |
//! | `GET /api/v1/events?namespace=&name=&limit=` | latest events, newest first |
//! | `GET /api/v1/anomalies?namespace=&name=&limit=` | anomaly episodes, newest first: namespace, target, node, series, score, since, ended |
//!
//! Every `GET` answers only about namespaces the caller may read ([`crate::authz`]): a
//! bearer token (header, or the `fabricwatch_token` cookie the fleet view sets) reviewed with
//! TokenReview and SubjectAccessReview; 401 without a valid token, 403 without permission.
//! Lists are filtered to the readable namespaces. Ingest authenticates agents on its own
//! ([`crate::policy`]); `/metrics` and health are merged in unauthenticated by the caller.

use std::{sync::Arc, time::Instant};

use std::collections::BTreeSet;

use axum::{
    body::Body,
    extract::{FromRef, FromRequestParts, Path, Query, State},
    http::{header, request::Parts, Request, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::Utc;
use fabricwatch_common::auth::{bearer_token, AuthError, Identity};
use fabricwatch_proto::{
    report::{AgentReport, PushResponse, REPORT_PATH, REPORT_SCHEMA_VERSION},
    ObjectRef,
};
use serde::{Deserialize, Serialize};

use crate::{
    authz::{Access, Caller, Denied, Scope},
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

/// Error body of every non-2xx answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Machine-readable reason, also the `result` label of the reports counter.
    pub reason: String,
}

fn fail(shared: &Shared, status: StatusCode, reason: &str, error: String) -> Response {
    shared.metrics.reports.with_label_values(&[reason]).inc();
    tracing::debug!(reason, %status, "report refused: {error}");
    let mut r = (
        status,
        Json(ErrorBody {
            error,
            reason: reason.into(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// State of analytics' routes: the process state and the access decisions of this listener.
#[derive(Clone)]
pub struct Api {
    /// Process state.
    pub shared: Arc<Shared>,
    /// Who may read what.
    pub access: Arc<Access>,
    /// AIAnalyses (their findings), when a Kubernetes API is there to watch them.
    pub analyses: Option<kube::runtime::reflector::Store<fabricwatch_crds::AIAnalysis>>,
    /// AlertRules (their per-channel delivery results), when a Kubernetes API is there.
    pub rules: Option<kube::runtime::reflector::Store<fabricwatch_crds::AlertRule>>,
    /// Writes AlertRules' `spec.silence` for the fleet view's silence action.
    pub silencer: Option<Arc<dyn crate::ui::silence::RuleSilencer>>,
}

impl Api {
    /// State of a listener deciding with `access`, without AIAnalyses.
    pub fn new(shared: Arc<Shared>, access: Arc<Access>) -> Self {
        Self {
            shared,
            access,
            analyses: None,
            rules: None,
            silencer: None,
        }
    }

    /// Lets the fleet view's silence action write AlertRules through `silencer`.
    pub fn with_silencer(
        mut self,
        silencer: Option<Arc<dyn crate::ui::silence::RuleSilencer>>,
    ) -> Self {
        self.silencer = silencer;
        self
    }

    /// Shows the per-channel delivery results of the AlertRules of `store` in the fleet view.
    pub fn with_rules(
        mut self,
        store: Option<kube::runtime::reflector::Store<fabricwatch_crds::AlertRule>>,
    ) -> Self {
        self.rules = store;
        self
    }

    /// Shows the AIAnalyses of `store` in the fleet view.
    pub fn with_analyses(
        mut self,
        store: Option<kube::runtime::reflector::Store<fabricwatch_crds::AIAnalysis>>,
    ) -> Self {
        self.analyses = store;
        self
    }

    /// Ingest, the read API and the fleet view.
    pub fn router(self) -> Router {
        Router::new()
            .route(REPORT_PATH, post(ingest))
            .merge(read_router())
            .merge(crate::ui::routes())
            .with_state(self)
    }

    /// The read API and the fleet view for a trusted listener (`--ui-listen` on loopback):
    /// every caller reads everything; no ingest.
    pub fn trusted_router(self) -> Router {
        read_router().merge(crate::ui::routes()).with_state(Api {
            access: Arc::new(Access::open()),
            ..self
        })
    }
}

impl FromRef<Api> for Arc<Shared> {
    fn from_ref(api: &Api) -> Self {
        api.shared.clone()
    }
}

/// Cookie the fleet view stores a bearer token in (browsers send no `Authorization` header
/// on navigation). `HttpOnly; SameSite=Strict`, so scripts and other sites cannot use it.
pub const TOKEN_COOKIE: &str = "fabricwatch_token";

/// The bearer credential of a request: the `Authorization` header, else the
/// [`TOKEN_COOKIE`] cookie as `Bearer <value>`.
pub fn credential(headers: &header::HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == TOKEN_COOKIE && !v.is_empty())
        .map(|(_, v)| format!("Bearer {v}"))
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Denied> {
        api.access
            .caller(credential(&parts.headers).as_deref())
            .await
    }
}

/// The router of analytics' own API (merge it with `fabricwatch_common::serve::ops_router`):
/// ingest plus the read API and fleet view, the latter answering as `access` decides.
pub fn router(shared: Arc<Shared>, access: Arc<Access>) -> Router {
    Api::new(shared, access).router()
}

/// The read API's routes alone (also served on the `--ui-listen` listener).
pub fn read_router() -> Router<Api> {
    Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/{ns}/{name}", get(target))
        .route("/api/v1/targets/{ns}/{name}/nodes", get(nodes))
        .route(
            "/api/v1/targets/{ns}/{name}/nodes/{node}/history/{series}",
            get(history),
        )
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/events", get(events))
        .route("/api/v1/anomalies", get(anomalies))
}

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

async fn ingest(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response {
    let started = Instant::now();
    // Authenticate before reading the body: unauthenticated clients cost no parsing.
    let identity: Option<Identity> = match &shared.auth {
        None => None,
        Some(auth) => {
            let header = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let token = match bearer_token(header) {
                Ok(t) => t.to_string(),
                Err(e) => {
                    return fail(
                        &shared,
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        e.to_string(),
                    )
                }
            };
            match auth.authenticate(&token).await {
                Ok(id) => Some(id),
                Err(e @ AuthError::Unavailable(_)) => {
                    return fail(
                        &shared,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "auth_unavailable",
                        e.to_string(),
                    )
                }
                Err(e) => {
                    return fail(
                        &shared,
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        e.to_string(),
                    )
                }
            }
        }
    };
    let limit = shared.max_body_bytes;
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => {
            // `to_bytes` fails for an oversized body (length limit) or a broken connection.
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                fail(
                    &shared,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("report body exceeds {limit} bytes"),
                )
            } else {
                fail(
                    &shared,
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("could not read body: {e}"),
                )
            };
        }
    };
    let report: AgentReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            // Name an unknown schema version rather than the field it broke.
            let version = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("schemaVersion").and_then(serde_json::Value::as_u64));
            return match version {
                Some(v) if v != u64::from(REPORT_SCHEMA_VERSION) => unsupported(&shared, v),
                _ => fail(
                    &shared,
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    format!("invalid report JSON: {e}"),
                ),
            };
        }
    };
    if report.schema_version != REPORT_SCHEMA_VERSION {
        return unsupported(&shared, u64::from(report.schema_version));
    }
    if let Err(e) = validate(&report) {
        return fail(&shared, StatusCode::BAD_REQUEST, "invalid", e);
    }
    if let Some(id) = &identity {
        let pod_node = match (&id.service_account, &id.pod_name) {
            (Some((ns, _)), Some(pod)) => shared.catalog.pod_node(ns, pod, id.pod_uid.as_deref()),
            _ => None,
        };
        if let Err(e) = authorize(&shared.policy, id, &report, pod_node.as_deref()) {
            return fail(&shared, StatusCode::FORBIDDEN, "forbidden", e);
        }
    }
    let Some(config) = shared.catalog.target(&report.target) else {
        return fail(
            &shared,
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("MonitorTarget {} does not exist", report.target),
        );
    };
    let domain = config
        .topology_key
        .as_deref()
        .and_then(|k| shared.catalog.node_label(&report.node, k));
    let interval = config.interval_seconds;
    let now = Utc::now();
    let outcome = {
        let mut fleet = lock(&shared.fleet);
        if fleet.config(&report.target) != Some(&config) {
            fleet.configure(report.target.clone(), config);
        }
        let out = fleet.ingest(&report, domain, now);
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
    if let Some(anomaly) = outcome.new_anomaly {
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
    shared
        .metrics
        .reports
        .with_label_values(&["accepted"])
        .inc();
    shared.metrics.report_bytes.observe(body.len() as f64);
    shared
        .metrics
        .ingest_seconds
        .observe(started.elapsed().as_secs_f64());
    let interval_seconds = ((interval - report.interval_seconds).abs() > 1e-9).then_some(interval);
    Json(PushResponse {
        peers: outcome.peers,
        interval_seconds,
    })
    .into_response()
}

fn unsupported(shared: &Shared, v: u64) -> Response {
    fail(
        shared,
        StatusCode::BAD_REQUEST,
        "unsupported_schema",
        format!("unsupported schemaVersion {v}: this analytics accepts [{REPORT_SCHEMA_VERSION}]"),
    )
}

fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: format!("{what} not found"),
            reason: "not_found".into(),
        }),
    )
        .into_response()
}

/// Namespaces that hold targets, alerts or events: the candidates of a list's filter.
pub fn data_namespaces(shared: &Shared) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = lock(&shared.fleet)
        .targets()
        .map(|t| t.namespace.clone())
        .collect();
    out.extend(
        lock(&shared.evaluator)
            .snapshot()
            .into_iter()
            .map(|r| r.rule.namespace),
    );
    out.extend(
        lock(&shared.events)
            .latest(None, usize::MAX)
            .into_iter()
            .map(|e| e.object.namespace),
    );
    out
}

/// The caller's readable namespaces among those holding data.
///
/// # Errors
/// As [`Access::readable`].
pub async fn scope(shared: &Shared, access: &Access, caller: &Caller) -> Result<Scope, Denied> {
    if access.is_open() {
        return Ok(Scope::All);
    }
    access.readable(caller, data_namespaces(shared)).await
}

async fn targets(State(api): State<Api>, caller: Caller) -> Response {
    let scope = match scope(&api.shared, &api.access, &caller).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let now = Utc::now();
    let fleet = lock(&api.shared.fleet);
    let views: Vec<_> = fleet
        .targets()
        .filter(|t| scope.contains(&t.namespace))
        .filter_map(|t| fleet.view(t, now))
        .collect();
    Json(views).into_response()
}

async fn target(
    State(api): State<Api>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(e) = api.access.require_read(&caller, &ns).await {
        return e.into_response();
    }
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    match lock(&api.shared.fleet).view(&t, Utc::now()) {
        Some(v) => Json(v).into_response(),
        None => not_found(format!("target {t}")),
    }
}

async fn nodes(
    State(api): State<Api>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Err(e) = api.access.require_read(&caller, &ns).await {
        return e.into_response();
    }
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    match lock(&api.shared.fleet).nodes(&t, Utc::now()) {
        Some(v) => Json(v).into_response(),
        None => not_found(format!("target {t}")),
    }
}

async fn history(
    State(api): State<Api>,
    caller: Caller,
    Path((ns, name, node, series)): Path<(String, String, String, String)>,
) -> Response {
    if let Err(e) = api.access.require_read(&caller, &ns).await {
        return e.into_response();
    }
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    match lock(&api.shared.fleet).history(&t, &node, &series) {
        Some(v) => Json(v).into_response(),
        None => not_found(format!(
            "series {series} of node {node} in target {t} (series: {:?})",
            crate::fleet::SERIES.map(|s| s.0)
        )),
    }
}

async fn alerts(State(api): State<Api>, caller: Caller) -> Response {
    let scope = match scope(&api.shared, &api.access, &caller).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let list: Vec<_> = lock(&api.shared.evaluator)
        .snapshot()
        .into_iter()
        .filter(|r| scope.contains(&r.rule.namespace))
        .collect();
    Json(list).into_response()
}

/// Query of `/api/v1/events`.
#[derive(Debug, Deserialize)]
struct EventQuery {
    namespace: Option<String>,
    name: Option<String>,
    limit: Option<usize>,
}

/// The scope a namespaced-or-not query may see: the asked namespace when given (403 when not
/// readable), else the caller's readable namespaces.
async fn query_scope(api: &Api, caller: &Caller, q: &EventQuery) -> Result<Scope, Denied> {
    match &q.namespace {
        Some(ns) => {
            api.access.require_read(caller, ns).await?;
            Ok(Scope::Only(BTreeSet::from([ns.clone()])))
        }
        None => scope(&api.shared, &api.access, caller).await,
    }
}

async fn events(State(api): State<Api>, caller: Caller, Query(q): Query<EventQuery>) -> Response {
    let scope = match query_scope(&api, &caller, &q).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let limit = q.limit.unwrap_or(100).min(1000);
    let object = match (q.namespace, q.name) {
        (Some(namespace), Some(name)) => Some(ObjectRef { namespace, name }),
        _ => None,
    };
    let list: Vec<_> = lock(&api.shared.events)
        .latest(object.as_ref(), usize::MAX)
        .into_iter()
        .filter(|e| scope.contains(&e.object.namespace))
        .take(limit)
        .collect();
    Json(list).into_response()
}

/// One entry of `/api/v1/anomalies`.
#[derive(Debug, Serialize)]
pub struct AnomalyEntry {
    /// Namespace of the MonitorTarget.
    pub namespace: String,
    /// Name of the MonitorTarget.
    pub target: String,
    /// The episode.
    #[serde(flatten)]
    pub record: crate::anomaly::log::AnomalyRecord,
}

/// Anomaly episodes of `object` (all targets when `None`) in `scope`, newest first, at most
/// `limit`.
pub fn anomaly_entries(
    shared: &Shared,
    object: Option<&ObjectRef>,
    scope: &Scope,
    limit: usize,
) -> Vec<AnomalyEntry> {
    lock(&shared.fleet)
        .anomalies(object, usize::MAX)
        .into_iter()
        .filter(|(t, _)| scope.contains(&t.namespace))
        .take(limit)
        .map(|(t, record)| AnomalyEntry {
            namespace: t.namespace,
            target: t.name,
            record,
        })
        .collect()
}

/// Same query as `/api/v1/events` (default limit 100, at most 1,000).
async fn anomalies(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Response {
    let scope = match query_scope(&api, &caller, &q).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let object = match (q.namespace.clone(), q.name.clone()) {
        (Some(namespace), Some(name)) => Some(ObjectRef { namespace, name }),
        _ => None,
    };
    let list = anomaly_entries(
        &api.shared,
        object.as_ref(),
        &scope,
        q.limit.unwrap_or(100).min(1000),
    );
    Json(list).into_response()
}

#[cfg(test)]
mod tests {
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
