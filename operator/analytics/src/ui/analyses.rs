//! The AI analyses page (`GET /ui/analyses`): every readable AIAnalysis with its findings
//! (severity, evidence, recommendation) and the cost of the day.

use axum::{extract::State, http::StatusCode, response::Response};
use kube::ResourceExt;
use minijinja::context;

use super::{
    overview::analyses_in,
    render::{render, respond, ser, Viewer, REFRESH_SECONDS},
};
use crate::{
    authz::{Caller, Scope},
    http::{Api, Reader},
};

pub(super) async fn analyses(
    State(api): State<Api>,
    Viewer(Reader { caller, scope }): Viewer<Reader>,
) -> Response {
    respond(
        StatusCode::OK,
        "analyses.html",
        analyses_html(&api, &scope, &caller),
    )
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
