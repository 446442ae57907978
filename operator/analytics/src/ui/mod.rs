//! The fleet view: server-rendered HTML pages at `/ui/` over the data analytics holds, with
//! the same access decisions as the read API ([`crate::authz`]).
//!
//! | route | page |
//! | --- | --- |
//! | `GET /ui/` | overview: every readable MonitorTarget with health, node counts, suspects, worst loss, RTT p99, RDMA ports down, firing alerts, last AI finding |
//! | `GET /ui/targets/{ns}/{name}` | mesh heatmaps (loss, RTT p99), suspects, problems, RDMA ports, anomalies, nodes |
//! | `GET /ui/targets/{ns}/{name}/nodes/{node}` | the node's history charts (units on the axes), findings, peers |
//! | `GET /ui/alerts` | AlertRules: state, value, since, firing series |
//! | `GET /ui/analyses` | AIAnalyses: findings with severity, evidence, recommendation; cost today |
//! | `POST /ui/alerts/{ns}/{name}/silence` | sets (`hours`, optional `node`) or lifts (`lift`) the AlertRule's `spec.silence`; needs `update` on it |
//! | `GET/POST /ui/login`, `POST /ui/logout` | stores / clears the bearer token in an `HttpOnly; SameSite=Strict` cookie |
//! | `GET /ui/style.css` | the one stylesheet |
//!
//! Templates ([minijinja], auto-escaped) and the stylesheet are compiled into the binary; no
//! script, font or image is fetched from anywhere. Pages refresh themselves with
//! `<meta http-equiv="refresh">` (no JavaScript needed), are laid out for 1280×800 and for
//! phone widths, and use plain links, buttons and tables, so the keyboard reaches everything.

pub mod chart;
pub mod heatmap;
pub mod silence;

use std::{collections::BTreeMap, sync::OnceLock};

use axum::{
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
    Form, Router,
};
use chrono::{DateTime, Utc};
use fabricwatch_crds::{ai_analysis::AnalysisTargetKind, AIAnalysis};
use fabricwatch_proto::ObjectRef;
use kube::ResourceExt;
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use crate::{
    alert::RuleState,
    authz::{Caller, Denied, Scope},
    fleet::TargetView,
    http::{anomaly_entries, scope, Api, TOKEN_COOKIE},
    state::lock,
};

/// Seconds between automatic page refreshes.
pub const REFRESH_SECONDS: u32 = 15;

/// The templates, embedded: name → source.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("target.html", include_str!("templates/target.html")),
    ("node.html", include_str!("templates/node.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("analyses.html", include_str!("templates/analyses.html")),
    ("message.html", include_str!("templates/message.html")),
];

/// The stylesheet, embedded.
pub const STYLE_CSS: &str = include_str!("static/style.css");

/// Bytes of every embedded asset (templates and stylesheet).
pub fn embedded_asset_bytes() -> usize {
    TEMPLATES.iter().map(|(_, s)| s.len()).sum::<usize>() + STYLE_CSS.len()
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            // The templates are part of the binary and covered by tests: a syntax error is a
            // build defect, reported on every page rather than as a panic.
            if let Err(e) = env.add_template(name, src) {
                tracing::error!("template {name}: {e}");
            }
        }
        env.add_filter("pct", |v: Option<f64>| {
            v.map_or("–".to_string(), |v| format!("{v:.2} %"))
        });
        env.add_filter("ms", |v: Option<f64>| {
            v.map_or("–".to_string(), |v| format!("{:.3} ms", v * 1000.0))
        });
        env.add_filter("num", |v: Option<f64>, digits: Option<usize>| {
            v.map_or("–".to_string(), |v| {
                format!("{v:.*}", digits.unwrap_or(1))
            })
        });
        env.add_filter("ago", |v: Option<String>| {
            match v
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            {
                Some(t) => ago(t.with_timezone(&Utc), Utc::now()),
                None => "–".to_string(),
            }
        });
        env
    })
}

/// A serializable value for a template (the JSON projections as they are).
fn ser<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Renders template `name` with `ctx`.
///
/// # Errors
/// The template's error, as text.
pub fn render(name: &str, ctx: Value) -> Result<String, String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("{e:#}"))
}

fn page(status: StatusCode, name: &str, ctx: Value) -> Response {
    match render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("rendering {name}: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("page {name} could not be rendered"),
            )
                .into_response()
        }
    }
}

fn message(status: StatusCode, title: &str, text: &str, login: bool) -> Response {
    page(
        status,
        "message.html",
        context! { title, text, login, refresh => 0 },
    )
}

/// A refusal as a page: 401 offers the sign-in form, 403 and 503 say why.
fn refused(d: Denied) -> Response {
    let login = matches!(d, Denied::Unauthenticated(_));
    let title = match d {
        Denied::Unauthenticated(_) => "Sign in",
        Denied::Forbidden(_) => "Not allowed",
        Denied::Unavailable(_) => "Cannot check access",
    };
    message(d.status(), title, d.message(), login)
}

/// Analytics' routes of the fleet view (merged into [`crate::http`]'s routers).
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview))
        .route("/ui/style.css", get(style))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", axum::routing::post(logout))
        .route("/ui/alerts", get(alerts))
        .route(
            "/ui/alerts/{ns}/{name}/silence",
            axum::routing::post(silence_rule),
        )
        .route("/ui/analyses", get(analyses))
        .route("/ui/targets/{ns}/{name}", get(target))
        .route("/ui/targets/{ns}/{name}/nodes/{node}", get(node))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

/// The firing rules of each target, and the latest AI finding per target.
#[derive(Debug, Default)]
struct Extras {
    firing: BTreeMap<ObjectRef, u32>,
    finding: BTreeMap<ObjectRef, FindingLine>,
}

/// An AI finding as the overview lists it.
#[derive(Clone, Debug, Serialize)]
struct FindingLine {
    analysis: String,
    severity: String,
    title: String,
    at: Option<String>,
}

fn analyses_in(api: &Api, scope: &Scope) -> Vec<std::sync::Arc<AIAnalysis>> {
    let mut list: Vec<_> = api
        .analyses
        .as_ref()
        .map(|s| s.state())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| scope.contains(&a.namespace().unwrap_or_default()))
        .collect();
    list.sort_by_key(|a| (a.namespace(), a.name_any()));
    list
}

fn extras(api: &Api, scope: &Scope) -> Extras {
    let mut out = Extras::default();
    for (spec, report) in lock(&api.shared.evaluator).rules_with_reports() {
        if report.state == Some(RuleState::Firing) {
            *out.firing.entry(spec.target.clone()).or_default() += 1;
        }
    }
    for a in analyses_in(api, scope) {
        let ns = a.namespace().unwrap_or_default();
        let Some(status) = &a.status else { continue };
        let Some(top) = status.findings.first() else {
            continue;
        };
        let line = FindingLine {
            analysis: a.name_any(),
            severity: format!("{:?}", top.severity),
            title: top.title.clone(),
            at: status.last_run_time.as_ref().map(|t| t.0.to_string()),
        };
        for r in &a.spec.target_refs {
            if r.kind == AnalysisTargetKind::MonitorTarget {
                out.finding.insert(
                    ObjectRef {
                        namespace: ns.clone(),
                        name: r.name.clone(),
                    },
                    line.clone(),
                );
            }
        }
    }
    out
}

/// One overview row: the target's `TargetView` (the JSON API's projection) plus firing
/// alerts and the latest AI finding.
#[derive(Debug, Serialize)]
struct Row {
    view: TargetView,
    firing: u32,
    finding: Option<FindingLine>,
}

async fn overview(State(api): State<Api>, caller: Result<Caller, Denied>) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    let scope = match scope(&api.shared, &api.access, &caller).await {
        Ok(s) => s,
        Err(d) => return refused(d),
    };
    match overview_html(&api, &scope, &caller) {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed("overview.html", &e),
    }
}

fn failed(name: &str, e: &str) -> Response {
    tracing::error!("rendering {name}: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("page {name} could not be rendered"),
    )
        .into_response()
}

/// The overview page of the targets in `scope`, as `caller` sees it.
///
/// # Errors
/// The template's error, as text.
pub fn overview_html(api: &Api, scope: &Scope, caller: &Caller) -> Result<String, String> {
    let now = Utc::now();
    let views: Vec<TargetView> = {
        let fleet = lock(&api.shared.fleet);
        fleet
            .targets()
            .filter(|t| scope.contains(&t.namespace))
            .filter_map(|t| fleet.view(t, now))
            .collect()
    };
    let mut ex = extras(api, scope);
    let rows: Vec<Row> = views
        .into_iter()
        .map(|view| Row {
            firing: ex.firing.get(&view.target).copied().unwrap_or(0),
            finding: ex.finding.remove(&view.target),
            view,
        })
        .collect();
    render(
        "overview.html",
        context! {
            title => "Fleet",
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            rows => ser(&rows),
        },
    )
}

/// One RDMA port row of the target page.
#[derive(Debug, Serialize)]
struct PortRow {
    node: String,
    device: String,
    port: u32,
    state: String,
    phys_state: String,
    down: bool,
    rate_gbps: Option<f64>,
    errors_per_minute: Option<f64>,
    pause_percent: Option<f64>,
    discards_per_minute: Option<f64>,
    ecn_marked_per_second: Option<f64>,
    cnp_sent_per_second: Option<f64>,
}

async fn target(
    State(api): State<Api>,
    caller: Result<Caller, Denied>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    if let Err(d) = api.access.require_read(&caller, &ns).await {
        return refused(d);
    }
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    match target_html(&api, &t, &caller) {
        Some(Ok(html)) => Html(html).into_response(),
        Some(Err(e)) => failed("target.html", &e),
        None => message(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("analytics holds no data of MonitorTarget {t}"),
            false,
        ),
    }
}

/// The page of target `t` (`None` when analytics holds no data of it); access is the
/// caller's business.
pub fn target_html(api: &Api, t: &ObjectRef, caller: &Caller) -> Option<Result<String, String>> {
    let now = Utc::now();
    let (view, nodes) = {
        let fleet = lock(&api.shared.fleet);
        (fleet.view(t, now)?, fleet.nodes(t, now)?)
    };
    let loss = heatmap::svg(
        &heatmap::matrix(&nodes, heatmap::Measure::Loss),
        heatmap::Measure::Loss,
    );
    let rtt = heatmap::svg(
        &heatmap::matrix(&nodes, heatmap::Measure::RttP99),
        heatmap::Measure::RttP99,
    );
    let ports: Vec<PortRow> = nodes
        .iter()
        .flat_map(|n| {
            n.latest.ports.iter().map(|p| PortRow {
                node: n.node.clone(),
                device: p.device.clone(),
                port: p.port,
                state: p.state.clone(),
                phys_state: p.phys_state.clone(),
                down: p.is_down(),
                rate_gbps: p.rate_gbps,
                errors_per_minute: p.errors_per_minute,
                pause_percent: p.congestion.pause_percent,
                discards_per_minute: p.congestion.discards_per_minute,
                ecn_marked_per_second: p.congestion.ecn_marked_per_second,
                cnp_sent_per_second: p.congestion.cnp_sent_per_second,
            })
        })
        .collect();
    let anomalies = anomaly_entries(&api.shared, Some(t), &Scope::All, 50);
    let events = lock(&api.shared.events).latest(Some(t), 20);
    let bands = |b: &[heatmap::Band]| b.iter().map(|b| (b.colour, b.label)).collect::<Vec<_>>();
    Some(render(
        "target.html",
        context! {
            title => format!("{}/{}", t.namespace, t.name),
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            view => ser(&view),
            nodes => ser(&nodes),
            heatmap_loss => Value::from_safe_string(loss),
            heatmap_rtt => Value::from_safe_string(rtt),
            loss_bands => ser(bands(&heatmap::LOSS_BANDS)),
            rtt_bands => ser(bands(&heatmap::RTT_BANDS)),
            ports => ser(&ports),
            anomalies => ser(&anomalies),
            events => ser(&events),
        },
    ))
}

/// One chart of the node page.
#[derive(Debug, Serialize)]
struct ChartBox {
    series: &'static str,
    title: &'static str,
    unit: &'static str,
    svg: Option<String>,
}

async fn node(
    State(api): State<Api>,
    caller: Result<Caller, Denied>,
    Path((ns, name, node)): Path<(String, String, String)>,
) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    if let Err(d) = api.access.require_read(&caller, &ns).await {
        return refused(d);
    }
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    let now = Utc::now();
    let (view, histories) = {
        let fleet = lock(&api.shared.fleet);
        let view = fleet
            .nodes(&t, now)
            .and_then(|ns| ns.into_iter().find(|n| n.node == node));
        let histories: Vec<_> = chart::UNITS
            .iter()
            .map(|u| (u, fleet.history(&t, &node, u.series).unwrap_or_default()))
            .collect();
        (view, histories)
    };
    let Some(view) = view else {
        return message(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("analytics holds no data of node {node} in MonitorTarget {t}"),
            false,
        );
    };
    let charts: Vec<ChartBox> = histories
        .iter()
        .map(|(u, samples)| ChartBox {
            series: u.series,
            title: u.title,
            unit: u.unit,
            svg: chart::line_chart(u, samples, now),
        })
        .collect();
    page(
        StatusCode::OK,
        "node.html",
        context! {
            title => format!("{} in {}/{}", node, t.namespace, t.name),
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            target => ser(&t),
            node => ser(&view),
            charts => ser(&charts),
        },
    )
}

/// One AlertRule of the alerts page.
#[derive(Debug, Serialize)]
struct AlertRow {
    rule: ObjectRef,
    target: ObjectRef,
    metric: serde_json::Value,
    op: String,
    threshold: f64,
    severity: serde_json::Value,
    report: crate::evaluator::RuleReport,
    /// `status.notifications` of the AlertRule (delivery per channel), when known.
    deliveries: serde_json::Value,
    /// `spec.silence.until` while it lasts.
    silenced_until: Option<String>,
    /// `spec.silence.node`.
    silenced_node: Option<String>,
    /// `spec.silence.by`.
    silenced_by: Option<String>,
}

async fn alerts(State(api): State<Api>, caller: Result<Caller, Denied>) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    let scope = match scope(&api.shared, &api.access, &caller).await {
        Ok(s) => s,
        Err(d) => return refused(d),
    };
    match alerts_html(&api, &scope, &caller) {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed("alerts.html", &e),
    }
}

/// The alerts page of the rules in `scope`: firing first, with per-channel deliveries when
/// the AlertRule store is there.
///
/// # Errors
/// The template's error, as text.
pub fn alerts_html(api: &Api, scope: &Scope, caller: &Caller) -> Result<String, String> {
    let deliveries = |rule: &ObjectRef| -> serde_json::Value {
        let Some(store) = &api.rules else {
            return serde_json::Value::Null;
        };
        store
            .get(&kube::runtime::reflector::ObjectRef::new(&rule.name).within(&rule.namespace))
            .and_then(|r| {
                r.status
                    .as_ref()
                    .map(|s| serde_json::json!(s.notifications))
            })
            .unwrap_or_default()
    };
    let mut rows: Vec<AlertRow> = lock(&api.shared.evaluator)
        .rules_with_reports()
        .into_iter()
        .filter(|(s, _)| scope.contains(&s.rule.namespace))
        .map(|(s, report)| AlertRow {
            deliveries: deliveries(&s.rule),
            silenced_until: s
                .silence
                .as_ref()
                .filter(|w| w.until > Utc::now())
                .map(|w| w.until.to_rfc3339()),
            silenced_node: s.silence.as_ref().and_then(|w| w.node.clone()),
            silenced_by: s.silence.as_ref().and_then(|w| w.by.clone()),
            rule: s.rule.clone(),
            target: s.target.clone(),
            metric: serde_json::to_value(s.metric).unwrap_or_default(),
            op: format!("{:?}", s.op),
            threshold: s.threshold,
            severity: serde_json::to_value(s.severity).unwrap_or_default(),
            report,
        })
        .collect();
    // Firing first, then pending, then the rest.
    rows.sort_by_key(|r| {
        let rank = match r.report.state {
            Some(RuleState::Firing) => 0,
            Some(RuleState::Pending) => 1,
            Some(RuleState::Suppressed) | Some(RuleState::Silenced) => 2,
            _ => 3,
        };
        (rank, r.rule.clone())
    });
    let invalid: Vec<_> = lock(&api.shared.evaluator)
        .snapshot()
        .into_iter()
        .filter(|r| r.error.is_some() && scope.contains(&r.rule.namespace))
        .collect();
    render(
        "alerts.html",
        context! {
            title => "Alerts",
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            rows => ser(&rows),
            invalid => ser(&invalid),
            can_silence => api.silencer.is_some(),
        },
    )
}

async fn analyses(State(api): State<Api>, caller: Result<Caller, Denied>) -> Response {
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    let scope = match scope(&api.shared, &api.access, &caller).await {
        Ok(s) => s,
        Err(d) => return refused(d),
    };
    match analyses_html(&api, &scope, &caller) {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed("analyses.html", &e),
    }
}

/// The AI analyses page of the AIAnalyses in `scope`.
///
/// # Errors
/// The template's error, as text.
pub fn analyses_html(api: &Api, scope: &Scope, caller: &Caller) -> Result<String, String> {
    let list: Vec<serde_json::Value> = analyses_in(api, scope)
        .iter()
        .map(|a| {
            serde_json::json!({
                "namespace": a.namespace(),
                "name": a.name_any(),
                "spec": a.spec,
                "status": a.status,
            })
        })
        .collect();
    render(
        "analyses.html",
        context! {
            title => "AI analyses",
            refresh => REFRESH_SECONDS,
            user => caller.name(),
            signed_in => matches!(caller, Caller::User(_)),
            available => api.analyses.is_some(),
            analyses => ser(&list),
        },
    )
}

/// The silence form's body: `hours` (0 < h ≤ [`silence::MAX_HOURS`]) and optional `node`, or
/// `lift` to remove the silence.
#[derive(Debug, Deserialize)]
struct SilenceForm {
    hours: Option<f64>,
    node: Option<String>,
    lift: Option<String>,
}

async fn silence_rule(
    State(api): State<Api>,
    caller: Result<Caller, Denied>,
    headers: header::HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    Form(f): Form<SilenceForm>,
) -> Response {
    // A form posted by another site (the loopback listener has no cookie to protect it).
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none")
    {
        return message(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "The silence form must be sent from the fleet view itself.",
            false,
        );
    }
    let caller = match caller {
        Ok(c) => c,
        Err(d) => return refused(d),
    };
    let what = crate::authz::Attributes {
        verb: "update".into(),
        resource: "alertrules".into(),
        namespace: Some(ns.clone()),
        name: Some(name.clone()),
    };
    if let Err(d) = api.access.require(&caller, &what).await {
        return refused(d);
    }
    let Some(silencer) = &api.silencer else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot silence",
            "Silencing writes the AlertRule: it needs the Kubernetes API (this analytics runs without one).",
            false,
        );
    };
    let rule = ObjectRef {
        namespace: ns,
        name,
    };
    let request = if f.lift.is_some() {
        None
    } else {
        let hours = f.hours.unwrap_or(0.0);
        if !(hours > 0.0 && hours <= silence::MAX_HOURS) {
            return message(
                StatusCode::BAD_REQUEST,
                "Cannot silence",
                &format!(
                    "hours must be more than 0 and at most {}",
                    silence::MAX_HOURS
                ),
                false,
            );
        }
        let node = f
            .node
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        if node.as_ref().is_some_and(|n| n.len() > 253) {
            return message(
                StatusCode::BAD_REQUEST,
                "Cannot silence",
                "node name too long",
                false,
            );
        }
        Some(silence::SilenceRequest {
            until: Utc::now() + chrono::Duration::seconds((hours * 3600.0).round() as i64),
            node,
            by: caller.name().chars().take(256).collect(),
        })
    };
    match silencer.set(&rule, request).await {
        Ok(()) => Redirect::to("/ui/alerts").into_response(),
        Err(e) => message(StatusCode::BAD_GATEWAY, "Cannot silence", &e, false),
    }
}

async fn login_form() -> Response {
    message(
        StatusCode::OK,
        "Sign in",
        "Paste a Kubernetes bearer token (e.g. from `kubectl create token NAME`). It is kept in an HttpOnly cookie for this site only.",
        true,
    )
}

/// The sign-in form's body.
#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// Characters a token may have to be stored in a cookie unquoted (RFC 6265 cookie-octet,
/// which JWTs' base64url and dots satisfy).
fn cookie_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 8192
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

async fn login(State(api): State<Api>, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim();
    if !cookie_safe(token) {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "That is not a bearer token.",
            true,
        );
    }
    if let Err(d) = api.access.caller(Some(&format!("Bearer {token}"))).await {
        return refused(d);
    }
    let mut r = Redirect::to("/ui/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout() -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "fabricwatch_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

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
            policy::AgentPolicy,
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
            metrics: Metrics::new().expect("metrics"),
            auth: None,
            policy: AgentPolicy::default(),
            catalog: Arc::new(OpenCatalog),
            max_body_bytes: 1024,
            triggers: None,
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
        }
        let api = api.with_silencer(Some(Arc::new(Noop)));
        let html = alerts_html(&api, &Scope::All, &Caller::Trusted).expect("render");
        assert!(
            html.contains(r#"action="/ui/alerts/ns/loss/silence""#)
                && html.contains(">Silence</button>"),
            "{html}"
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
            evaluator::Evaluator,
            fleet::{Fleet, Settings},
            metrics::Metrics,
            policy::AgentPolicy,
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
            evaluator: Mutex::new(Evaluator::default()),
            events: Mutex::new(EventLog::new(10)),
            metrics: Metrics::new().expect("metrics"),
            auth: None,
            policy: AgentPolicy::default(),
            catalog: Arc::new(OpenCatalog),
            max_body_bytes: 1024,
            triggers: None,
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
}
