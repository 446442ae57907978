//! Start-up and the controllers' main loop: client, CRD check, ops server, shared context,
//! leader election, then one kube-runtime Controller per kind plus housekeeping, until
//! shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fabricwatch_common::serve::{ops_router, serve, Readiness};
use fabricwatch_crds::ai_analysis::AnalysisTargetKind;
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::runtime::controller::{Action, Controller, Error as ControllerError};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::args::Args;
use super::cache::children::{self, ChildIndexes, Ledger};
use super::cache::slim::Slim;
use super::cache::trim;
use super::context::{self, Context, OptionalApis};
use super::discovery::{check_crds, discover_monitoring};
use super::error::Error;
use super::events::{self, EventType};
use super::housekeeping::{housekeeping, Caches};
use super::leader::{self, Candidate};
use super::metrics::Metrics;
use super::reconcile::{ai_analysis, alert_rule, monitor_target, Outcome};
use super::watches::{indexed, metadata_child, primary, referencing, scoped, targeting};

/// Runs the controller until shutdown.
///
/// # Errors
/// Start-up failures (no cluster access, CRDs missing, port in use) and loss of leadership.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client =
        fabricwatch_common::kube_client::infer(fabricwatch_common::kube_client::PoolLimits {
            max_idle: args.api_max_idle_connections,
            idle_timeout: Duration::from_secs(args.api_idle_timeout_seconds),
        })
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    check_crds(&client).await?;

    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry).context("registering metrics")?;
    let ready = Readiness::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let shutdown = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server = tokio::spawn(serve(
        args.listen,
        ops_router(registry, ready.clone()),
        shutdown,
    ));
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        fabricwatch_common::shutdown::signal().await;
        let _ = on_signal.send(true);
    });
    ready.set(true);

    let identity = leader::identity(&args);
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: args.settings(),
        events: events::Publisher::new(
            client.clone(),
            fabricwatch_crds::FIELD_MANAGER_OPERATOR,
            identity.clone(),
        ),
        metrics,
        apis: OptionalApis::default(),
        backoff: context::Backoff::default(),
        children: ChildIndexes::default(),
        ledger: Ledger::default(),
    });

    let controllers = run_controllers(ctx.clone(), &args, stop_rx.clone());
    let result = if args.leader_election {
        Candidate::join(&client, &args, &identity)
            .await?
            .lead(&ctx.metrics, stop_rx.clone(), controllers)
            .await
    } else {
        controllers.await
    };
    ready.set(false);
    // Whatever ended the work (a signal, lost leadership, an error), the ops server stops
    // too, so the process exits and the kubelet restarts it as a standby; a replica that
    // lost its Lease must not linger unready.
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "ops server failed"),
        Err(e) => tracing::warn!(error = %e, "ops server task failed"),
    }
    result
}

/// The three Controllers and housekeeping, until `stop` turns true.
async fn run_controllers(
    ctx: Arc<Context>,
    args: &Args,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = ctx.client.clone();
    let shutdown = move || {
        let mut rx = stop.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    match discover_monitoring(&client).await {
        Ok((pm, pr)) => {
            ctx.apis.set(pm, pr);
        }
        Err(e) => {
            tracing::warn!(error = %e, "monitoring.coreos.com discovery failed; assuming absent")
        }
    }

    let ns = args.watch_namespace.as_deref();
    let owned =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=fabricwatch-operator");
    let config = kube::runtime::controller::Config::default().concurrency(args.concurrency);
    let (mt_all_tx, mt_all_rx) = mpsc::unbounded::<()>();
    let (ar_all_tx, ar_all_rx) = mpsc::unbounded::<()>();

    // MonitorTargets trigger on spec changes only: status writes (ours, analytics') change
    // nothing the reconcile reads. Children trigger on any change, deletions included, and
    // feed the indexes the reconcile compares against (see `cache::children`).
    let (mt_store, mt_trigger) = primary(&client, ns, trim::monitor_target);
    let mt_controller = Controller::for_stream(mt_trigger, mt_store.clone())
        .owns_stream(metadata_child::<ServiceAccount>(
            &client,
            ns,
            &owned,
            &ctx,
            |c| &c.service_accounts,
        ))
        .owns_stream(metadata_child::<ConfigMap>(
            &client,
            ns,
            &owned,
            &ctx,
            |c| &c.config_maps,
        ))
        .owns_stream(metadata_child::<Service>(&client, ns, &owned, &ctx, |c| {
            &c.services
        }))
        .owns_stream(indexed(
            watcher(scoped::<Slim<DaemonSet>>(&client, ns), owned.clone()),
            ctx.clone(),
            |c| &c.daemon_sets,
            children::observe_watched_daemon_set,
        ))
        .reconcile_all_on(mt_all_rx)
        .with_config(config.clone())
        .graceful_shutdown_on(shutdown());

    // AlertRules are reconciled again when the MonitorTarget they name changes.
    let (ar_store, ar_trigger) = primary(&client, ns, trim::alert_rule);
    let ar_controller = Controller::for_stream(ar_trigger, ar_store.clone())
        .watches(
            scoped::<Slim<MonitorTarget>>(&client, ns),
            watcher::Config::default(),
            {
                let store = ar_store.clone();
                move |mt: Slim<MonitorTarget>| targeting(&store, mt.namespace(), &mt.name_any())
            },
        )
        .reconcile_all_on(ar_all_rx)
        .with_config(config.clone())
        .graceful_shutdown_on(shutdown());

    // AIAnalyses are reconciled again when an object they reference changes.
    let (aia_store, aia_trigger) = primary(&client, ns, trim::ai_analysis);
    let aia_controller = Controller::for_stream(aia_trigger, aia_store.clone())
        .watches(
            scoped::<Slim<MonitorTarget>>(&client, ns),
            watcher::Config::default(),
            {
                let store = aia_store.clone();
                move |mt: Slim<MonitorTarget>| {
                    referencing(
                        &store,
                        mt.namespace(),
                        AnalysisTargetKind::MonitorTarget,
                        &mt.name_any(),
                    )
                }
            },
        )
        .watches(
            scoped::<Slim<AlertRule>>(&client, ns),
            watcher::Config::default(),
            {
                let store = aia_store.clone();
                move |ar: Slim<AlertRule>| {
                    referencing(
                        &store,
                        ar.namespace(),
                        AnalysisTargetKind::AlertRule,
                        &ar.name_any(),
                    )
                }
            },
        )
        .with_config(config)
        .graceful_shutdown_on(shutdown());

    let caches = Caches {
        monitor_targets: mt_store,
        alert_rules: ar_store,
        ai_analyses: aia_store,
    };
    tokio::join!(
        drive(mt_controller, ctx.clone()),
        drive(ar_controller, ctx.clone()),
        drive(aia_controller, ctx.clone()),
        housekeeping(
            ctx.clone(),
            args,
            caches,
            vec![mt_all_tx, ar_all_tx],
            shutdown()
        ),
    );
    tracing::info!("controllers stopped");
    Ok(())
}

/// A kind the controller reconciles: what [`drive`] needs to run its Controller.
trait Reconciled:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The `kind` label of metrics and logs, and the prefix of backoff keys.
    const KIND: &'static str;

    /// validate → build → apply → status for one object (see [`super::reconcile`]).
    fn reconcile<'a>(
        obj: &'a Self,
        ctx: &'a Context,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send + 'a;
}

impl Reconciled for MonitorTarget {
    const KIND: &'static str = monitor_target::KIND;
    fn reconcile<'a>(
        obj: &'a Self,
        ctx: &'a Context,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send + 'a {
        monitor_target::reconcile(obj, ctx)
    }
}

impl Reconciled for AlertRule {
    const KIND: &'static str = alert_rule::KIND;
    fn reconcile<'a>(
        obj: &'a Self,
        ctx: &'a Context,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send + 'a {
        alert_rule::reconcile(obj, ctx)
    }
}

impl Reconciled for AIAnalysis {
    const KIND: &'static str = ai_analysis::KIND;
    fn reconcile<'a>(
        obj: &'a Self,
        ctx: &'a Context,
    ) -> impl Future<Output = Result<Outcome, Error>> + Send + 'a {
        ai_analysis::reconcile(obj, ctx)
    }
}

/// Runs `controller` until its graceful shutdown: each reconcile is [`instrumented`],
/// failures retry after the object's backoff ([`error_policy`]), failed watches are
/// [`reported`](report).
async fn drive<K: Reconciled>(controller: Controller<K>, ctx: Arc<Context>) {
    controller
        .run(
            |obj, ctx: Arc<Context>| async move {
                instrumented(K::KIND, obj.as_ref(), &ctx, K::reconcile(&obj, &ctx)).await
            },
            error_policy(K::KIND),
            ctx.clone(),
        )
        .for_each(|r| {
            report(K::KIND, &ctx.metrics, r);
            futures::future::ready(())
        })
        .await
}

/// The backoff key of an object: `kind/namespace/name`.
fn key<K: Resource<DynamicType = ()>>(kind: &str, obj: &K) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Runs one reconcile with its metrics; a failure is also logged and published as a
/// Warning Event on the object, and a success resets its backoff.
async fn instrumented<K: Resource<DynamicType = ()>>(
    kind: &'static str,
    obj: &K,
    ctx: &Context,
    work: impl Future<Output = Result<Outcome, Error>>,
) -> Result<Action, Error> {
    let timer = ctx
        .metrics
        .duration
        .with_label_values(&[kind])
        .start_timer();
    let result = work.await;
    timer.observe_duration();
    match result {
        Ok(outcome) => {
            ctx.backoff.reset(&key(kind, obj));
            ctx.metrics
                .reconciles
                .with_label_values(&[kind, outcome.result_label()])
                .inc();
            Ok(outcome.action())
        }
        Err(e) => {
            ctx.metrics
                .reconciles
                .with_label_values(&[kind, "error"])
                .inc();
            ctx.metrics
                .errors
                .with_label_values(&[kind, e.category()])
                .inc();
            tracing::warn!(kind, object = %key(kind, obj), category = e.category(), error = %e, "reconcile failed");
            ctx.event(
                &obj.object_ref(&()),
                EventType::Warning,
                e.event_reason(),
                format!("{} ({}); retrying with backoff", e, e.category()),
            )
            .await;
            Err(e)
        }
    }
}

/// Requeues a failed object after its per-object backoff ([`context::Backoff`]).
fn error_policy<K: Resource<DynamicType = ()>>(
    kind: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, _e, ctx| Action::requeue(ctx.backoff.fail(&key(kind, obj.as_ref())))
}

/// Reports what a Controller's stream yields besides successful reconciles.
///
/// A failed list or watch of a trigger stream (`QueueError`) is logged at warn with its
/// whole cause chain and counted in `fabricwatch_controller_watch_errors_total`: while the
/// API server cannot be reached, no reconcile runs and nothing else would say why. kube
/// backs the streams off (0.8 s doubling to 30 s), which bounds the rate of these lines.
/// Failed reconciles were already logged by [`instrumented`]; the rest (e.g. an object gone
/// from the cache before its turn) are routine and logged at debug.
fn report<K: Resource>(
    kind: &'static str,
    metrics: &Metrics,
    r: Result<(ObjectRef<K>, Action), ControllerError<Error, watcher::Error>>,
) where
    K::DynamicType: Clone + std::fmt::Debug + Eq + std::hash::Hash,
{
    match r {
        Ok(_) => {}
        Err(ControllerError::QueueError(e)) => {
            metrics.watch_errors.with_label_values(&[kind]).inc();
            tracing::warn!(
                kind,
                error = %fabricwatch_common::error_chain(&e),
                "list or watch of the API server failed; changes are not seen until it succeeds (retrying with backoff)"
            );
        }
        Err(e) => tracing::debug!(kind, error = %e, "controller event"),
    }
}
