//! The fleet view's silence action: `POST /ui/alerts/{ns}/{name}/silence` sets or lifts an
//! AlertRule's `spec.silence` on behalf of a caller who may `update` that AlertRule
//! (SubjectAccessReview), recording the caller's name in `spec.silence.by`.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use fabricwatch_proto::ObjectRef;

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

/// A boxed future, so [`RuleSilencer`] is object-safe.
pub type SilenceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Writes `spec.silence` of an AlertRule (`None` removes it).
pub trait RuleSilencer: Send + Sync {
    /// Sets (or with `None` lifts) the silence of `rule`.
    fn set<'a>(&'a self, rule: &'a ObjectRef, silence: Option<SilenceRequest>)
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

impl RuleSilencer for KubeSilencer {
    fn set<'a>(
        &'a self,
        rule: &'a ObjectRef,
        silence: Option<SilenceRequest>,
    ) -> SilenceFuture<'a> {
        Box::pin(async move {
            let api: kube::Api<fabricwatch_crds::AlertRule> =
                kube::Api::namespaced(self.client.clone(), &rule.namespace);
            api.patch(
                &rule.name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch(silence.as_ref())),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("patching AlertRule {rule}: {e}"))
        })
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
