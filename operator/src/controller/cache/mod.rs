//! What the controller keeps in memory of the objects it watches, and why so little.
//!
//! The controller watches its three kinds and the four kinds of agent children of every
//! MonitorTarget. kube's reflector caches would keep each object whole: managed fields,
//! kubectl's `last-applied-configuration`, the status that analytics, the notifier and the
//! AI workers write, Pod templates. At 1,000 targets that was most of the controller's
//! heap, and the allocator kept the peak of the start-up listing long after (BENCHMARKS.md,
//! controller RSS). The controller reads little of it, so each watch keeps only that:
//!
//! * [`trim`]: the caches of MonitorTargets, AlertRules and AIAnalyses drop managed fields,
//!   annotations and every part of the status the controller does not write, as each
//!   object arrives; the cache grows with the specs, not with what the other components
//!   report.
//! * [`slim`]: [`Slim<K>`](slim::Slim) parses a watched child (or a referenced object)
//!   down to name, owners, version and DaemonSet rollout counts, and lets serde skip the
//!   rest without allocating it.
//! * [`children`]: of each child only its version (and a DaemonSet's rollout counts) is
//!   kept, in a small index per kind, next to the ledger of the last applies; together
//!   they let a reconcile skip applying children that are already in place.

pub mod children;
pub mod slim;
pub mod trim;
