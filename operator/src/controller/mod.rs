//! The `controller` subcommand: reconciles MonitorTargets, AlertRules and AIAnalyses, and keeps
//! the central analytics and notifier workloads in place. See the crate README.
//!
//! * [`build`]: pure builders (spec → child objects); [`status`]: pure condition logic;
//!   [`names`]: names and labels; [`settings`]: what the builders need from the flags.
//! * [`reconcile`]: validate → build → apply → status, per kind.
//! * [`apply`], [`context`], [`error`], [`metrics`]: the IO edge and shared state.

pub mod apply;
pub mod build;
pub mod children;
pub mod context;
pub mod error;
pub mod events;
pub mod metrics;
pub mod names;
pub mod reconcile;
pub mod settings;
pub mod slim;
pub mod status;
pub mod trim;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use events::EventType;
use fabricwatch_common::serve::{ops_router, serve, Readiness};
use fabricwatch_crds::{AIAnalysis, AlertRule, MonitorTarget};
use futures::channel::mpsc;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{predicates, watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};

use context::{Context, OptionalApis};
use error::Error;
use reconcile::{ai_analysis, alert_rule, central, monitor_target, Outcome};
use settings::Settings;
use slim::Slim;

/// Command-line flags of `fabricwatch-controller` and `fabricwatch-operator controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve /metrics, /healthz and /readyz on.
    #[arg(
        long,
        env = "FABRICWATCH_CONTROLLER_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Namespace of the operator, its Lease and the central workloads.
    #[arg(long, env = "POD_NAMESPACE", default_value = "fabricwatch")]
    pub namespace: String,
    /// Default agent image (a MonitorTarget's spec.agent.image overrides it).
    #[arg(
        long,
        env = "FABRICWATCH_AGENT_IMAGE",
        default_value = "localhost/fabricwatch-agent:dev"
    )]
    pub agent_image: String,
    /// Default agent image pull policy: Always, IfNotPresent or Never.
    #[arg(long, env = "FABRICWATCH_AGENT_IMAGE_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub agent_image_pull_policy: String,
    /// Analytics URL written into agent configs; default: the analytics Service in --namespace.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_URL")]
    pub analytics_url: Option<String>,
    /// Audience of the agents' projected ServiceAccount tokens (analytics checks it).
    #[arg(
        long,
        env = "FABRICWATCH_TOKEN_AUDIENCE",
        default_value = "fabricwatch-analytics"
    )]
    pub token_audience: String,
    /// Image of the central workloads (normally the operator's own image).
    #[arg(
        long,
        env = "FABRICWATCH_OPERATOR_IMAGE",
        default_value = "localhost/fabricwatch-operator:dev"
    )]
    pub operator_image: String,
    /// Pull policy of the central workloads: Always, IfNotPresent or Never.
    #[arg(long, env = "FABRICWATCH_OPERATOR_IMAGE_PULL_POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"])]
    pub operator_image_pull_policy: String,
    /// Keep the analytics and notifier Deployments and Services in --namespace.
    #[arg(long, env = "FABRICWATCH_MANAGE_CENTRAL_WORKLOADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub manage_central_workloads: bool,
    /// The operator's own Deployment; when set, it owns the central workloads so that
    /// uninstalling the operator removes them.
    #[arg(long, env = "FABRICWATCH_OWNER_DEPLOYMENT")]
    pub owner_deployment: Option<String>,
    /// ServiceAccount of the analytics Deployment.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_SERVICE_ACCOUNT",
        default_value = "fabricwatch-analytics"
    )]
    pub analytics_service_account: String,
    /// ServiceAccount of the notifier Deployment.
    #[arg(
        long,
        env = "FABRICWATCH_NOTIFIER_SERVICE_ACCOUNT",
        default_value = "fabricwatch-notifier"
    )]
    pub notifier_service_account: String,
    /// Log format passed on to the central workloads: text or json.
    #[arg(long, env = "FABRICWATCH_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub workload_log_format: String,
    /// Elect a leader through a coordination.k8s.io Lease (only the leader reconciles).
    #[arg(long, env = "FABRICWATCH_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease in --namespace.
    #[arg(
        long,
        env = "FABRICWATCH_LEASE_NAME",
        default_value = "fabricwatch-operator"
    )]
    pub lease_name: String,
    /// Identity in the Lease; default: the Pod name (POD_NAME) or the host name plus pid.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration, seconds (a new leader takes over at most this long after a crash).
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// How often to re-check whether the monitoring.coreos.com API exists, seconds.
    #[arg(long, default_value_t = 60)]
    pub discovery_interval_seconds: u64,
    /// How often to re-apply the central workloads, seconds.
    #[arg(long, default_value_t = 60)]
    pub central_interval_seconds: u64,
    /// Watch only this namespace (for a namespaced install or tests); default: all namespaces.
    #[arg(long, env = "FABRICWATCH_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Reconciles run in parallel per kind. They wait on the API server, not on CPU; 64
    /// keeps 1,000 new targets converging at the API server's own write rate (BENCHMARKS.md).
    #[arg(long, default_value_t = 64)]
    pub concurrency: u16,
    /// Idle connections to the API server kept open after a burst; more are closed as
    /// their requests finish (watches keep their own connections).
    #[arg(long, default_value_t = 16)]
    pub api_max_idle_connections: usize,
    /// An idle API server connection unused this long is closed, seconds.
    #[arg(long, default_value_t = 30)]
    pub api_idle_timeout_seconds: u64,
    /// A converged object is reconciled again after this long without a trigger, seconds:
    /// children are re-applied where an edit may have gone unseen, references re-checked.
    #[arg(long, env = "FABRICWATCH_RESYNC_SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_seconds: u64,
}

impl Args {
    /// The builders' settings.
    pub fn settings(&self) -> Settings {
        Settings {
            agent_image: self.agent_image.clone(),
            agent_image_pull_policy: self.agent_image_pull_policy.clone(),
            analytics_url: self
                .analytics_url
                .clone()
                .unwrap_or_else(|| build::central::Component::Analytics.url(&self.namespace)),
            token_audience: self.token_audience.clone(),
            namespace: self.namespace.clone(),
            operator_image: self.operator_image.clone(),
            operator_image_pull_policy: self.operator_image_pull_policy.clone(),
            analytics_service_account: self.analytics_service_account.clone(),
            notifier_service_account: self.notifier_service_account.clone(),
            log_format: self.workload_log_format.clone(),
            resync: Duration::from_secs(self.resync_seconds),
        }
    }
}

/// The kinds the controller serves, by plural.
const PLURALS: [&str; 3] = ["monitortargets", "alertrules", "aianalyses"];

/// Fails with an actionable message when the fabricwatch.io CRDs are not installed.
///
/// # Errors
/// When the API group is missing or incomplete, or discovery fails.
pub async fn check_crds(client: &Client) -> anyhow::Result<()> {
    let hint = "install them with `kubectl apply -f crds/` (or the Helm chart's CRDs) and restart";
    let list = match client
        .list_api_group_resources(fabricwatch_crds::API_VERSION)
        .await
    {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            anyhow::bail!(
                "the {} API is not installed: {hint}",
                fabricwatch_crds::API_VERSION
            )
        }
        Err(e) => return Err(e).context("API discovery of fabricwatch.io failed"),
    };
    let missing: Vec<&str> = PLURALS
        .iter()
        .copied()
        .filter(|p| !list.resources.iter().any(|r| r.name == *p))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the {} API lacks {}: {hint}",
            fabricwatch_crds::API_VERSION,
            missing.join(", ")
        );
    }
    Ok(())
}

/// Which monitoring.coreos.com/v1 kinds exist: `(podmonitors, prometheusrules)`.
async fn discover_monitoring(client: &Client) -> Result<(bool, bool), kube::Error> {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(l) => Ok((
            l.resources.iter().any(|r| r.name == "podmonitors"),
            l.resources.iter().any(|r| r.name == "prometheusrules"),
        )),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((false, false)),
        Err(e) => Err(e),
    }
}

/// The cache and trigger of a reconciled kind. Objects are cached as `trim` leaves them
/// (see [`trim`]: no managed fields, annotations or other components' status), and trigger
/// a reconcile only when their generation changes: status writes (the controller's own,
/// analytics', the notifier's) change nothing the reconcilers read.
fn primary<K>(
    client: &Client,
    ns: Option<&str>,
    trim: fn(&mut K),
) -> (
    kube::runtime::reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = kube::runtime::reflector::store();
    let trigger = watcher(scoped::<K>(client, ns), watcher::Config::default())
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    (store, trigger)
}

/// A child watch that keeps its kind's index ([`children::ChildIndex`]) up to date (with
/// backoff on watch errors) and yields the children whose indexed view changed, deletions
/// included: the owners to reconcile.
fn indexed<K, S>(
    events: S,
    ctx: Arc<Context>,
    index: fn(&children::ChildIndexes) -> &children::ChildIndex,
    observe: fn(&K) -> children::Observed,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    events.default_backoff().filter_map(move |e| {
        let touched = match e {
            Ok(event) => index(&ctx.children).apply(event, observe).map(Ok),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(touched)
    })
}

/// A watch of an owned child kind reduced to its metadata ([`Slim`]), feeding its index
/// (only the `resourceVersion` is kept) and triggering the owners.
fn metadata_child<K>(
    client: &Client,
    ns: Option<&str>,
    owned: &watcher::Config,
    ctx: &Arc<Context>,
    index: fn(&children::ChildIndexes) -> &children::ChildIndex,
) -> impl futures::Stream<Item = Result<Slim<K>, watcher::Error>> + Send + 'static
where
    // Only `K`'s API path and kind are used: the objects are `Slim<K>`.
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + std::fmt::Debug
        + 'static,
{
    indexed(
        watcher(scoped::<Slim<K>>(client, ns), owned.clone()),
        ctx.clone(),
        index,
        children::observe_resource_version,
    )
}

/// An `Api` over all namespaces, or over `ns` only.
fn scoped<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn key<K: Resource<DynamicType = ()>>(kind: &str, obj: &K) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

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

fn error_policy<K: Resource<DynamicType = ()>>(
    kind: &'static str,
) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, _e, ctx| Action::requeue(ctx.backoff.fail(&key(kind, obj.as_ref())))
}

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
    let metrics = metrics::Metrics::new(&registry).context("registering metrics")?;
    let ready = Readiness::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
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
    tokio::spawn(async move {
        fabricwatch_common::shutdown::signal().await;
        let _ = stop_tx.send(true);
    });
    ready.set(true);

    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "fabricwatch-operator".into());
        format!("{host}-{}", std::process::id())
    });
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
        children: children::ChildIndexes::default(),
        ledger: children::Ledger::default(),
    });

    let result = if args.leader_election {
        let manager =
            kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
                .with_namespace(&args.namespace)
                .with_identity(&identity)
                .with_duration(args.lease_duration_seconds.max(5))
                .with_grace((args.lease_duration_seconds / 3).max(2))
                .with_field_manager(format!(
                    "{}-lease",
                    fabricwatch_crds::FIELD_MANAGER_OPERATOR
                ))
                .build()
                .await
                .context("cannot set up leader election")?;
        let (mut leader, task) = manager.watch().await;
        tracing::info!(identity, lease = %args.lease_name, "waiting for leadership");
        let mut stop = stop_rx.clone();
        let became_leader = tokio::select! {
            r = leader.wait_for(|l| *l) => r.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        let result = if became_leader {
            tracing::info!(identity, "leading");
            ctx.metrics.leader.set(1);
            let mut stop = stop_rx.clone();
            tokio::select! {
                r = run_controllers(ctx.clone(), &args, stop_rx.clone()) => r,
                lost = leader.wait_for(|l| !*l) => {
                    // Another replica may already be writing: stop at once and let the
                    // kubelet restart this one as a standby.
                    ctx.metrics.leader.set(0);
                    match lost {
                        Ok(_) => Err(anyhow::anyhow!("lost leadership of Lease {}/{}", args.namespace, args.lease_name)),
                        Err(_) => Err(anyhow::anyhow!("leader election stopped")),
                    }
                }
                _ = stop.wait_for(|s| *s) => Ok(()),
            }
        } else {
            Ok(())
        };
        drop(leader);
        // Releasing the Lease lets a standby take over without waiting for expiry.
        match task.await {
            Ok(Ok(_)) => tracing::info!("lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
        result
    } else {
        run_controllers(ctx.clone(), &args, stop_rx.clone()).await
    };
    ready.set(false);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "ops server failed"),
        Err(e) => tracing::warn!(error = %e, "ops server task failed"),
    }
    result
}

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
    let (mt_all_tx, mt_all_rx) = mpsc::unbounded::<()>();
    let (ar_all_tx, ar_all_rx) = mpsc::unbounded::<()>();

    // MonitorTargets trigger on spec changes only: status writes (ours, analytics') change
    // nothing the reconcile reads. Children trigger on any change, deletions included, and
    // feed the indexes the reconcile compares against (see `children`).
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
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(shutdown());

    let (ar_store, ar_trigger) = primary(&client, ns, trim::alert_rule);
    let ar_controller = Controller::for_stream(ar_trigger, ar_store.clone())
        .watches(
            scoped::<Slim<MonitorTarget>>(&client, ns),
            watcher::Config::default(),
            {
                let store = ar_store.clone();
                move |mt: Slim<MonitorTarget>| {
                    let ns = mt.namespace();
                    let name = mt.name_any();
                    store
                        .state()
                        .into_iter()
                        .filter(|r| r.namespace() == ns && r.spec.target_ref.name == name)
                        .map(|r| ObjectRef::from_obj(r.as_ref()))
                        .collect::<Vec<_>>()
                }
            },
        )
        .reconcile_all_on(ar_all_rx)
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(shutdown());

    let (aia_store, aia_trigger) = primary(&client, ns, trim::ai_analysis);
    let aia_controller = Controller::for_stream(aia_trigger, aia_store.clone())
        .watches(
            scoped::<Slim<MonitorTarget>>(&client, ns),
            watcher::Config::default(),
            {
                let store = aia_store.clone();
                move |mt: Slim<MonitorTarget>| {
                    referencing(&store, mt.namespace(), "MonitorTarget", &mt.name_any())
                }
            },
        )
        .watches(
            scoped::<Slim<AlertRule>>(&client, ns),
            watcher::Config::default(),
            {
                let store = aia_store.clone();
                move |ar: Slim<AlertRule>| {
                    referencing(&store, ar.namespace(), "AlertRule", &ar.name_any())
                }
            },
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(shutdown());

    let mt_run = mt_controller
        .run(
            |obj, ctx: Arc<Context>| async move {
                instrumented(
                    monitor_target::KIND,
                    obj.as_ref(),
                    &ctx,
                    monitor_target::reconcile(&obj, &ctx),
                )
                .await
            },
            error_policy(monitor_target::KIND),
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(r) });
    let ar_run = ar_controller
        .run(
            |obj, ctx: Arc<Context>| async move {
                instrumented(
                    alert_rule::KIND,
                    obj.as_ref(),
                    &ctx,
                    alert_rule::reconcile(&obj, &ctx),
                )
                .await
            },
            error_policy(alert_rule::KIND),
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(r) });
    let aia_run = aia_controller
        .run(
            |obj, ctx: Arc<Context>| async move {
                instrumented(
                    ai_analysis::KIND,
                    obj.as_ref(),
                    &ctx,
                    ai_analysis::reconcile(&obj, &ctx),
                )
                .await
            },
            error_policy(ai_analysis::KIND),
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(r) });

    // Discovery, managed-object gauges and the central workloads, until shutdown.
    let housekeeping = {
        let ctx = ctx.clone();
        let discovery_every = Duration::from_secs(args.discovery_interval_seconds.max(5));
        let central_every = Duration::from_secs(args.central_interval_seconds.max(5));
        let manage_central = args.manage_central_workloads;
        let owner = args.owner_deployment.clone();
        let stop = shutdown();
        async move {
            let mut discovery = tokio::time::interval(discovery_every);
            let mut central_tick = tokio::time::interval(central_every);
            let mut stop = std::pin::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = discovery.tick() => {
                        ctx.ledger.prune(std::time::Instant::now());
                        ctx.metrics.managed.with_label_values(&[monitor_target::KIND]).set(mt_store.state().len() as i64);
                        for (kind, index) in [
                            ("ServiceAccount", &ctx.children.service_accounts),
                            ("ConfigMap", &ctx.children.config_maps),
                            ("Service", &ctx.children.services),
                            ("DaemonSet", &ctx.children.daemon_sets),
                        ] {
                            ctx.metrics.managed.with_label_values(&[kind]).set(index.count() as i64);
                        }
                        ctx.metrics.managed.with_label_values(&[alert_rule::KIND]).set(ar_store.state().len() as i64);
                        ctx.metrics.managed.with_label_values(&[ai_analysis::KIND]).set(aia_store.state().len() as i64);
                        match discover_monitoring(&ctx.client).await {
                            Ok((pm, pr)) => if ctx.apis.set(pm, pr) {
                                tracing::info!(podmonitors = pm, prometheusrules = pr, "monitoring.coreos.com availability changed");
                                let _ = mt_all_tx.unbounded_send(());
                                let _ = ar_all_tx.unbounded_send(());
                            },
                            Err(e) => tracing::warn!(error = %e, "monitoring.coreos.com discovery failed"),
                        }
                    }
                    _ = central_tick.tick(), if manage_central => {
                        let timer = ctx.metrics.duration.with_label_values(&[central::KIND]).start_timer();
                        let r = central::ensure(&ctx, owner.as_deref()).await;
                        timer.observe_duration();
                        match r {
                            Ok(()) => ctx.metrics.reconciles.with_label_values(&[central::KIND, "success"]).inc(),
                            Err(e) => {
                                ctx.metrics.reconciles.with_label_values(&[central::KIND, "error"]).inc();
                                ctx.metrics.errors.with_label_values(&[central::KIND, e.category()]).inc();
                                tracing::warn!(error = %e, category = e.category(), "cannot apply the central workloads");
                            }
                        }
                    }
                }
            }
        }
    };
    tokio::join!(mt_run, ar_run, aia_run, housekeeping);
    tracing::info!("controllers stopped");
    Ok(())
}

fn referencing(
    store: &kube::runtime::reflector::Store<AIAnalysis>,
    ns: Option<String>,
    kind: &str,
    name: &str,
) -> Vec<ObjectRef<AIAnalysis>> {
    store
        .state()
        .into_iter()
        .filter(|a| {
            a.namespace() == ns
                && a.spec
                    .target_refs
                    .iter()
                    .any(|r| r.name == name && format!("{:?}", r.kind) == kind)
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

fn log_result<K: Resource, E: std::fmt::Display>(r: Result<(ObjectRef<K>, Action), E>)
where
    K::DynamicType: Clone + std::fmt::Debug + Eq + std::hash::Hash,
{
    if let Err(e) = r {
        tracing::debug!(error = %e, "controller event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{http::StatusCode, routing::get, Json, Router};

    /// A real HTTP server on 127.0.0.1 that answers API discovery of fabricwatch.io with
    /// `status` and `body`, and a kube client pointed at it.
    async fn discovery_server(status: StatusCode, body: serde_json::Value) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app = Router::new().route(
            "/apis/fabricwatch.io/v1alpha1",
            get(move || {
                let body = body.clone();
                async move { (status, Json(body)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}").parse().expect("url");
        Client::try_from(kube::Config::new(url)).expect("client")
    }

    fn resource_list(names: &[&str]) -> serde_json::Value {
        let resources: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "singularName": "", "namespaced": true, "kind": "X", "verbs": ["get"]}))
            .collect();
        serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "fabricwatch.io/v1alpha1", "resources": resources})
    }

    #[tokio::test]
    async fn missing_crds_give_an_actionable_error() {
        let not_found = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"});
        let client = discovery_server(StatusCode::NOT_FOUND, not_found).await;
        let e = check_crds(&client).await.expect_err("no API").to_string();
        assert!(
            e.contains("fabricwatch.io/v1alpha1 API is not installed"),
            "{e}"
        );
        assert!(e.contains("kubectl apply -f crds/"), "{e}");

        let client = discovery_server(
            StatusCode::OK,
            resource_list(&["monitortargets", "alertrules"]),
        )
        .await;
        let e = check_crds(&client).await.expect_err("partial").to_string();
        assert!(e.contains("lacks aianalyses"), "{e}");

        let client = discovery_server(
            StatusCode::OK,
            resource_list(&[
                "monitortargets",
                "monitortargets/status",
                "alertrules",
                "aianalyses",
            ]),
        )
        .await;
        check_crds(&client).await.expect("complete API");
    }

    #[test]
    fn analytics_url_defaults_to_the_service_in_the_namespace() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from(["x", "--namespace", "ops"]).expect("parse");
        let s = cli.args.settings();
        assert_eq!(s.analytics_url, "http://fabricwatch-analytics.ops.svc:8080");
        assert_eq!(s.agent_image, "localhost/fabricwatch-agent:dev");
        assert!(Cli::try_parse_from(["x", "--agent-image-pull-policy", "Sometimes"]).is_err());
        let cli = Cli::try_parse_from(["x", "--manage-central-workloads=false"]).expect("parse");
        assert!(!cli.args.manage_central_workloads);
    }
}
