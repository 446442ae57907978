//! Reconcilers: validate → build → apply → status, one module per kind.

pub mod ai_analysis;
pub mod alert_rule;
pub mod central;
pub mod monitor_target;
pub mod refs;

use kube::runtime::controller::Action;

/// What a successful reconcile concluded.
#[derive(Debug)]
pub enum Outcome {
    /// Spec valid, children (if any) applied; check again after the given action.
    Done(Action),
    /// Spec invalid: `Accepted=False` written; wait for a change of the object.
    Invalid,
    /// A reference does not resolve yet; check again after the given action.
    Unresolved(Action),
}

impl Outcome {
    /// The `result` label of `fabricwatch_controller_reconciles_total`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Self::Done(_) => "success",
            Self::Invalid => "invalid",
            Self::Unresolved(_) => "unresolved",
        }
    }

    /// The controller action.
    pub fn action(self) -> Action {
        match self {
            Self::Done(a) | Self::Unresolved(a) => a,
            Self::Invalid => Action::await_change(),
        }
    }
}
