//! Reference checks of AlertRules and AIAnalyses (same-namespace objects and Secrets), and
//! the shared writer of their operator-owned status (`observedGeneration`, `Accepted`).
//!
//! Secrets are looked up by name through the metadata-only API: the controller never
//! receives, logs or stores their data.

use crate::controller::events::EventType;
use fabricwatch_common::status_patch::apply_status;
use fabricwatch_crds::condition_types::ACCEPTED;
use fabricwatch_crds::conditions;
use fabricwatch_crds::{
    AIAnalysis, AlertRule, Condition, MonitorTarget, Time, FIELD_MANAGER_OPERATOR,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::status::Cond;

/// Kind of a referenced object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// A MonitorTarget.
    MonitorTarget,
    /// An AlertRule.
    AlertRule,
    /// An AIAnalysis.
    AIAnalysis,
    /// A Secret (metadata only).
    Secret,
}

impl RefKind {
    /// Kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MonitorTarget => "MonitorTarget",
            Self::AlertRule => "AlertRule",
            Self::AIAnalysis => "AIAnalysis",
            Self::Secret => "Secret",
        }
    }

    /// `Accepted=False` reason when an object of this kind is missing.
    pub fn missing_reason(self) -> &'static str {
        match self {
            Self::MonitorTarget => "TargetNotFound",
            Self::AlertRule => "AlertRuleNotFound",
            Self::AIAnalysis => "AnalysisNotFound",
            Self::Secret => "SecretNotFound",
        }
    }
}

/// A reference to check: field path, kind, name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// Field path, e.g. `spec.targetRef`.
    pub path: String,
    /// Kind.
    pub kind: RefKind,
    /// Name in the object's namespace.
    pub name: String,
}

async fn exists<K>(client: &Client, ns: &str, name: &str) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .get_metadata_opt(name)
        .await?
        .is_some())
}

/// The references that do not resolve, in input order.
///
/// # Errors
/// [`Error::Read`] when a lookup fails for another reason than "not found".
pub async fn missing(client: &Client, ns: &str, refs: &[Ref]) -> Result<Vec<Ref>, Error> {
    let mut out = Vec::new();
    for r in refs {
        let found = match r.kind {
            RefKind::MonitorTarget => exists::<MonitorTarget>(client, ns, &r.name).await,
            RefKind::AlertRule => exists::<AlertRule>(client, ns, &r.name).await,
            RefKind::AIAnalysis => exists::<AIAnalysis>(client, ns, &r.name).await,
            RefKind::Secret => exists::<Secret>(client, ns, &r.name).await,
        }
        .map_err(|source| Error::Read {
            what: format!("{} {ns}/{}", r.kind.as_str(), r.name),
            source,
        })?;
        if !found {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// `Accepted=False` for unresolved references (pure).
pub fn unresolved(missing: &[Ref]) -> Option<Cond> {
    let first = missing.first()?;
    let list: Vec<String> = missing
        .iter()
        .map(|m| format!("{}: {} {:?} not found", m.path, m.kind.as_str(), m.name))
        .collect();
    Some(Cond::no(
        ACCEPTED,
        first.kind.missing_reason(),
        format!(
            "{}; create it in this namespace (checked again every minute)",
            list.join("; ")
        ),
    ))
}

/// Writes `observedGeneration` and `Accepted` of an AlertRule or AIAnalysis when they
/// changed, with an Event when the condition's status or reason changed. `kind` labels the
/// status-write metric; the apply body names the kind from `K`.
///
/// # Errors
/// [`Error::Status`] when the write fails.
pub async fn write_accepted<K>(
    obj: &K,
    kind: &'static str,
    current_generation: Option<i64>,
    current_conditions: &[Condition],
    accepted: Cond,
    ctx: &Context,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let generation = obj.meta().generation;
    let desired = [accepted];
    if current_generation == generation
        && !conditions::differ(current_conditions, &desired, generation)
    {
        return Ok(());
    }
    let now = Time(super::monitor_target::jiff_now());
    let conditions = conditions::set_all(current_conditions, &desired, generation, &now);
    let status = json!({"observedGeneration": generation, "conditions": conditions});
    let api = Api::<K>::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    apply_status(&api, &obj.name_any(), FIELD_MANAGER_OPERATOR, &status)
        .await
        .map_err(Error::Status)?;
    ctx.metrics.status_writes.with_label_values(&[kind]).inc();
    let [c] = desired;
    let before = current_conditions.iter().find(|e| e.type_ == c.type_);
    if !before.is_some_and(|b| b.status == c.status && b.reason == c.reason) {
        let type_ = if c.status == "True" {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let reason = if c.status == "True" {
            "Accepted"
        } else {
            c.reason.as_str()
        };
        ctx.event(&obj.object_ref(&()), type_, reason, c.message)
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_names_the_first_kind_and_lists_all() {
        assert!(unresolved(&[]).is_none());
        let c = unresolved(&[
            Ref {
                path: "spec.targetRef".into(),
                kind: RefKind::MonitorTarget,
                name: "fabric".into(),
            },
            Ref {
                path: "spec.notify.channels[0].slack.webhookUrlSecretRef".into(),
                kind: RefKind::Secret,
                name: "slack".into(),
            },
        ])
        .expect("cond");
        assert_eq!(c.reason, "TargetNotFound");
        assert_eq!(c.status, "False");
        assert!(c.message.starts_with("spec.targetRef: MonitorTarget \"fabric\" not found; spec.notify.channels[0].slack.webhookUrlSecretRef: Secret \"slack\" not found"), "{}", c.message);
    }
}
