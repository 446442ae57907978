//! The read-only JSON API (`GET /api/v1/...`): targets, nodes, series history, alerts,
//! events and anomaly episodes, each answering only about the namespaces the caller may
//! read ([`Reader`] for lists, [`Access::require_read`] for one namespace).

use std::collections::BTreeSet;

use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use chrono::Utc;
use fabricwatch_proto::ObjectRef;
use serde::{Deserialize, Serialize};

use super::{not_found, Api, Reader};
use crate::{
    authz::{Access, Caller, Denied, Scope},
    state::{lock, Shared},
};

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

async fn targets(State(api): State<Api>, Reader { scope, .. }: Reader) -> Response {
    let now = Utc::now();
    let fleet = lock(&api.shared.fleet);
    let views: Vec<_> = fleet
        .targets()
        .filter(|t| scope.contains(&t.namespace))
        .filter_map(|t| fleet.view(t, now))
        .collect();
    Json(views).into_response()
}

/// One target's data as JSON, once the caller may read its namespace; 404 when analytics
/// does not know the target.
async fn target_json<T: serde::Serialize>(
    api: &Api,
    caller: &Caller,
    (namespace, name): (String, String),
    read: impl FnOnce(&crate::fleet::Fleet, &ObjectRef) -> Option<T>,
) -> Result<Response, Denied> {
    api.access.require_read(caller, &namespace).await?;
    let t = ObjectRef { namespace, name };
    Ok(match read(&lock(&api.shared.fleet), &t) {
        Some(v) => Json(v).into_response(),
        None => not_found(format!("target {t}")),
    })
}

async fn target(
    State(api): State<Api>,
    caller: Caller,
    Path(t): Path<(String, String)>,
) -> Result<Response, Denied> {
    target_json(&api, &caller, t, |f, t| f.view(t, Utc::now())).await
}

async fn nodes(
    State(api): State<Api>,
    caller: Caller,
    Path(t): Path<(String, String)>,
) -> Result<Response, Denied> {
    target_json(&api, &caller, t, |f, t| f.nodes(t, Utc::now())).await
}

async fn history(
    State(api): State<Api>,
    caller: Caller,
    Path((ns, name, node, series)): Path<(String, String, String, String)>,
) -> Result<Response, Denied> {
    api.access.require_read(&caller, &ns).await?;
    let t = ObjectRef {
        namespace: ns,
        name,
    };
    Ok(match lock(&api.shared.fleet).history(&t, &node, &series) {
        Some(v) => Json(v).into_response(),
        None => not_found(format!(
            "series {series} of node {node} in target {t} (series: {:?})",
            crate::fleet::SERIES.map(|s| s.0)
        )),
    })
}

async fn alerts(State(api): State<Api>, Reader { scope, .. }: Reader) -> Response {
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

async fn events(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Result<Response, Denied> {
    let scope = query_scope(&api, &caller, &q).await?;
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
    Ok(Json(list).into_response())
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
) -> Result<Response, Denied> {
    let scope = query_scope(&api, &caller, &q).await?;
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
    Ok(Json(list).into_response())
}
