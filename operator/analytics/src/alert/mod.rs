//! AlertRule evaluation: a pure state machine per rule and series.
//!
//! A series is one instance of the metric ([`SeriesKey`]: a node, a node's port or a node's
//! peer for `perNode` rules; the whole target for `target` rules).
//! `Inactive → Pending` when the condition holds, `Pending → Firing` once it held for `for`,
//! `Firing → Inactive` once it has not held for `resolveFor` (flap damping in time).
//! A series that changed state `maxTransitions` times within `window` is *flapping*: its
//! notifications are held back and the rule shows `Suppressed` until it settles.
//! `cooldown` is the least time between two Firing notifications of the same series;
//! `repeatInterval` re-sends a still-firing series. During a maintenance window the rule is
//! `Suppressed`: evaluation goes on, but no Firing notification leaves; one that was held back
//! is sent when the window ends if the series still fires. A Resolved notification is sent
//! only for a series whose Firing was sent (also inside a window), so no channel is left with
//! an alert that never closes and none hears of an alert it never saw fire.
//!
//! | module | holds |
//! | --- | --- |
//! | `spec` | what a rule asks for: [`RuleSpec`], [`MaintenanceWindow`], [`SilenceWindow`] |
//! | `series` | what evaluation says: [`RuleState`], [`SeriesKey`], [`FiringSeries`], [`AlertEvent`], [`Evaluation`], [`Handling`] |
//! | `engine` | [`RuleEngine`]: the state machine and its evaluation |
//! | `notification` | [`RuleEngine::request`], [`fingerprint`], [`notification_id`], annotation [`render`]ing |

mod engine;
mod notification;
mod series;
mod spec;

pub use engine::RuleEngine;
pub use notification::{fingerprint, notification_id, render};
pub use series::{AlertEvent, Evaluation, FiringSeries, Handling, RuleState, SeriesKey};
pub use spec::{Acknowledgement, MaintenanceWindow, RuleSpec, SilenceWindow};

#[cfg(test)]
mod tests;
