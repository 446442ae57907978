//! The alerts page (`GET /ui/alerts`): every readable AlertRule with its state, value,
//! since, firing series, per-channel deliveries, silence and acknowledgement.

use axum::{extract::State, http::StatusCode, response::Response};
use chrono::Utc;
use fabricwatch_proto::ObjectRef;
use minijinja::context;
use serde::Serialize;

use super::render::{render, respond, ser, Viewer, REFRESH_SECONDS};
use crate::{
    alert::RuleState,
    authz::{Caller, Scope},
    http::{Api, Reader},
    state::lock,
};

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
    /// `spec.acknowledge` is set.
    acknowledged: bool,
    /// `spec.acknowledge.by`.
    acknowledged_by: Option<String>,
}

pub(super) async fn alerts(
    State(api): State<Api>,
    Viewer(Reader { caller, scope }): Viewer<Reader>,
) -> Response {
    respond(
        StatusCode::OK,
        "alerts.html",
        alerts_html(&api, &scope, &caller),
    )
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
            acknowledged: s.acknowledge.is_some(),
            acknowledged_by: s.acknowledge.as_ref().and_then(|a| a.by.clone()),
            rule: s.rule.clone(),
            target: s.target.clone(),
            metric: serde_json::to_value(s.metric).unwrap_or_default(),
            op: format!("{:?}", s.op),
            threshold: s.threshold,
            severity: serde_json::Value::from(s.severity.as_pascal_str()),
            report,
        })
        .collect();
    // Firing first, then pending, then the rest.
    rows.sort_by_key(|r| {
        let rank = match r.report.state {
            Some(RuleState::Firing) => 0,
            Some(RuleState::Pending) => 1,
            Some(RuleState::Suppressed)
            | Some(RuleState::Silenced)
            | Some(RuleState::Acknowledged) => 2,
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
