//! Central analytics workload (`fabricwatch-operator analytics`). See the crate README.

pub mod aianalysis;
pub mod alert;
pub mod anomaly;
pub mod authz;
pub mod congestion;
pub mod consistency;
pub mod derive;
pub mod evaluator;
pub mod fleet;
pub mod health;
pub mod http;
pub mod k8s;
pub mod localize;
pub mod loss;
pub mod metrics;
pub mod node_conditions;
pub mod notify;
pub mod peers;
pub mod policy;
pub mod rules;
pub mod score;
pub mod state;
pub mod stats;
pub mod status;
pub mod trigger;
pub mod ui;
pub mod window;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use fabricwatch_common::{
    auth::{Authenticator, TokenReviewAuthenticator},
    serve::{ops_router, serve, Readiness},
    shutdown,
};
use tokio::sync::mpsc;

use crate::{
    fleet::{Fleet, Settings},
    metrics::Metrics,
    notify::{Notifier, NotifierConfig},
    policy::AgentPolicy,
    state::{lock, Catalog, EventLog, OpenCatalog, Shared},
    trigger::Trigger,
};

/// Command-line flags of `fabricwatch-operator analytics`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve agent reports, the JSON API, /metrics and health on.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub listen: std::net::SocketAddr,
    /// Accept reports without a token and answer the read API and fleet view to anyone.
    /// Only together with --without-kubernetes (local runs and tests): anyone who can reach
    /// the port can then feed analytics and read everything it holds.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_INSECURE_SKIP_AUTH")]
    pub insecure_skip_auth: bool,
    /// Second listener serving the fleet view (`/ui/`) and the read API to every caller
    /// without a token: it must be a loopback address (e.g. `127.0.0.1:8081`), so that only
    /// `kubectl port-forward` reaches it, and port-forward's own RBAC (`create` on
    /// `pods/portforward` in analytics' namespace) is the access check.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_UI_LISTEN")]
    pub ui_listen: Option<std::net::SocketAddr>,
    /// Audiences a reader's token may be issued for (repeatable; empty: the API server's
    /// default audience, which `kubectl create token` and in-cluster ServiceAccount tokens
    /// have).
    #[arg(
        long = "read-audience",
        env = "FABRICWATCH_ANALYTICS_READ_AUDIENCES",
        value_delimiter = ','
    )]
    pub read_audiences: Vec<String>,
    /// How long a read-permission decision (SubjectAccessReview) is reused: a revoked
    /// RoleBinding takes effect within this time.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_ACCESS_CACHE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub access_cache_ttl: Duration,
    /// Run without a Kubernetes API: every target is accepted with default thresholds, no
    /// AlertRules are evaluated and no status is written (implies nothing about auth; combine
    /// with --insecure-skip-auth for a fully local run).
    #[arg(long, env = "FABRICWATCH_ANALYTICS_WITHOUT_KUBERNETES")]
    pub without_kubernetes: bool,
    /// Audience agent tokens must be issued for (repeatable; the controller passes its
    /// `--token-audience`).
    #[arg(
        long = "audience",
        env = "FABRICWATCH_TOKEN_AUDIENCE",
        value_delimiter = ',',
        default_value = "fabricwatch-analytics"
    )]
    pub audiences: Vec<String>,
    /// Extra ServiceAccount names accepted as agents of any target (repeatable); the
    /// ServiceAccount the controller creates per target (`<target>-agent`) is always accepted.
    #[arg(
        long = "agent-service-account",
        env = "FABRICWATCH_AGENT_SERVICE_ACCOUNTS",
        value_delimiter = ','
    )]
    pub agent_service_accounts: Vec<String>,
    /// Namespaces the extra ServiceAccounts may live in besides the target's (repeatable).
    #[arg(
        long = "agent-namespace",
        env = "FABRICWATCH_AGENT_NAMESPACES",
        value_delimiter = ','
    )]
    pub agent_namespaces: Vec<String>,
    /// How long a reviewed token stays trusted without asking the API server again (a
    /// rejected one: 5 s).
    #[arg(long, env = "FABRICWATCH_ANALYTICS_TOKEN_CACHE_TTL", default_value = "2m", value_parser = humantime::parse_duration)]
    pub token_cache_ttl: Duration,
    /// Largest report body accepted, bytes.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_MAX_BODY_BYTES", default_value_t = state::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Base URL of the notifier; notifications are not sent when unset.
    #[arg(long, env = "FABRICWATCH_NOTIFIER_URL")]
    pub notifier_url: Option<String>,
    /// Projected ServiceAccount token presented to the notifier.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_TOKEN_FILE",
        default_value = "/var/run/secrets/fabricwatch/token"
    )]
    pub token_file: std::path::PathBuf,
    /// How often AlertRules are evaluated and status is considered for writing.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_EVALUATION_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub evaluation_interval: Duration,
    /// Least time between two status writes of one object.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_STATUS_MIN_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub status_min_interval: Duration,
    /// Status is rewritten at least this often (moving timestamps and values).
    #[arg(long, env = "FABRICWATCH_ANALYTICS_STATUS_HEARTBEAT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub status_heartbeat: Duration,
    /// Samples per rolling window per series.
    #[arg(
        long,
        env = "FABRICWATCH_ANALYTICS_WINDOW_SAMPLES",
        default_value_t = 60
    )]
    pub window_samples: usize,
    /// Nodes silent this long are forgotten.
    #[arg(long, env = "FABRICWATCH_ANALYTICS_FORGET_AFTER", default_value = "1h", value_parser = humantime::parse_duration)]
    pub forget_after: Duration,
    /// How often each MonitorTarget's anomaly baselines are saved to its ConfigMaps (restored
    /// at start, so a restart neither re-warms the detectors nor floods onsets).
    #[arg(long, env = "FABRICWATCH_ANALYTICS_BASELINE_SAVE_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub baseline_save_interval: Duration,
}

/// Selects rustls' `ring` provider for the process (kube and reqwest each enable a different
/// one, and rustls refuses to guess). Idempotent; `run` calls it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs analytics until SIGTERM/Ctrl-C, with the AI runner consuming the triggers
/// (alerts with `analysisRef`, new anomalies, schedules, `fabricwatch.io/run-now`) when a
/// Kubernetes API is available; without one, triggers are only logged.
///
/// # Errors
/// Fatal start-up or serving errors.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_inner(args, None).await
}

/// [`run`], sending AI triggers (alerts with `analysisRef`, new anomalies) to `triggers`
/// instead of the built-in AI runner.
///
/// # Errors
/// Fatal start-up or serving errors.
pub async fn run_with_triggers(args: Args, triggers: mpsc::Sender<Trigger>) -> anyhow::Result<()> {
    run_inner(args, Some(triggers)).await
}

async fn run_inner(args: Args, external: Option<mpsc::Sender<Trigger>>) -> anyhow::Result<()> {
    let (triggers, own_rx) = match external {
        Some(tx) => (tx, None),
        None => {
            let (tx, rx) = mpsc::channel::<Trigger>(256);
            (tx, Some(rx))
        }
    };
    install_crypto_provider();
    let metrics = Metrics::new()?;
    let client = if args.without_kubernetes {
        None
    } else {
        Some(fabricwatch_common::kube_client::infer(Default::default()).await?)
    };
    let stores = match &client {
        Some(c) => Some(k8s::Stores::start(c.clone()).await?),
        None => None,
    };
    if args.insecure_skip_auth && !args.without_kubernetes {
        anyhow::bail!("--insecure-skip-auth is only for local runs with --without-kubernetes: in a cluster, readers and agents authenticate with tokens");
    }
    if let Some(ui) = args.ui_listen {
        if !ui.ip().is_loopback() && !args.insecure_skip_auth {
            anyhow::bail!("--ui-listen {ui} must be a loopback address: it answers without a token, so only kubectl port-forward may reach it");
        }
    }
    let access = Arc::new(match &client {
        Some(c) if !args.insecure_skip_auth => authz::Access::checked(
            Arc::new(
                TokenReviewAuthenticator::new(c.clone(), args.read_audiences.clone())
                    .with_ttl(args.token_cache_ttl, Duration::from_secs(5)),
            ),
            Arc::new(authz::SubjectAccessReviewer::new(c.clone())),
            authz::DecisionCache::new(args.access_cache_ttl, authz::DEFAULT_DECISION_ENTRIES),
        ),
        _ => {
            tracing::warn!(
                "--insecure-skip-auth: the read API and fleet view answer anyone reaching {}",
                args.listen
            );
            authz::Access::open()
        }
    });
    let auth: Option<Arc<dyn Authenticator>> = if args.insecure_skip_auth {
        tracing::warn!("--insecure-skip-auth: agent reports are NOT authenticated; anyone reaching {} can feed analytics", args.listen);
        None
    } else {
        let Some(c) = &client else {
            anyhow::bail!("token authentication needs the Kubernetes API: drop --without-kubernetes or add --insecure-skip-auth");
        };
        Some(Arc::new(
            TokenReviewAuthenticator::new(c.clone(), args.audiences.clone())
                .with_ttl(args.token_cache_ttl, Duration::from_secs(5)),
        ))
    };
    let catalog: Arc<dyn Catalog> = match &stores {
        Some(s) => k8s::catalog(s),
        None => Arc::new(OpenCatalog),
    };
    let settings = Settings {
        window: args.window_samples.max(2),
        forget_after: chrono::Duration::from_std(args.forget_after)?,
        ..Settings::default()
    };
    let shared = Arc::new(Shared {
        fleet: std::sync::Mutex::new(Fleet::new(settings)),
        events: std::sync::Mutex::new(EventLog::new(1000)),
        auth,
        policy: AgentPolicy {
            service_accounts: args.agent_service_accounts.clone(),
            namespaces: args.agent_namespaces.clone(),
        },
        max_body_bytes: args.max_body_bytes,
        triggers: Some(triggers),
        ..Shared::new(metrics.clone(), catalog)
    });
    if let Some(c) = &client {
        match anomaly::store::load(c).await {
            Ok(saved) => {
                let mut fleet = lock(&shared.fleet);
                for (target, baselines) in saved {
                    fleet.restore_anomaly_baselines(target, baselines);
                }
            }
            Err(e) => tracing::warn!("anomaly baselines not restored: {e:#}"),
        }
        if let Some(s) = &stores {
            tokio::spawn(anomaly::events::publish_loop(
                c.clone(),
                shared.clone(),
                s.targets.clone(),
                args.evaluation_interval,
            ));
            tokio::spawn(anomaly::store::save_loop(
                c.clone(),
                shared.clone(),
                s.targets.clone(),
                args.baseline_save_interval,
            ));
        }
    }
    let notifier = match &args.notifier_url {
        Some(url) => Some(Notifier::start(
            NotifierConfig {
                url: url.clone(),
                token_file: Some(args.token_file.clone()),
                ..NotifierConfig::default()
            },
            metrics.clone(),
        )?),
        None => {
            tracing::warn!("--notifier-url is not set: alert notifications are not sent");
            None
        }
    };
    let writer = match (&client, &stores) {
        (Some(c), Some(s)) => Some(k8s::StatusWriter::new(
            c.clone(),
            s.clone(),
            metrics.clone(),
            args.status_min_interval,
            args.status_heartbeat,
        )),
        _ => None,
    };
    let mut analyses = None;
    if let Some(mut rx) = own_rx {
        match (&client, &stores) {
            (Some(c), Some(s)) => {
                let runner = aianalysis::start(
                    c.clone(),
                    shared.clone(),
                    s.clone(),
                    notifier.clone(),
                    rx,
                    aianalysis::RunnerConfig::default(),
                )
                .await?;
                analyses = Some(runner.analyses());
            }
            _ => {
                tokio::spawn(async move {
                    while let Some(t) = rx.recv().await {
                        tracing::info!(trigger = %serde_json::to_string(&t).unwrap_or_default(), "AI analysis trigger (no Kubernetes API: AIAnalyses are not run)");
                    }
                });
            }
        }
    }
    let ready = Readiness::default();
    let api = http::Api::new(shared.clone(), access)
        .with_analyses(analyses)
        .with_rules(stores.as_ref().map(|s| s.rules.clone()))
        .with_silencer(client.as_ref().map(|c| {
            Arc::new(ui::silence::KubeSilencer::new(c.clone()))
                as Arc<dyn ui::silence::RuleSilencer>
        }));
    let app = api
        .clone()
        .router()
        .merge(ops_router(metrics.registry.clone(), ready.clone()));
    if let Some(addr) = args.ui_listen {
        // Bound here, so a taken address fails the start instead of a background task.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("--ui-listen: cannot listen on {addr}: {e}"))?;
        tracing::info!(%addr, "serving the fleet view and read API without tokens (loopback)");
        let trusted = api.trusted_router();
        tokio::spawn(async move {
            let served = axum::serve(listener, trusted)
                .with_graceful_shutdown(shutdown::signal())
                .await;
            if let Err(e) = served {
                tracing::error!("--ui-listen {addr}: {e}");
            }
        });
    }
    tokio::spawn(cycle_loop(
        shared.clone(),
        stores,
        writer,
        notifier,
        args.evaluation_interval,
    ));
    ready.set(true);
    serve(args.listen, app, shutdown::signal()).await
}

/// One evaluation cycle every `every`: sync specs, forget silent nodes, evaluate rules,
/// notify, trigger, refresh metrics, write status.
async fn cycle_loop(
    shared: Arc<Shared>,
    stores: Option<k8s::Stores>,
    mut writer: Option<k8s::StatusWriter>,
    notifier: Option<Notifier>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Utc::now();
        let suspect_changes;
        let (cycle, views) = {
            let mut fleet = lock(&shared.fleet);
            if let Some(s) = &stores {
                let configs = s.target_configs();
                let live: std::collections::BTreeSet<_> =
                    configs.iter().map(|(k, _)| k.clone()).collect();
                let gone: Vec<_> = fleet
                    .targets()
                    .filter(|t| !live.contains(*t))
                    .cloned()
                    .collect();
                gone.iter().for_each(|t| fleet.remove(t));
                for (k, c) in configs {
                    if fleet.config(&k) != Some(&c) {
                        fleet.configure(k, c);
                    }
                }
            }
            fleet.forget_silent(now);
            if let Some(s) = &stores {
                fleet.set_node_conditions(s.node_conditions());
            }
            suspect_changes = fleet.localize_all(now);
            shared.metrics.nodes.set(fleet.node_count() as i64);
            let mut ev = lock(&shared.evaluator);
            if let Some(s) = &stores {
                ev.sync(s.rule_inputs());
            }
            let cycle = ev.evaluate(&fleet, now);
            let views: Vec<_> = fleet
                .targets()
                .filter_map(|t| Some((fleet.view(t, now)?, fleet.node_gauges(t, now))))
                .collect();
            (cycle, views)
        };
        for r in &cycle.reports {
            shared
                .metrics
                .evaluations
                .with_label_values(&[if r.error.is_some() { "invalid" } else { "ok" }])
                .inc();
        }
        for c in &cycle.changes {
            shared.event("AlertStateChanged", &c.rule, None, c.text.clone());
        }
        for c in &suspect_changes {
            match c {
                fleet::SuspectChange::Appeared(t, s) => shared.event(
                    "SuspectAppeared",
                    t,
                    s.suspect.node.as_deref(),
                    format!("{}: {}", s.name, s.suspect.evidence),
                ),
                fleet::SuspectChange::Cleared(t, name) => shared.event(
                    "SuspectCleared",
                    t,
                    None,
                    format!("{name} is no longer a suspect"),
                ),
            }
        }
        if let Some(n) = &notifier {
            for req in cycle.notifications {
                n.send(req, &shared.metrics);
            }
        }
        for t in cycle.triggers {
            shared.trigger(t);
        }
        shared.metrics.refresh_targets(&views);
        shared.metrics.refresh_alerts(
            cycle
                .reports
                .iter()
                .filter_map(|r| Some((r.rule.namespace.as_str(), r.rule.name.as_str(), r.state?))),
        );
        shared.metrics.last_evaluation.set(now.timestamp() as f64);
        if let Some(w) = &mut writer {
            w.suspect_events(&suspect_changes).await;
            w.rule_events(&cycle.changes).await;
            let tv: Vec<_> = views.into_iter().map(|(v, _)| v).collect();
            w.write_targets(&tv, now).await;
            w.write_rules(&cycle.reports, now).await;
        }
    }
}
