//! The `controller` subcommand: reconciles MonitorTargets, AlertRules and AIAnalyses, and keeps
//! the central analytics and notifier workloads in place. See the crate README.
//!
//! Start-up and the main loop:
//! * [`args`]: the flags ([`Args`]); [`run`](mod@run): [`run()`], i.e. start-up, ops
//!   server, leader election and the three Controllers (one generic driver for all three).
//! * [`discovery`]: the CRD check at start-up, and which optional monitoring.coreos.com
//!   kinds exist; [`leader`]: the Lease, only its holder reconciles.
//! * [`watches`]: what each kind's cache keeps, what triggers a reconcile, which objects a
//!   change of another maps to; [`housekeeping`]: the timers (rediscovery, gauges, central
//!   workloads).
//!
//! Reconciling:
//! * [`build`]: pure builders (spec → child objects); [`status`]: pure condition logic;
//!   [`names`]: names and labels; [`settings`]: what the builders need from the flags.
//! * [`reconcile`]: validate → build → apply → status, per kind.
//! * [`apply`], [`context`], [`error`], [`events`], [`metrics`]: the IO edge and shared state.
//! * [`cache`]: how little of the watched objects is kept in memory, and the ledger that
//!   skips applies of children already in place.

pub mod apply;
pub mod args;
pub mod build;
pub mod cache;
pub mod context;
pub mod discovery;
pub mod error;
pub mod events;
pub mod housekeeping;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod reconcile;
pub mod run;
pub mod settings;
pub mod status;
pub mod watches;

pub use args::Args;
pub use run::run;
