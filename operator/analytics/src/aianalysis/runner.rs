//! The Kubernetes edge of AI analyses: watches AIAnalysis objects, turns analytics' triggers,
//! cron schedules and the `fabricwatch.io/run-now` annotation into debounced runs, and for
//! each run reads the provider Secret and the affected objects' Events, calls
//! [`execute`](super::execute::execute()), applies the status (server-side apply, field
//! manager `fabricwatch-analytics`), publishes Warning Events, sends the findings
//! notification and clears the annotation. Which analyses a trigger reaches is
//! [`super::select`]; the single API calls are [`super::kube_calls`].

use std::{collections::HashMap, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use fabricwatch_ai::{
    situation::{EventObjectKind, Situation},
    Analyzer, AnalyzerConfig,
};
use fabricwatch_crds::{
    ai_analysis::{AnalysisTargetKind, RUN_NOW_ANNOTATION},
    AIAnalysis, FIELD_MANAGER_ANALYTICS,
};
use fabricwatch_proto::ObjectRef;
use futures::StreamExt;
use kube::{
    api::Api,
    runtime::{
        events::{Event as KubeEventMsg, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef as KubeRef, Store},
        watcher, WatchStreamExt,
    },
    Client, Resource,
};
use tokio::sync::mpsc;

pub use super::select::{accepted, wanted_by};
use super::{
    debounce::{next_run, Debounce, Offer, Reason, TriggerState},
    execute::{execute, Executed},
    kube_calls::{clear_run_now, credentials, kube_reason, write_status},
    kube_events::{self, Involved},
    metrics::AiMetrics,
    situation,
    status::{changed, idle_status, persisted, Persisted},
};
use crate::{
    health::Health,
    k8s::Stores,
    notify::Notifier,
    rules::object_ref,
    state::{lock, Shared},
    trigger::Trigger,
};

/// Settings of the runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// How long triggers are gathered into one run.
    pub coalesce: StdDuration,
    /// How often schedules, annotations and pending runs are checked.
    pub tick: StdDuration,
    /// The analyzer (cache size/TTL, retry policy, limits).
    pub analyzer: AnalyzerConfig,
    /// `instance` of the Event reporter (the pod name), if known.
    pub instance: Option<String>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            coalesce: StdDuration::from_secs(5),
            tick: StdDuration::from_secs(1),
            analyzer: AnalyzerConfig::default(),
            instance: std::env::var("POD_NAME").ok(),
        }
    }
}

/// Time between two reachability checks of one AIAnalysis (and after a spec change, at
/// once). Each costs one `GET /models` or Bedrock `CountTokens`, no tokens.
pub const REACHABILITY_INTERVAL_MINUTES: i64 = 5;
/// Bound of one reachability check.
pub const REACHABILITY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

struct Entry {
    triggers: TriggerState,
    persisted: Option<Persisted>,
    schedule: Option<String>,
    next_run: Option<DateTime<Utc>>,
    manual_seen: Option<String>,
    idle_written: Option<Option<DateTime<Utc>>>,
    /// When the next reachability check is due, and the generation it was for.
    reach_due: Option<(DateTime<Utc>, Option<i64>)>,
}

/// Everything a run task needs.
#[derive(Clone)]
struct Ctx {
    client: Client,
    shared: Arc<Shared>,
    stores: Stores,
    analyzer: Arc<Analyzer>,
    notifier: Option<Notifier>,
    metrics: AiMetrics,
    recorder: Recorder,
    analyses: Store<AIAnalysis>,
}

/// The runner's background tasks. Dropping it leaves them running (analytics runs them for
/// the life of the process); [`RunnerHandle::stop`] ends them (tests use it to simulate a
/// restart).
#[derive(Debug)]
pub struct RunnerHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    analyses: Store<AIAnalysis>,
}

impl RunnerHandle {
    /// The runner's AIAnalysis store (the fleet view shows their findings).
    pub fn analyses(&self) -> Store<AIAnalysis> {
        self.analyses.clone()
    }

    /// Aborts the watch and the trigger loop (a run in progress finishes on its own).
    pub fn stop(self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Starts the runner: an AIAnalysis reflector and the loop consuming `triggers`. Metrics are
/// registered in `shared.metrics.registry`.
///
/// # Errors
/// When the metrics cannot be registered (e.g. a second runner on the same registry) or the
/// AIAnalysis watch never lists.
pub async fn start(
    client: Client,
    shared: Arc<Shared>,
    stores: Stores,
    notifier: Option<Notifier>,
    triggers: mpsc::Receiver<Trigger>,
    config: RunnerConfig,
) -> anyhow::Result<RunnerHandle> {
    let metrics = AiMetrics::register(&shared.metrics.registry)?;
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(
            Api::<AIAnalysis>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .applied_objects();
    let watch = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!("aianalyses watch error (retrying): {e}");
            }
        }
    });
    if reader.wait_until_ready().await.is_err() {
        watch.abort();
        anyhow::bail!("the aianalyses watch stopped before listing");
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER_ANALYTICS.into(),
            instance: config.instance.clone(),
        },
    );
    let ctx = Ctx {
        client,
        shared,
        stores,
        analyzer: Arc::new(Analyzer::new(config.analyzer.clone())),
        notifier,
        metrics,
        recorder,
        analyses: reader.clone(),
    };
    let reader_for_ui = reader.clone();
    let main = tokio::spawn(run_loop(ctx, reader, triggers, config));
    Ok(RunnerHandle {
        tasks: vec![watch, main],
        analyses: reader_for_ui,
    })
}

async fn run_loop(
    ctx: Ctx,
    store: Store<AIAnalysis>,
    mut triggers: mpsc::Receiver<Trigger>,
    config: RunnerConfig,
) {
    let coalesce = Duration::from_std(config.coalesce).unwrap_or(Duration::seconds(5));
    let (done_tx, mut done_rx) = mpsc::channel::<(ObjectRef, Persisted)>(64);
    let mut entries: HashMap<ObjectRef, Entry> = HashMap::new();
    let mut tick = tokio::time::interval(config.tick.max(StdDuration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let debounce_of = |a: &AIAnalysis| Debounce {
        coalesce,
        min_interval: a
            .spec
            .trigger
            .min_interval
            .to_std()
            .ok()
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or(Duration::minutes(10)),
    };
    loop {
        tokio::select! {
            Some(t) = triggers.recv() => {
                let all: Vec<_> = store.state().into_iter().filter(|a| accepted(a)).collect();
                let rules = ctx.stores.rules.clone();
                let wanted = wanted_by(&t, &all, |r| {
                    let rule = rules.get(&KubeRef::new(&r.name).within(&r.namespace))?;
                    Some(ObjectRef { namespace: r.namespace.clone(), name: rule.spec.target_ref.name.clone() })
                });
                let now = Utc::now();
                for (me, reason) in wanted {
                    let Some(a) = all.iter().find(|a| object_ref(&a.metadata) == me) else { continue };
                    let e = entries.entry(me.clone()).or_insert_with(|| new_entry(a));
                    match e.triggers.offer(reason, now, &debounce_of(a)) {
                        Offer::Opened => tracing::info!(analysis = %me, reason = reason.as_str(), "AI analysis triggered"),
                        Offer::Coalesced | Offer::Dropped => ctx.metrics.debounced.with_label_values(&[reason.as_str()]).inc(),
                    }
                }
            }
            Some((me, p)) = done_rx.recv() => {
                if let Some(e) = entries.get_mut(&me) {
                    e.persisted = Some(p);
                    e.triggers.finish();
                }
            }
            _ = tick.tick() => {
                let now = Utc::now();
                let all = store.state();
                let live: std::collections::HashSet<ObjectRef> = all.iter().map(|a| object_ref(&a.metadata)).collect();
                entries.retain(|k, e| live.contains(k) || e.triggers.running());
                for a in all {
                    if !accepted(&a) {
                        continue;
                    }
                    let me = object_ref(&a.metadata);
                    let d = debounce_of(&a);
                    let e = entries.entry(me.clone()).or_insert_with(|| new_entry(&a));
                    let schedule = a.spec.trigger.schedule.clone();
                    let text = schedule.as_ref().map(|s| s.as_str().to_string());
                    if text != e.schedule {
                        e.schedule = text;
                        e.next_run = schedule.as_ref().and_then(|s| next_run(s, now));
                    }
                    if let (Some(s), Some(at)) = (&schedule, e.next_run) {
                        if now >= at {
                            e.triggers.offer(Reason::Schedule, now, &d);
                            e.next_run = next_run(s, now);
                        }
                    }
                    let manual = a.metadata.annotations.as_ref().and_then(|m| m.get(RUN_NOW_ANNOTATION)).cloned();
                    if let Some(v) = &manual {
                        if e.manual_seen.as_ref() != Some(v) {
                            e.manual_seen = Some(v.clone());
                            e.triggers.offer(Reason::Manual, now, &d);
                        }
                    }
                    let generation = a.metadata.generation;
                    let check_now = match e.reach_due {
                        None => true,
                        Some((at, g)) => now >= at || g != generation,
                    };
                    if check_now {
                        e.reach_due = Some((now + Duration::minutes(REACHABILITY_INTERVAL_MINUTES), generation));
                        let (ctx, a, me) = (ctx.clone(), a.clone(), me.clone());
                        tokio::spawn(async move { check_reachability(&ctx, &a, &me).await });
                    }
                    if e.triggers.due(now, &d) {
                        let reasons = e.triggers.start(now);
                        let persisted = e.persisted.clone().unwrap_or_else(|| persisted(a.status.as_ref()));
                        let next = e.next_run;
                        let (ctx, done, a) = (ctx.clone(), done_tx.clone(), a.clone());
                        tracing::info!(analysis = %me, reasons = ?reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "AI analysis run starting");
                        e.idle_written = Some(next);
                        tokio::spawn(async move {
                            let p = run_one(&ctx, &a, persisted, next, now, manual).await;
                            let _ = done.send((me, p)).await;
                        });
                    } else if !e.triggers.running() && e.idle_written != Some(e.next_run) {
                        e.idle_written = Some(e.next_run);
                        let desired = idle_status(a.status.as_ref(), a.metadata.generation, e.next_run, now);
                        if changed(a.status.as_ref(), &desired) {
                            write_status(&ctx.client, &me, &desired).await;
                        }
                    }
                }
            }
        }
    }
}

fn new_entry(a: &AIAnalysis) -> Entry {
    let p = persisted(a.status.as_ref());
    Entry {
        triggers: TriggerState::with_last_run(p.last_run),
        persisted: None,
        schedule: None,
        next_run: None,
        // A value present at start was either handled before a restart (then cleared) or not;
        // run it: an extra run is cheaper than a lost request.
        manual_seen: None,
        idle_written: None,
        reach_due: None,
    }
}

fn worst_first(h: Health) -> u8 {
    match h {
        Health::Critical => 0,
        Health::Unknown => 1,
        Health::Warning => 2,
        Health::Healthy => 3,
    }
}

/// Builds the situation of `a` from analytics' state and the Kubernetes Events.
async fn build_situation(ctx: &Ctx, a: &AIAnalysis, now: DateTime<Utc>) -> Situation {
    let ns = a.metadata.namespace.clone().unwrap_or_default();
    let window = a
        .spec
        .window
        .to_std()
        .unwrap_or(StdDuration::from_secs(3600));
    let mut targets = Vec::new();
    let mut rule_refs = Vec::new();
    for r in &a.spec.target_refs {
        let o = ObjectRef {
            namespace: ns.clone(),
            name: r.name.clone(),
        };
        match r.kind {
            AnalysisTargetKind::MonitorTarget => targets.push(o),
            AnalysisTargetKind::AlertRule => {
                if let Some(rule) = ctx.stores.rules.get(&KubeRef::new(&o.name).within(&ns)) {
                    targets.push(ObjectRef {
                        namespace: ns.clone(),
                        name: rule.spec.target_ref.name.clone(),
                    });
                }
                rule_refs.push(o);
            }
        }
    }
    targets.sort();
    targets.dedup();
    let (nodes, suspects): (Vec<_>, Vec<_>) = {
        let fleet = lock(&ctx.shared.fleet);
        (
            targets
                .iter()
                .filter_map(|t| fleet.nodes(t, now))
                .flatten()
                .collect(),
            targets
                .iter()
                .flat_map(|t| fleet.suspects(t).iter().cloned())
                .collect(),
        )
    };
    let rules: Vec<_> = lock(&ctx.shared.evaluator)
        .rules_with_reports()
        .into_iter()
        .filter(|(spec, _)| rule_refs.contains(&spec.rule) || targets.contains(&spec.target))
        .collect();
    let mut by_health: Vec<_> = nodes.iter().collect();
    by_health.sort_by_key(|n| (worst_first(n.health), n.node.clone()));
    let mut involved = Vec::new();
    for n in by_health.iter().take(kube_events::MAX_OBJECTS / 2) {
        involved.push(Involved {
            kind: EventObjectKind::Node,
            namespace: String::new(),
            name: n.node.clone(),
        });
        if let Some(pod) = &n.pod {
            involved.push(Involved {
                kind: EventObjectKind::Pod,
                namespace: ns.clone(),
                name: pod.clone(),
            });
        }
    }
    let since = now - Duration::from_std(window).unwrap_or(Duration::hours(1));
    let events = kube_events::list(&ctx.client, &involved, since).await;
    let mut s = situation::build(window.as_secs(), &nodes, &rules, events);
    situation::with_suspects(&mut s, &suspects);
    s
}

/// Checks that the provider answers (no tokens spent) and writes `ProviderReachable`.
async fn check_reachability(ctx: &Ctx, a: &AIAnalysis, me: &ObjectRef) {
    let result = match credentials(&ctx.client, a).await {
        Err(msg) => Err(fabricwatch_ai::ProviderFailure {
            reason: fabricwatch_ai::provider::FailureReason::AuthFailed,
            message: msg,
            attempts: 0,
            status: None,
        }),
        Ok(creds) => match super::settings::settings(&a.spec, creds) {
            Err(msg) => Err(fabricwatch_ai::ProviderFailure {
                reason: fabricwatch_ai::provider::FailureReason::InvalidConfig,
                message: msg,
                attempts: 0,
                status: None,
            }),
            Ok(s) => {
                fabricwatch_ai::provider::check_reachable(&s.provider, REACHABILITY_TIMEOUT).await
            }
        },
    };
    if let Err(f) = &result {
        tracing::info!(analysis = %me, reason = f.reason.as_str(), "AI provider not reachable: {}", f.message);
    }
    let current = ctx
        .analyses
        .get(&KubeRef::new(&me.name).within(&me.namespace))
        .and_then(|o| o.status.clone())
        .or_else(|| a.status.clone());
    let desired = super::status::reachability_status(
        current.as_ref(),
        &result,
        a.metadata.generation,
        Utc::now(),
    );
    if changed(current.as_ref(), &desired) {
        write_status(&ctx.client, me, &desired).await;
    }
}

async fn run_one(
    ctx: &Ctx,
    a: &AIAnalysis,
    persisted: Persisted,
    next_run: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    manual: Option<String>,
) -> Persisted {
    let me = object_ref(&a.metadata);
    let situation = build_situation(ctx, a, started).await;
    let creds = credentials(&ctx.client, a).await;
    let Executed {
        outcome,
        status,
        persisted,
        notification,
    } = execute(
        &ctx.analyzer,
        a,
        &situation,
        creds,
        persisted,
        next_run,
        started,
    )
    .await;
    ctx.metrics.record(&outcome);
    tracing::info!(
        analysis = %me,
        findings = status.findings.len(),
        cache_hit = outcome.cache_hit,
        calls = outcome.calls,
        input_tokens = outcome.usage.input_tokens,
        output_tokens = outcome.usage.output_tokens,
        cost_usd = outcome.usage.cost_usd,
        error = outcome.error.as_ref().map(|e| e.reason.as_str()),
        "AI analysis run finished"
    );
    // The reflector's copy may be older than this run's start; compare with it anyway: a
    // run always moves lastRunTime, so this only skips writes of identical statuses.
    let current = ctx
        .analyses
        .get(&KubeRef::new(&me.name).within(&me.namespace))
        .and_then(|o| o.status.clone());
    if changed(current.as_ref(), &status) {
        write_status(&ctx.client, &me, &status).await;
    }
    let warn = |reason: &str, note: String| KubeEventMsg {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Analyze".into(),
        secondary: None,
    };
    let mut events = Vec::new();
    if let Some(e) = &outcome.error {
        events.push(warn(
            "ProviderError",
            format!("{}: {}", e.reason.as_str(), e.message),
        ));
    }
    if let Some(b) = &outcome.budget_exceeded {
        events.push(warn("BudgetExceeded", b.to_string()));
    }
    let reference = a.object_ref(&());
    for ev in events {
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
            tracing::warn!(analysis = %me, "publishing Event failed: {}", kube_reason(&e));
        }
    }
    if let (Some(n), Some(req)) = (&ctx.notifier, notification) {
        n.send(req, &ctx.shared.metrics);
    }
    if let Some(v) = manual {
        clear_run_now(&ctx.client, &me, &v).await;
    }
    persisted
}
