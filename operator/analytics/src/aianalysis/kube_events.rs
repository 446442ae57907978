//! Recent Kubernetes Events of the affected nodes and pods, reduced to what a diagnosis
//! needs. The selectors and the conversion are pure; [`list`] does the listing.

use chrono::{DateTime, Utc};
use fabricwatch_ai::situation::{EventObjectKind, KubeEvent};
use k8s_openapi::api::core::v1::Event;
use kube::{
    api::{Api, ListParams},
    Client,
};

use crate::rules::from_time;

/// Most Events listed per object.
pub const PER_OBJECT: u32 = 10;
/// Most Events kept per analysis.
pub const MAX_EVENTS: usize = 40;
/// Most objects (nodes + pods) whose Events are listed per run.
pub const MAX_OBJECTS: usize = 12;

/// An object whose Events are wanted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Involved {
    /// Node or Pod.
    pub kind: EventObjectKind,
    /// Namespace (empty for a Node).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The field selector for `involved`'s Events (core/v1 `involvedObject.*` fields, which
/// kube-apiserver supports as field selectors for Events since 1.0).
pub fn field_selector(involved: &Involved) -> String {
    let kind = match involved.kind {
        EventObjectKind::Node => "Node",
        EventObjectKind::Pod => "Pod",
    };
    format!(
        "involvedObject.kind={kind},involvedObject.name={}",
        involved.name
    )
}

fn last_seen(e: &Event) -> Option<DateTime<Utc>> {
    e.last_timestamp
        .as_ref()
        .or(e.first_timestamp.as_ref())
        .and_then(from_time)
        .or_else(|| {
            e.event_time
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        })
}

/// Converts a core/v1 Event; `None` when it is older than `since`.
pub fn convert(e: &Event, kind: EventObjectKind, since: DateTime<Utc>) -> Option<KubeEvent> {
    let seen = last_seen(e);
    if seen.is_some_and(|s| s < since) {
        return None;
    }
    Some(KubeEvent {
        kind,
        namespace: e.involved_object.namespace.clone().unwrap_or_default(),
        name: e.involved_object.name.clone().unwrap_or_default(),
        type_: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        message: e
            .message
            .clone()
            .unwrap_or_default()
            .chars()
            .take(1000)
            .collect(),
        count: e.count.unwrap_or(1).max(0) as u32,
        last_seen: seen,
    })
}

/// Lists the Events of up to [`MAX_OBJECTS`] objects seen since `since`, newest first, at
/// most [`MAX_EVENTS`]. A failed list is logged and skipped (the run goes on without them).
pub async fn list(client: &Client, objects: &[Involved], since: DateTime<Utc>) -> Vec<KubeEvent> {
    let mut out = Vec::new();
    for o in objects.iter().take(MAX_OBJECTS) {
        let api: Api<Event> = if o.namespace.is_empty() {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), &o.namespace)
        };
        let lp = ListParams::default()
            .fields(&field_selector(o))
            .limit(PER_OBJECT);
        match api.list(&lp).await {
            Ok(list) => out.extend(list.items.iter().filter_map(|e| convert(e, o.kind, since))),
            Err(e) => tracing::warn!(object = %o.name, "listing Events failed: {e}"),
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    out.truncate(MAX_EVENTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    #[test]
    fn selector_and_conversion() {
        let node = Involved {
            kind: EventObjectKind::Node,
            namespace: String::new(),
            name: "gpu-a".into(),
        };
        assert_eq!(
            field_selector(&node),
            "involvedObject.kind=Node,involvedObject.name=gpu-a"
        );
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("t");
        let ev = Event {
            involved_object: ObjectReference {
                kind: Some("Node".into()),
                name: Some("gpu-a".into()),
                ..ObjectReference::default()
            },
            type_: Some("Warning".into()),
            reason: Some("NodeNotReady".into()),
            message: Some("Node gpu-a status is now: NodeNotReady".into()),
            count: Some(3),
            last_timestamp: Some(crate::rules::to_time(at)),
            ..Event::default()
        };
        let k = convert(&ev, EventObjectKind::Node, at).expect("recent");
        assert_eq!(
            (k.name.as_str(), k.reason.as_str(), k.count),
            ("gpu-a", "NodeNotReady", 3)
        );
        assert_eq!(k.last_seen, Some(at));
        assert!(convert(
            &ev,
            EventObjectKind::Node,
            at + chrono::Duration::seconds(1)
        )
        .is_none());
    }
}
