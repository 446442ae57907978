//! AIAnalysis: validate, resolve references, set `Accepted`.

use fabricwatch_crds::ai_analysis::AnalysisTargetKind;
use fabricwatch_crds::condition_types::ACCEPTED;
use fabricwatch_crds::AIAnalysis;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::refs::{self, Ref, RefKind};
use super::Outcome;
use crate::controller::context::Context;
use crate::controller::error::Error;
use crate::controller::status::{self, Cond};

/// Kind label in metrics.
pub const KIND: &str = "AIAnalysis";

/// References of `aia` to check.
pub fn references(aia: &AIAnalysis) -> Vec<Ref> {
    let mut out: Vec<Ref> = aia
        .spec
        .target_refs
        .iter()
        .enumerate()
        .map(|(i, r)| Ref {
            path: format!("spec.targetRefs[{i}]"),
            kind: match r.kind {
                AnalysisTargetKind::MonitorTarget => RefKind::MonitorTarget,
                AnalysisTargetKind::AlertRule => RefKind::AlertRule,
            },
            name: r.name.clone(),
        })
        .collect();
    for (path, name) in aia.spec.secret_refs() {
        out.push(Ref {
            path,
            kind: RefKind::Secret,
            name,
        });
    }
    out
}

/// Reconciles one AIAnalysis.
///
/// # Errors
/// [`Error`] when a lookup or the status write fails.
pub async fn reconcile(aia: &AIAnalysis, ctx: &Context) -> Result<Outcome, Error> {
    if aia.meta().deletion_timestamp.is_some() {
        return Ok(Outcome::Done(Action::await_change()));
    }
    let ns = aia.namespace().unwrap_or_default();
    let (gen, conds) = aia
        .status
        .as_ref()
        .map(|s| (s.observed_generation, s.conditions.clone()))
        .unwrap_or_default();
    let write = |c: Cond| refs::write_accepted(aia, KIND, gen, &conds, c, ctx);
    let validation = aia.spec.validate();
    if validation.is_err() {
        write(status::accepted(&validation)).await?;
        return Ok(Outcome::Invalid);
    }
    let missing = refs::missing(&ctx.client, &ns, &references(aia)).await?;
    if let Some(c) = refs::unresolved(&missing) {
        write(c).await?;
        return Ok(Outcome::Unresolved(Action::requeue(
            super::alert_rule::UNRESOLVED_RETRY,
        )));
    }
    write(Cond::yes(
        ACCEPTED,
        "Valid",
        "the spec is valid and its references resolve",
    ))
    .await?;
    Ok(Outcome::Done(Action::requeue(ctx.settings.resync)))
}
