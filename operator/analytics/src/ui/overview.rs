//! The overview page (`GET /ui/`): every readable MonitorTarget with its health, firing
//! alerts and latest AI finding.

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode, response::Response};
use chrono::Utc;
use fabricwatch_crds::{ai_analysis::AnalysisTargetKind, AIAnalysis};
use fabricwatch_proto::ObjectRef;
use kube::ResourceExt;
use minijinja::context;
use serde::Serialize;

use super::render::{render, respond, ser, Viewer, REFRESH_SECONDS};
use crate::{
    alert::RuleState,
    authz::{Caller, Scope},
    fleet::TargetView,
    http::{Api, Reader},
    state::lock,
};

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

pub(super) fn analyses_in(api: &Api, scope: &Scope) -> Vec<std::sync::Arc<AIAnalysis>> {
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

pub(super) async fn overview(
    State(api): State<Api>,
    Viewer(Reader { caller, scope }): Viewer<Reader>,
) -> Response {
    respond(
        StatusCode::OK,
        "overview.html",
        overview_html(&api, &scope, &caller),
    )
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
