//! Waiting with timeouts (on watches, never fixed sleeps), with a readable dump on failure.

use crate::dump;
use kube::runtime::wait::{await_condition, Condition};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

/// A wait that did not succeed, with a dump of what the cluster looked like at that moment:
/// the object itself, its events and, for namespaced objects, the namespace's pods with
/// their container states and log tails. Its `Display` prints the summary and the dump.
#[derive(Debug)]
pub struct WaitError {
    /// One line: what was awaited and why it failed.
    pub summary: String,
    /// The multi-line dump.
    pub dump: String,
}

impl Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}", self.summary, self.dump)
    }
}

impl std::error::Error for WaitError {}

impl WaitError {
    async fn new<K>(api: &Api<K>, name: &str, summary: String) -> WaitError
    where
        K: Resource + Clone + Debug + DeserializeOwned + Serialize,
        <K as Resource>::DynamicType: Default,
    {
        WaitError {
            summary,
            dump: dump::dump_for(api, name).await,
        }
    }
}

fn describe<K: Resource>(api: &Api<K>, name: &str) -> String
where
    <K as Resource>::DynamicType: Default,
{
    let dt = <K as Resource>::DynamicType::default();
    let kind = K::kind(&dt);
    match api.namespace() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Wait until the object `name` satisfies `condition` (a
/// [`kube::runtime::wait::Condition`], e.g. from [`crate::conditions`] or a closure
/// `|obj: Option<&K>| -> bool`), watching it, for at most `timeout`. Returns the object.
///
/// On timeout (or when the condition matched a missing object, or the watch failed) the
/// error is a [`WaitError`] whose text carries a dump of the object, its events and the
/// namespace's pods and logs.
pub async fn wait_for<K, C>(
    api: &Api<K>,
    name: &str,
    condition: C,
    timeout: Duration,
) -> Result<K, WaitError>
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + Serialize + 'static,
    <K as Resource>::DynamicType: Default,
    C: Condition<K>,
{
    let what = describe(api, name);
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => Err(WaitError::new(
            api,
            name,
            format!("waiting for {what}: the condition held but the object does not exist"),
        )
        .await),
        Ok(Err(e)) => Err(WaitError::new(api, name, format!("waiting for {what}: {e}")).await),
        Err(_) => Err(WaitError::new(
            api,
            name,
            format!("timed out after {timeout:?} waiting for {what}"),
        )
        .await),
    }
}

/// Wait until the object `name` does not exist (any more).
pub async fn wait_for_deletion<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError>
where
    K: Resource + Clone + Debug + Send + DeserializeOwned + Serialize + 'static,
    <K as Resource>::DynamicType: Default,
{
    let what = describe(api, name);
    let gone = |obj: Option<&K>| obj.is_none();
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, gone)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            Err(WaitError::new(api, name, format!("waiting for deletion of {what}: {e}")).await)
        }
        Err(_) => Err(WaitError::new(
            api,
            name,
            format!("timed out after {timeout:?} waiting for deletion of {what}"),
        )
        .await),
    }
}

/// Retry `attempt` until it returns `Ok` or `timeout` has passed, for things that cannot be
/// watched (an HTTP endpoint, a ping through a freshly programmed network). Retries every
/// 250 ms, doubling up to 2 s; the final error names `what`, the attempts and the last error.
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(250);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let result = match tokio::time::timeout(left.max(Duration::from_millis(1)), attempt()).await
        {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "attempt did not finish before the deadline"
            )),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() + delay >= deadline => {
                return Err(e.context(format!(
                    "{what}: still failing after {attempts} attempts in {timeout:?}"
                )));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
