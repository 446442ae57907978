//! What the leader does besides reconciling, on timers: re-checks which optional APIs exist
//! (and reconciles everything again when that changes), keeps the managed-object gauges,
//! forgets stale ledger entries, and re-applies the central workloads.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::Store;

use super::args::Args;
use super::context::Context;
use super::discovery::discover_monitoring;
use super::reconcile::{ai_analysis, alert_rule, central, monitor_target};

/// The caches of the three reconciled kinds, counted for `fabricwatch_controller_managed_objects`.
pub(super) struct Caches {
    /// MonitorTargets.
    pub monitor_targets: Store<MonitorTarget>,
    /// AlertRules.
    pub alert_rules: Store<AlertRule>,
    /// AIAnalyses.
    pub ai_analyses: Store<AIAnalysis>,
}

/// Runs until `stop` completes: every `--discovery-interval-seconds` (at least 5 s) the
/// ledger is pruned, the gauges set and monitoring.coreos.com re-discovered, each sender
/// of `reconcile_all` firing when its availability changed; every
/// `--central-interval-seconds` (at least 5 s) the central workloads are applied, unless
/// `--manage-central-workloads=false`.
pub(super) fn housekeeping(
    ctx: Arc<Context>,
    args: &Args,
    caches: Caches,
    reconcile_all: Vec<UnboundedSender<()>>,
    stop: impl Future<Output = ()>,
) -> impl Future<Output = ()> {
    let discovery_every = Duration::from_secs(args.discovery_interval_seconds.max(5));
    let central_every = Duration::from_secs(args.central_interval_seconds.max(5));
    let manage_central = args.manage_central_workloads;
    let owner = args.owner_deployment.clone();
    async move {
        let mut discovery = tokio::time::interval(discovery_every);
        let mut central_tick = tokio::time::interval(central_every);
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = discovery.tick() => {
                    ctx.ledger.prune(Instant::now());
                    count_managed(&ctx, &caches);
                    rediscover(&ctx, &reconcile_all).await;
                }
                _ = central_tick.tick(), if manage_central => {
                    ensure_central(&ctx, owner.as_deref()).await;
                }
            }
        }
    }
}

/// Sets `fabricwatch_controller_managed_objects` for the three kinds and the four child kinds.
fn count_managed(ctx: &Context, caches: &Caches) {
    let managed = &ctx.metrics.managed;
    managed
        .with_label_values(&[monitor_target::KIND])
        .set(caches.monitor_targets.state().len() as i64);
    for (kind, index) in [
        ("ServiceAccount", &ctx.children.service_accounts),
        ("ConfigMap", &ctx.children.config_maps),
        ("Service", &ctx.children.services),
        ("DaemonSet", &ctx.children.daemon_sets),
    ] {
        managed.with_label_values(&[kind]).set(index.count() as i64);
    }
    managed
        .with_label_values(&[alert_rule::KIND])
        .set(caches.alert_rules.state().len() as i64);
    managed
        .with_label_values(&[ai_analysis::KIND])
        .set(caches.ai_analyses.state().len() as i64);
}

/// Re-checks which monitoring.coreos.com kinds exist; when that changed, every object of
/// the kinds that build them (PodMonitors, PrometheusRules) is reconciled again.
async fn rediscover(ctx: &Context, reconcile_all: &[UnboundedSender<()>]) {
    match discover_monitoring(&ctx.client).await {
        Ok((pm, pr)) => {
            if ctx.apis.set(pm, pr) {
                tracing::info!(
                    podmonitors = pm,
                    prometheusrules = pr,
                    "monitoring.coreos.com availability changed"
                );
                for tx in reconcile_all {
                    let _ = tx.unbounded_send(());
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "monitoring.coreos.com discovery failed"),
    }
}

/// Applies the central workloads, counted and timed under the kind `Central`.
async fn ensure_central(ctx: &Context, owner: Option<&str>) {
    let metrics = &ctx.metrics;
    let timer = metrics
        .duration
        .with_label_values(&[central::KIND])
        .start_timer();
    let r = central::ensure(ctx, owner).await;
    timer.observe_duration();
    match r {
        Ok(()) => metrics
            .reconciles
            .with_label_values(&[central::KIND, "success"])
            .inc(),
        Err(e) => {
            metrics
                .reconciles
                .with_label_values(&[central::KIND, "error"])
                .inc();
            metrics
                .errors
                .with_label_values(&[central::KIND, e.category()])
                .inc();
            tracing::warn!(error = %e, category = e.category(), "cannot apply the central workloads");
        }
    }
}
