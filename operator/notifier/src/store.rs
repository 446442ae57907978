//! The durable outbox: what was accepted and not yet finished, the accepted ids, and the
//! delivery history. The engine saves it before it acknowledges a request and after every
//! channel delivery, so a restart resumes exactly where the last save left off.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::History;
use fabricwatch_proto::notify::NotificationRequest;

/// Version of the persisted [`State`] layout.
pub const STATE_VERSION: u32 = 1;

/// One accepted request not yet delivered to all its channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The request as accepted.
    pub request: NotificationRequest,
    /// When it was accepted (group wait counts from the first of a group).
    pub accepted_at: DateTime<Utc>,
    /// Channels (by name) this request is finished with, whatever the result.
    #[serde(default)]
    pub done: BTreeSet<String>,
}

/// Everything the notifier persists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Layout version, [`STATE_VERSION`].
    #[serde(default)]
    pub version: u32,
    /// The outbox, in acceptance order.
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// Ids of finished requests and when they were accepted (the idempotency window).
    #[serde(default)]
    pub finished: BTreeMap<String, DateTime<Utc>>,
    /// Delivery history for dedup and cooldown.
    #[serde(default)]
    pub history: History,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the write.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The stored state could not be decoded.
    #[error("stored state is corrupt: {0}")]
    Corrupt(String),
}

/// Where [`State`] is kept. Implementations save atomically: after `save` returns `Ok`,
/// a later `load` (in this or a new process) returns that state.
pub trait Store: Send + Sync + 'static {
    /// Loads the last saved state (default when nothing was saved yet).
    fn load(&self) -> impl Future<Output = Result<State, StoreError>> + Send;
    /// Saves `state`, replacing the previous one.
    fn save(&self, state: &State) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store in memory, shared by clones: a "restart" is a new engine on a clone. It keeps
/// the JSON text, so what it returns went through the same encoding as a real store.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    json: Arc<Mutex<Option<String>>>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryStore {
    /// Makes every following `save` fail (`true`) or succeed again (`false`).
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::Relaxed);
    }

    /// The saved JSON, if any.
    pub fn json(&self) -> Option<String> {
        self.json.lock().ok().and_then(|g| g.clone())
    }
}

impl Store for MemoryStore {
    async fn load(&self) -> Result<State, StoreError> {
        let text = self
            .json
            .lock()
            .map_err(|_| StoreError::Unavailable("lock poisoned".into()))?
            .clone();
        match text {
            Some(t) => decode(&t),
            None => Ok(State::default()),
        }
    }

    async fn save(&self, state: &State) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("memory store set to fail".into()));
        }
        let text = encode(state)?;
        *self
            .json
            .lock()
            .map_err(|_| StoreError::Unavailable("lock poisoned".into()))? = Some(text);
        Ok(())
    }
}

/// JSON text of a state.
///
/// # Errors
/// [`StoreError::Corrupt`] if it cannot be encoded (not expected for these types).
pub fn encode(state: &State) -> Result<String, StoreError> {
    serde_json::to_string(state).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Decodes a state.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad JSON or an unknown newer layout version.
pub fn decode(text: &str) -> Result<State, StoreError> {
    let s: State = serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if s.version > STATE_VERSION {
        return Err(StoreError::Corrupt(format!(
            "state version {} is newer than this notifier understands ({STATE_VERSION})",
            s.version
        )));
    }
    Ok(s)
}
