//! The fleet view's alert actions, on behalf of a caller who may `update` the AlertRule
//! (SubjectAccessReview), recording the caller's name in the spec (`by`):
//! `POST /ui/alerts/{ns}/{name}/silence` sets or lifts `spec.silence`, and
//! `POST /ui/alerts/{ns}/{name}/acknowledge` sets or lifts `spec.acknowledge`.

use std::{future::Future, pin::Pin};

use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use chrono::{DateTime, Utc};
use fabricwatch_proto::ObjectRef;
use serde::Deserialize;

use super::render::{message, Refused};
use crate::{
    authz::{Caller, Denied},
    http::Api,
};

/// A silence to write: until when, optionally one node, and who.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceRequest {
    /// End of the silence.
    pub until: DateTime<Utc>,
    /// One node only.
    pub node: Option<String>,
    /// Who (the signed-in user).
    pub by: String,
}

/// An acknowledgement to write: who (the signed-in user); it covers what fires at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRequest {
    /// When (now).
    pub at: DateTime<Utc>,
    /// Who (the signed-in user).
    pub by: String,
}

/// A boxed future, so [`RuleSilencer`] is object-safe.
pub type SilenceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Writes the fleet view's actions into an AlertRule's spec: `spec.silence` and
/// `spec.acknowledge` (`None` removes them).
pub trait RuleSilencer: Send + Sync {
    /// Sets (or with `None` lifts) the silence of `rule`.
    fn set<'a>(&'a self, rule: &'a ObjectRef, silence: Option<SilenceRequest>)
        -> SilenceFuture<'a>;
    /// Sets (or with `None` lifts) the acknowledgement of `rule`.
    fn acknowledge<'a>(&'a self, rule: &'a ObjectRef, ack: Option<AckRequest>)
        -> SilenceFuture<'a>;
}

/// Longest silence the fleet view sets: one week (longer ones belong in the spec, reviewed).
pub const MAX_HOURS: f64 = 168.0;

/// The merge patch of `spec.silence`.
pub fn patch(silence: Option<&SilenceRequest>) -> serde_json::Value {
    match silence {
        None => serde_json::json!({"spec": {"silence": null}}),
        Some(s) => {
            let mut w = serde_json::json!({
                "until": s.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "by": s.by,
            });
            if let Some(n) = &s.node {
                w["node"] = serde_json::json!(n);
            }
            serde_json::json!({"spec": {"silence": w}})
        }
    }
}

/// The merge patch of `spec.acknowledge` (`notifyResolved` keeps its default, true).
pub fn ack_patch(ack: Option<&AckRequest>) -> serde_json::Value {
    match ack {
        None => serde_json::json!({"spec": {"acknowledge": null}}),
        Some(a) => serde_json::json!({"spec": {"acknowledge": {
            "at": a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "by": a.by,
        }}}),
    }
}

/// [`RuleSilencer`] patching the AlertRule through the API server (analytics' ServiceAccount
/// needs `patch` on `alertrules`; the caller's own `update` permission was checked first).
pub struct KubeSilencer {
    client: kube::Client,
}

impl KubeSilencer {
    /// Patches with `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

impl KubeSilencer {
    fn merge<'a>(&'a self, rule: &'a ObjectRef, patch: serde_json::Value) -> SilenceFuture<'a> {
        Box::pin(async move {
            let api: kube::Api<fabricwatch_crds::AlertRule> =
                kube::Api::namespaced(self.client.clone(), &rule.namespace);
            api.patch(
                &rule.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("patching AlertRule {rule}: {e}"))
        })
    }
}

impl RuleSilencer for KubeSilencer {
    fn set<'a>(
        &'a self,
        rule: &'a ObjectRef,
        silence: Option<SilenceRequest>,
    ) -> SilenceFuture<'a> {
        self.merge(rule, patch(silence.as_ref()))
    }

    fn acknowledge<'a>(
        &'a self,
        rule: &'a ObjectRef,
        ack: Option<AckRequest>,
    ) -> SilenceFuture<'a> {
        self.merge(rule, ack_patch(ack.as_ref()))
    }
}

/// The silence form's body: `hours` (0 < h ≤ [`MAX_HOURS`]) and optional `node`, or
/// `lift` to remove the silence.
#[derive(Debug, Deserialize)]
pub(super) struct SilenceForm {
    hours: Option<f64>,
    node: Option<String>,
    lift: Option<String>,
}

/// What an action on an AlertRule may proceed with: the caller, the writer and the rule.
struct Permitted {
    caller: Caller,
    writer: std::sync::Arc<dyn RuleSilencer>,
    rule: ObjectRef,
}

/// The checks every action form passes, in this order: sent from the fleet view itself, a
/// signed-in caller, `update` on the AlertRule, and a Kubernetes API to write to. `action`
/// names it in the refusals ("silence", "acknowledge").
async fn permit(
    api: &Api,
    caller: Result<Caller, Denied>,
    headers: &header::HeaderMap,
    (ns, name): (String, String),
    action: &str,
) -> Result<Permitted, Response> {
    // A form posted by another site (the loopback listener has no cookie to protect it).
    // Checked before the caller's refusal (hence no `Viewer` here): a cross-site post is
    // told so even without a token.
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none")
    {
        return Err(message(
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("The {action} form must be sent from the fleet view itself."),
            false,
        ));
    }
    let caller = caller.map_err(|d| Refused(d).into_response())?;
    let what = crate::authz::Attributes {
        verb: "update".into(),
        resource: "alertrules".into(),
        namespace: Some(ns.clone()),
        name: Some(name.clone()),
    };
    if let Err(d) = api.access.require(&caller, &what).await {
        return Err(Refused(d).into_response());
    }
    let Some(writer) = api.silencer.clone() else {
        return Err(message(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("Cannot {action}"),
            "This action writes the AlertRule: it needs the Kubernetes API (this analytics runs without one).",
            false,
        ));
    };
    Ok(Permitted {
        caller,
        writer,
        rule: ObjectRef {
            namespace: ns,
            name,
        },
    })
}

/// The acknowledge form's body: empty to acknowledge what fires now, `lift` to remove it.
#[derive(Debug, Deserialize)]
pub(super) struct AckForm {
    lift: Option<String>,
}

pub(super) async fn acknowledge_rule(
    State(api): State<Api>,
    caller: Result<Caller, Denied>,
    headers: header::HeaderMap,
    Path(rule): Path<(String, String)>,
    Form(f): Form<AckForm>,
) -> Response {
    let p = match permit(&api, caller, &headers, rule, "acknowledge").await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let request = f.lift.is_none().then(|| AckRequest {
        at: Utc::now(),
        by: p.caller.name().chars().take(256).collect(),
    });
    match p.writer.acknowledge(&p.rule, request).await {
        Ok(()) => Redirect::to("/ui/alerts").into_response(),
        Err(e) => message(StatusCode::BAD_GATEWAY, "Cannot acknowledge", &e, false),
    }
}

pub(super) async fn silence_rule(
    State(api): State<Api>,
    caller: Result<Caller, Denied>,
    headers: header::HeaderMap,
    Path(rule): Path<(String, String)>,
    Form(f): Form<SilenceForm>,
) -> Response {
    let Permitted {
        caller,
        writer: silencer,
        rule,
    } = match permit(&api, caller, &headers, rule, "silence").await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let request = if f.lift.is_some() {
        None
    } else {
        let hours = f.hours.unwrap_or(0.0);
        if !(hours > 0.0 && hours <= MAX_HOURS) {
            return message(
                StatusCode::BAD_REQUEST,
                "Cannot silence",
                &format!("hours must be more than 0 and at most {}", MAX_HOURS),
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
        Some(SilenceRequest {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_set_and_lift() {
        let s = SilenceRequest {
            until: DateTime::parse_from_rfc3339("2026-12-06T20:00:00Z")
                .expect("t")
                .with_timezone(&Utc),
            node: Some("n3".into()),
            by: "alice".into(),
        };
        assert_eq!(
            patch(Some(&s)),
            serde_json::json!({"spec": {"silence": {"until": "2026-12-06T20:00:00Z", "by": "alice", "node": "n3"}}})
        );
        assert_eq!(patch(None), serde_json::json!({"spec": {"silence": null}}));
    }
}
