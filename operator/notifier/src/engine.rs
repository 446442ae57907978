//! The delivery engine: accepts requests into the durable outbox, groups them, applies the
//! policy, delivers to every channel of the source object and records the outcomes.
//!
//! Durability: a request is acknowledged only after the outbox holding it was saved; every
//! channel delivery is saved (channel marked done, history updated) right after it ends.
//! After a crash the engine reloads the outbox and continues; the only thing that can be
//! repeated is a delivery that succeeded at the receiver while the process died before its
//! save (one message, at most once per crash).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fabricwatch_proto::notify::{
    NotificationAck, NotificationRequest, SourceKind, NOTIFY_SCHEMA_VERSION,
};
use fabricwatch_proto::ObjectRef;

use crate::batch::{kind_name, Batch};
use crate::channel::{NamedChannel, NotifyConfig};
use crate::channels::SendContext;
use crate::deliver::{deliver, RetryPolicy};
use crate::metrics::Metrics;
use crate::outcome::{ChannelOutcome, DeliveryResult, StatusSink};
use crate::policy::{self, Decision, RateLimiter};
use crate::resolve::{resolve_target, ResolveError, Resolver};
use crate::store::{self, Pending, State, Store, StoreError, STATE_VERSION};

/// Engine limits and timings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Retry bounds per delivery.
    pub retry: RetryPolicy,
    /// Most requests in the outbox; more are refused with 503 (analytics retries).
    pub max_pending: usize,
    /// Largest encoded state; a request that would exceed it is refused like a full queue.
    /// A ConfigMap holds at most 1 MiB (etcd's request limit), so the default keeps room.
    pub max_state_bytes: usize,
    /// How long finished request ids are remembered for idempotency.
    pub id_retention: Duration,
    /// Most finished ids remembered.
    pub max_finished_ids: usize,
    /// How long delivery history is kept (bounds dedup/cooldown lookback).
    pub history_retention: Duration,
    /// Most history entries kept.
    pub max_history: usize,
    /// Messages per minute per channel (0: unlimited).
    pub rate_per_minute: u32,
    /// Burst per channel.
    pub rate_burst: u32,
    /// How often due groups are looked for.
    pub tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            max_pending: 1000,
            max_state_bytes: 900 * 1024,
            id_retention: Duration::from_secs(24 * 3600),
            max_finished_ids: 2000,
            history_retention: Duration::from_secs(24 * 3600),
            max_history: 2000,
            rate_per_minute: 20,
            rate_burst: 5,
            tick: Duration::from_secs(1),
        }
    }
}

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The request is malformed (HTTP 400).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The outbox is full (HTTP 503, retry later).
    #[error("outbox full")]
    QueueFull,
    /// The outbox could not be saved (HTTP 503, retry later).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most labels or annotations per request.
const MAX_MAP_ENTRIES: usize = 64;
/// Longest id, fingerprint, label name or value, in bytes.
const MAX_SHORT: usize = 256;
/// Longest annotation value, in bytes.
const MAX_ANNOTATION: usize = 4096;

/// Checks a request's shape.
///
/// # Errors
/// A message naming the first bad field.
pub fn validate(req: &NotificationRequest) -> Result<(), String> {
    if req.schema_version != NOTIFY_SCHEMA_VERSION {
        return Err(format!(
            "schemaVersion {} is not supported (expected {NOTIFY_SCHEMA_VERSION})",
            req.schema_version
        ));
    }
    let short = |name: &str, v: &str| {
        if v.is_empty() || v.len() > MAX_SHORT {
            Err(format!("{name} must be 1..{MAX_SHORT} bytes"))
        } else {
            Ok(())
        }
    };
    short("id", &req.id)?;
    short("fingerprint", &req.fingerprint)?;
    short("source.namespace", &req.source.namespace)?;
    short("source.name", &req.source.name)?;
    if req.labels.len() > MAX_MAP_ENTRIES || req.annotations.len() > MAX_MAP_ENTRIES {
        return Err(format!("at most {MAX_MAP_ENTRIES} labels and annotations"));
    }
    for (k, v) in &req.labels {
        short("label name", k)?;
        if v.len() > MAX_SHORT {
            return Err(format!("label {k:?} is longer than {MAX_SHORT} bytes"));
        }
    }
    for (k, v) in &req.annotations {
        short("annotation name", k)?;
        if v.len() > MAX_ANNOTATION {
            return Err(format!(
                "annotation {k:?} is longer than {MAX_ANNOTATION} bytes"
            ));
        }
    }
    if req.value.is_some_and(|v| !v.is_finite()) {
        return Err("value must be a finite number".into());
    }
    Ok(())
}

/// The engine. Share it behind an `Arc`; [`Engine::run`] is the one worker loop.
pub struct Engine<S, R, St> {
    cfg: EngineConfig,
    ctx: SendContext,
    store: S,
    resolver: R,
    status: St,
    metrics: Metrics,
    state: tokio::sync::Mutex<State>,
    limiter: std::sync::Mutex<RateLimiter>,
    wake: tokio::sync::Notify,
}

impl<S: Store, R: Resolver, St: StatusSink> Engine<S, R, St> {
    /// Loads the outbox from `store` and builds the engine.
    ///
    /// # Errors
    /// When the store cannot be read; starting without the outbox could lose or repeat
    /// notifications, so the caller should not start.
    pub async fn start(
        cfg: EngineConfig,
        ctx: SendContext,
        store: S,
        resolver: R,
        status: St,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let mut state = store.load().await?;
        state.version = STATE_VERSION;
        metrics.queue_depth.set(gauge(state.pending.len()));
        if !state.pending.is_empty() {
            tracing::info!(
                pending = state.pending.len(),
                "resuming the notification outbox"
            );
        }
        Ok(Self {
            limiter: std::sync::Mutex::new(RateLimiter::new(cfg.rate_per_minute, cfg.rate_burst)),
            cfg,
            ctx,
            store,
            resolver,
            status,
            metrics,
            state: tokio::sync::Mutex::new(state),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Accepts a request: validates it, recognises a known id, saves it to the outbox.
    ///
    /// # Errors
    /// See [`AcceptError`].
    pub async fn accept(&self, req: NotificationRequest) -> Result<NotificationAck, AcceptError> {
        if let Err(e) = validate(&req) {
            self.metrics.requests.with_label_values(&["rejected"]).inc();
            return Err(AcceptError::Invalid(e));
        }
        let mut state = self.state.lock().await;
        let known = state.finished.contains_key(&req.id)
            || state.pending.iter().any(|p| p.request.id == req.id);
        if known {
            self.metrics
                .requests
                .with_label_values(&["duplicate"])
                .inc();
            return Ok(NotificationAck {
                id: req.id,
                duplicate: true,
            });
        }
        if state.pending.len() >= self.cfg.max_pending {
            self.metrics
                .requests
                .with_label_values(&["unavailable"])
                .inc();
            return Err(AcceptError::QueueFull);
        }
        let id = req.id.clone();
        state.pending.push(Pending {
            request: req,
            accepted_at: Utc::now(),
            done: BTreeSet::new(),
        });
        let saved = match store::encode(&state) {
            Ok(text) if text.len() > self.cfg.max_state_bytes => Err(AcceptError::QueueFull),
            Ok(_) => self.store.save(&state).await.map_err(AcceptError::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = saved {
            state.pending.pop();
            self.metrics
                .requests
                .with_label_values(&["unavailable"])
                .inc();
            if matches!(e, AcceptError::Store(_)) {
                self.metrics.store_errors.inc();
            }
            return Err(e);
        }
        self.metrics.queue_depth.set(gauge(state.pending.len()));
        self.metrics.requests.with_label_values(&["accepted"]).inc();
        drop(state);
        self.wake.notify_one();
        Ok(NotificationAck {
            id,
            duplicate: false,
        })
    }

    /// Requests in the outbox.
    pub async fn queue_depth(&self) -> usize {
        self.state.lock().await.pending.len()
    }

    /// Delivers every group whose wait is over at `now`; returns the channel deliveries made.
    pub async fn process_due(&self, now: DateTime<Utc>) -> usize {
        let pending = self.state.lock().await.pending.clone();
        let mut by_source: BTreeMap<(u8, ObjectRef), Vec<Pending>> = BTreeMap::new();
        for p in pending {
            let k = (kind_order(p.request.source_kind), p.request.source.clone());
            by_source.entry(k).or_default().push(p);
        }
        let mut rounds = 0;
        for ((_, source), entries) in by_source {
            let kind = entries[0].request.source_kind;
            rounds += self.process_source(kind, &source, entries, now).await;
        }
        rounds
    }

    async fn process_source(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
        entries: Vec<Pending>,
        now: DateTime<Utc>,
    ) -> usize {
        let cfg = match self.resolver.config(kind, source).await {
            Ok(c) => c,
            Err(ResolveError::Unavailable(e)) => {
                tracing::warn!(%source, error = %e, "cannot read the source object; will retry");
                return 0;
            }
            Err(ResolveError::NotFound(e)) => {
                tracing::warn!(%source, error = %e, dropped = entries.len(),
                    "source object is gone; dropping its notifications");
                let ids: Vec<String> = entries.iter().map(|p| p.request.id.clone()).collect();
                self.finish_ids(&ids, now).await;
                return 0;
            }
        };
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Pending>> = BTreeMap::new();
        for p in entries {
            groups
                .entry(policy::group_labels(&p.request, &cfg.group_by))
                .or_default()
                .push(p);
        }
        let mut outcomes = Vec::new();
        for (labels, group) in groups {
            let first = group.iter().map(|p| p.accepted_at).min().unwrap_or(now);
            if (now - first).to_std().unwrap_or(Duration::ZERO) < cfg.group_wait {
                continue;
            }
            if cfg.channels.is_empty() {
                let ids: Vec<String> = group.iter().map(|p| p.request.id.clone()).collect();
                self.finish_ids(&ids, now).await;
                continue;
            }
            let rounds = cfg
                .channels
                .iter()
                .map(|ch| self.deliver_channel(kind, source, &cfg, ch, &labels, &group, now));
            outcomes.extend(
                futures::future::join_all(rounds)
                    .await
                    .into_iter()
                    .flatten(),
            );
        }
        let n = outcomes.len();
        if n > 0 {
            self.status.record(kind, source, &outcomes).await;
        }
        n
    }

    #[allow(clippy::too_many_arguments)]
    async fn deliver_channel(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
        cfg: &NotifyConfig,
        ch: &NamedChannel,
        labels: &BTreeMap<String, String>,
        group: &[Pending],
        now: DateTime<Utc>,
    ) -> Option<ChannelOutcome> {
        let todo: Vec<&Pending> = group
            .iter()
            .filter(|p| !p.done.contains(&ch.name))
            .collect();
        if todo.is_empty() {
            return None;
        }
        let channel_kind = ch.spec.kind();
        let channel_key = format!("{}/{}/{}", kind_name(kind), source, ch.name);
        // The newest request per fingerprint wins; older ones are superseded.
        let mut newest: BTreeMap<&str, &Pending> = BTreeMap::new();
        for p in &todo {
            newest.insert(p.request.fingerprint.as_str(), p);
        }
        let history = self.state.lock().await.history.clone();
        let mut results: Vec<(DeliveryResult, String)> = Vec::new();
        let mut to_send: Vec<&Pending> = Vec::new();
        for p in &todo {
            let is_newest = newest
                .get(p.request.fingerprint.as_str())
                .is_some_and(|n| n.request.id == p.request.id);
            if !is_newest {
                results.push((
                    DeliveryResult::Deduplicated,
                    "superseded by a newer notification of the same alert".into(),
                ));
                continue;
            }
            match policy::decide(&history, &channel_key, channel_kind, &p.request, cfg, now) {
                Decision::Send => to_send.push(p),
                Decision::Deduplicated(m) => results.push((DeliveryResult::Deduplicated, m)),
                Decision::Suppressed(m) => results.push((DeliveryResult::Suppressed, m)),
            }
        }
        let mut attempts = 0;
        let mut sent: Vec<NotificationRequest> = Vec::new();
        if !to_send.is_empty() {
            let allowed = self
                .limiter
                .lock()
                .map(|mut l| l.try_take(&channel_key, now))
                .unwrap_or(true);
            let outcome = if !allowed {
                Err((
                    DeliveryResult::Suppressed,
                    format!(
                        "channel rate limit of {} messages per minute reached",
                        self.cfg.rate_per_minute
                    ),
                ))
            } else {
                match resolve_target(&self.resolver, &source.namespace, &ch.spec).await {
                    Err(e) => Err((DeliveryResult::Failed, e.to_string())),
                    Ok(target) => {
                        let batch = Batch {
                            receiver: ch.name.clone(),
                            source_kind: kind,
                            source: source.clone(),
                            group_labels: labels.clone(),
                            alerts: to_send.iter().map(|p| p.request.clone()).collect(),
                        };
                        let started = Instant::now();
                        let a = deliver(&self.ctx, self.cfg.retry, &target, &batch).await;
                        self.metrics
                            .delivery_seconds
                            .with_label_values(&[channel_kind.as_str()])
                            .observe(started.elapsed().as_secs_f64());
                        self.metrics
                            .retries
                            .with_label_values(&[channel_kind.as_str()])
                            .inc_by(u64::from(a.attempts.saturating_sub(1)));
                        attempts = a.attempts;
                        match a.result {
                            Ok(()) => Ok(()),
                            Err(e) => Err((DeliveryResult::Failed, e.message)),
                        }
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    for p in &to_send {
                        results.push((DeliveryResult::Sent, String::new()));
                        sent.push(p.request.clone());
                    }
                }
                Err((r, m)) => {
                    tracing::warn!(channel = %channel_key, result = r.as_str(), error = %m, "notification not delivered");
                    for _ in &to_send {
                        results.push((r, m.clone()));
                    }
                }
            }
        }
        for (r, _) in &results {
            self.metrics
                .notifications
                .with_label_values(&[channel_kind.as_str(), r.as_str()])
                .inc();
        }
        let ids: Vec<String> = todo.iter().map(|p| p.request.id.clone()).collect();
        self.mark_done(&ids, &ch.name, &channel_key, &sent, cfg, now)
            .await;
        let result = [
            DeliveryResult::Sent,
            DeliveryResult::Failed,
            DeliveryResult::Suppressed,
            DeliveryResult::Deduplicated,
        ]
        .into_iter()
        .find(|want| results.iter().any(|(r, _)| r == want))
        .unwrap_or(DeliveryResult::Deduplicated);
        let message = match result {
            DeliveryResult::Sent => {
                format!("delivered {} alert(s) in {attempts} attempt(s)", sent.len())
            }
            _ => results
                .iter()
                .find(|(r, _)| *r == result)
                .map(|(_, m)| m.clone())
                .unwrap_or_default(),
        };
        Some(ChannelOutcome {
            channel: ch.name.clone(),
            kind: channel_kind,
            result,
            attempts,
            time: Utc::now(),
            message,
            last_request_id: ids.last().cloned().unwrap_or_default(),
            alerts: u32::try_from(todo.len()).unwrap_or(u32::MAX),
        })
    }

    /// Marks `ids` done for `channel`, records `sent` in the history, finishes requests done
    /// with every channel, and saves.
    async fn mark_done(
        &self,
        ids: &[String],
        channel: &str,
        channel_key: &str,
        sent: &[NotificationRequest],
        cfg: &NotifyConfig,
        now: DateTime<Utc>,
    ) {
        let mut state = self.state.lock().await;
        for a in sent {
            policy::record_sent(&mut state.history, channel_key, a, now);
        }
        let names: Vec<&str> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
        let mut finished = Vec::new();
        for p in state.pending.iter_mut() {
            if ids.contains(&p.request.id) {
                p.done.insert(channel.to_owned());
                if names.iter().all(|n| p.done.contains(*n)) {
                    finished.push((p.request.id.clone(), p.accepted_at));
                }
            }
        }
        self.finish_locked(&mut state, finished, now);
        self.save_locked(&state).await;
    }

    async fn finish_ids(&self, ids: &[String], now: DateTime<Utc>) {
        let mut state = self.state.lock().await;
        let finished: Vec<(String, DateTime<Utc>)> = state
            .pending
            .iter()
            .filter(|p| ids.contains(&p.request.id))
            .map(|p| (p.request.id.clone(), p.accepted_at))
            .collect();
        self.finish_locked(&mut state, finished, now);
        self.save_locked(&state).await;
    }

    fn finish_locked(
        &self,
        state: &mut State,
        finished: Vec<(String, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) {
        for (id, at) in finished {
            state.pending.retain(|p| p.request.id != id);
            state.finished.insert(id, at);
        }
        let retention = self.cfg.id_retention;
        state
            .finished
            .retain(|_, at| (now - *at).to_std().unwrap_or(Duration::ZERO) < retention);
        if state.finished.len() > self.cfg.max_finished_ids {
            let mut times: Vec<DateTime<Utc>> = state.finished.values().copied().collect();
            times.sort_unstable();
            let cut = times[state.finished.len() - self.cfg.max_finished_ids];
            state.finished.retain(|_, at| *at >= cut);
        }
        policy::prune(
            &mut state.history,
            now,
            self.cfg.history_retention,
            self.cfg.max_history,
        );
        self.metrics.queue_depth.set(gauge(state.pending.len()));
    }

    async fn save_locked(&self, state: &State) {
        if let Err(e) = self.store.save(state).await {
            // The in-memory state is ahead of the store; the next save catches up. A crash
            // before then may repeat the deliveries since the last good save.
            self.metrics.store_errors.inc();
            tracing::error!(error = %e, "saving the notification outbox failed");
        }
    }

    /// Delivers until `shutdown` resolves: on every accepted request and every tick.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.process_due(Utc::now()).await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.tick) => {}
                _ = &mut shutdown => break,
            }
        }
    }
}

fn kind_order(k: SourceKind) -> u8 {
    match k {
        SourceKind::AlertRule => 0,
        SourceKind::AIAnalysis => 1,
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
