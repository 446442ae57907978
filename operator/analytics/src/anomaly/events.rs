//! Anomaly onsets as Kubernetes Events on their MonitorTarget (reason `AnomalyDetected`,
//! type Warning, reporter `fabricwatch-analytics`), read from the fleet's anomaly log.
//!
//! Bounded: at most [`MAX_EVENTS_PER_TARGET`] Events per target per round; more onsets in the
//! same round (a fabric-wide incident) are summed up in one more Event.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use fabricwatch_crds::{MonitorTarget, FIELD_MANAGER_ANALYTICS};
use fabricwatch_proto::ObjectRef;
use kube::{
    runtime::{
        events::{Event, EventType, Recorder, Reporter},
        reflector::{ObjectRef as KubeRef, Store},
    },
    Client, Resource,
};

use super::log::AnomalyRecord;
use crate::state::{lock, Shared};

/// Events per target per round.
pub const MAX_EVENTS_PER_TARGET: usize = 10;

/// Onsets newer than `after`, grouped by target, oldest first.
pub fn new_onsets(
    records: Vec<(ObjectRef, AnomalyRecord)>,
    after: DateTime<Utc>,
) -> BTreeMap<ObjectRef, Vec<AnomalyRecord>> {
    let mut out: BTreeMap<ObjectRef, Vec<AnomalyRecord>> = BTreeMap::new();
    for (t, r) in records.into_iter().filter(|(_, r)| r.since > after) {
        out.entry(t).or_default().push(r);
    }
    for v in out.values_mut() {
        v.sort_by_key(|r| r.since);
    }
    out
}

/// Note of the Event of one onset.
pub fn note(r: &AnomalyRecord) -> String {
    format!(
        "anomaly on node {}: {} (score {:.1}) since {}",
        r.node,
        r.series,
        r.score,
        r.since.to_rfc3339()
    )
}

/// Publishes Events for new onsets every `every`, until the process ends.
pub async fn publish_loop(
    client: Client,
    shared: Arc<Shared>,
    targets: Store<MonitorTarget>,
    every: Duration,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: FIELD_MANAGER_ANALYTICS.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    // Onsets before the start are not announced again (their Events were published then).
    let mut cursor = Utc::now();
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let records = lock(&shared.fleet).anomalies(None, 1000);
        let fresh = new_onsets(records, cursor);
        for (target, onsets) in fresh {
            if let Some(newest) = onsets.last() {
                cursor = cursor.max(newest.since);
            }
            let Some(obj) = targets.get(&KubeRef::new(&target.name).within(&target.namespace))
            else {
                continue;
            };
            let reference = obj.object_ref(&());
            let mut events: Vec<Event> = onsets
                .iter()
                .take(MAX_EVENTS_PER_TARGET)
                .map(|r| event(note(r)))
                .collect();
            if onsets.len() > MAX_EVENTS_PER_TARGET {
                events.push(event(format!(
                    "{} more anomaly onsets on {} nodes (GET /api/v1/anomalies?namespace={}&name={})",
                    onsets.len() - MAX_EVENTS_PER_TARGET,
                    onsets
                        .iter()
                        .skip(MAX_EVENTS_PER_TARGET)
                        .map(|r| r.node.as_str())
                        .collect::<std::collections::BTreeSet<_>>()
                        .len(),
                    target.namespace,
                    target.name
                )));
            }
            for e in events {
                if let Err(err) = recorder.publish(&e, &reference).await {
                    tracing::warn!(namespace = %target.namespace, target = %target.name, "publishing anomaly Event failed: {err}");
                }
            }
        }
    }
}

fn event(note: String) -> Event {
    Event {
        type_: EventType::Warning,
        reason: "AnomalyDetected".into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Detect".into(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_onsets_after_the_cursor_grouped_oldest_first() {
        let t = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid");
        let target = ObjectRef {
            namespace: "fw".into(),
            name: "fabric".into(),
        };
        let rec = |node: &str, s: i64| AnomalyRecord {
            node: node.into(),
            series: "cpu_usage_percent".into(),
            score: 5.0,
            since: t(s),
            ended: None,
        };
        let got = new_onsets(
            vec![
                (target.clone(), rec("b", 30)),
                (target.clone(), rec("a", 10)),
                (target.clone(), rec("c", 20)),
            ],
            t(10),
        );
        let nodes: Vec<_> = got[&target].iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["c", "b"]);
        assert!(note(&got[&target][0]).contains("node c: cpu_usage_percent (score 5.0)"));
    }
}
