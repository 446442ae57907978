//! AlertRule: validate, resolve references, optionally render the PrometheusRule twin, and
//! set `Accepted`.

use std::time::Duration;

use fabricwatch_crds::condition_types::ACCEPTED;
use fabricwatch_crds::AlertRule;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::refs::{self, Ref, RefKind};
use super::Outcome;
use crate::controller::apply::{self, apply_dynamic, delete_if_present};
use crate::controller::build::prometheus_rule;
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::status::{self, Cond};

/// Kind label in metrics.
pub const KIND: &str = "AlertRule";
/// Re-check period of unresolved references (Secrets are not watched).
pub const UNRESOLVED_RETRY: Duration = Duration::from_secs(60);

/// References of `rule` to check.
pub fn references(rule: &AlertRule) -> Vec<Ref> {
    let mut out = vec![Ref {
        path: "spec.targetRef".into(),
        kind: RefKind::MonitorTarget,
        name: rule.spec.target_ref.name.clone(),
    }];
    if let Some(a) = &rule.spec.analysis_ref {
        out.push(Ref {
            path: "spec.analysisRef".into(),
            kind: RefKind::AIAnalysis,
            name: a.name.clone(),
        });
    }
    for (path, name) in rule.spec.secret_refs() {
        out.push(Ref {
            path,
            kind: RefKind::Secret,
            name,
        });
    }
    out
}

/// Reconciles one AlertRule.
///
/// # Errors
/// [`Error`] when a lookup, the twin's apply or the status write fails.
pub async fn reconcile(rule: &AlertRule, ctx: &Context) -> Result<Outcome, Error> {
    if rule.meta().deletion_timestamp.is_some() {
        return Ok(Outcome::Done(Action::await_change()));
    }
    let ns = rule.namespace().unwrap_or_default();
    let (gen, conds) = rule
        .status
        .as_ref()
        .map(|s| (s.observed_generation, s.conditions.clone()))
        .unwrap_or_default();
    let write = |c: Cond| refs::write_accepted(rule, KIND, gen, &conds, c, ctx);

    let validation = rule.spec.validate();
    if validation.is_err() {
        write(status::accepted(&validation)).await?;
        return Ok(Outcome::Invalid);
    }
    let missing = refs::missing(&ctx.client, &ns, &references(rule)).await?;
    if let Some(c) = refs::unresolved(&missing) {
        write(c).await?;
        return Ok(Outcome::Unresolved(Action::requeue(UNRESOLVED_RETRY)));
    }

    let mut note = String::new();
    let wants_twin = rule
        .spec
        .prometheus_rule
        .as_ref()
        .is_some_and(|p| p.enabled);
    if ctx.apis.prometheus_rule() {
        let api = Api::<DynamicObject>::namespaced_with(
            ctx.client.clone(),
            &ns,
            &apply::prometheus_rule_resource(),
        );
        let twin = if wants_twin {
            prometheus_rule::build(rule)?
        } else {
            None
        };
        match twin {
            Some(obj) => apply_dynamic(&api, "PrometheusRule", &obj).await?,
            None => {
                if wants_twin {
                    note = format!(
                        "; no PrometheusRule twin: {} is computed by analytics, not exported by the agents",
                        rule.spec.metric.as_str()
                    );
                }
                let name = prometheus_rule::prometheus_rule_name(&rule.name_any());
                delete_if_present(&api, "PrometheusRule", &name).await?;
            }
        }
    } else if wants_twin {
        note = "; no PrometheusRule twin: the monitoring.coreos.com/v1 PrometheusRule API is not installed".into();
    }
    write(Cond::yes(
        ACCEPTED,
        "Valid",
        format!("the spec is valid and its references resolve{note}"),
    ))
    .await?;
    Ok(Outcome::Done(Action::requeue(ctx.settings.resync)))
}
