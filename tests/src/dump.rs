//! Readable dumps of cluster state for failing tests. Dump functions never fail: problems
//! while collecting are written into the dump text.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::{Debug, Write};

/// Log lines shown per container.
const LOG_TAIL_LINES: i64 = 40;

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The object as YAML (without `managedFields`), or why it could not be read.
pub async fn dump_object<K>(api: &Api<K>, name: &str) -> String
where
    K: Resource + Clone + Debug + DeserializeOwned + Serialize,
{
    match api.get_opt(name).await {
        Ok(Some(obj)) => {
            let mut v = match serde_json::to_value(&obj) {
                Ok(v) => v,
                Err(e) => return format!("(cannot serialise {name}: {e})\n"),
            };
            if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("managedFields");
            }
            serde_yaml::to_string(&v).unwrap_or_else(|e| format!("(cannot render {name}: {e})\n"))
        }
        Ok(None) => format!("({name} does not exist)\n"),
        Err(e) => format!("(cannot read {name}: {e})\n"),
    }
}

fn event_time(e: &Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
        .unwrap_or_default()
}

/// Events, oldest first: in `namespace` (all namespaces when `None`), only those about an
/// object named `involved` when given.
pub async fn dump_events(
    client: &Client,
    namespace: Option<&str>,
    involved: Option<&str>,
) -> String {
    let api: Api<Event> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut lp = ListParams::default();
    if let Some(name) = involved {
        lp = lp.fields(&format!("involvedObject.name={name}"));
    }
    let mut events = match api.list(&lp).await {
        Ok(list) => list.items,
        Err(e) => return format!("(cannot list events: {e})\n"),
    };
    if events.is_empty() {
        return "(no events)\n".to_string();
    }
    events.sort_by_key(event_time);
    let mut out = String::new();
    for e in &events {
        let count = e
            .count
            .filter(|c| *c > 1)
            .map(|c| format!(" (x{c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {:<7} {:<20} {}/{}{}: {}",
            event_time(e),
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.involved_object.kind.as_deref().unwrap_or(""),
            e.involved_object.name.as_deref().unwrap_or(""),
            count,
            e.message.as_deref().unwrap_or("").trim()
        );
    }
    out
}

fn container_line(c: &ContainerStatus) -> String {
    let state = c
        .state
        .as_ref()
        .map(|s| {
            if let Some(w) = &s.waiting {
                format!(
                    "Waiting {}: {}",
                    w.reason.as_deref().unwrap_or("?"),
                    w.message.as_deref().unwrap_or("")
                )
            } else if let Some(t) = &s.terminated {
                format!(
                    "Terminated exit={} {}: {}",
                    t.exit_code,
                    t.reason.as_deref().unwrap_or(""),
                    t.message.as_deref().unwrap_or("")
                )
            } else if s.running.is_some() {
                "Running".to_string()
            } else {
                "?".to_string()
            }
        })
        .unwrap_or_else(|| "no state".to_string());
    let last = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            format!(
                "; last run: exit={} {} {}",
                t.exit_code,
                t.reason.as_deref().unwrap_or(""),
                t.message.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    format!(
        "  container {}: ready={} restarts={} image={} {}{}",
        c.name,
        c.ready,
        c.restart_count,
        c.image,
        state,
        last.trim_end()
    )
}

/// Every pod in `namespace`: phase, node, IP, not-True conditions, container states and
/// the last lines of each container's log (and of its previous run after a restart).
pub async fn dump_pods(client: &Client, namespace: &str) -> String {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match api.list(&ListParams::default()).await {
        Ok(list) if list.items.is_empty() => "(no pods)\n".to_string(),
        Ok(list) => describe_pods(client, &list.items).await,
        Err(e) => format!("(cannot list pods: {e})\n"),
    }
}

/// Label selector of the fabricwatch component pods (operator, analytics, notifier, agents)
/// whose state and logs every failed wait also dumps, wherever they run:
/// `FABRICWATCH_DUMP_SELECTOR`, default `app.kubernetes.io/name=fabricwatch`.
pub fn component_selector() -> String {
    std::env::var("FABRICWATCH_DUMP_SELECTOR")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "app.kubernetes.io/name=fabricwatch".to_string())
}

/// The fabricwatch component pods (see [`component_selector`]) in all namespaces except
/// `except`, with their container states and log tails; empty when there are none.
pub async fn dump_components(client: &Client, except: Option<&str>) -> String {
    let selector = component_selector();
    let api: Api<Pod> = Api::all(client.clone());
    match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            let pods: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| p.namespace().as_deref() != except)
                .collect();
            if pods.is_empty() {
                String::new()
            } else {
                format!(
                    "---- fabricwatch components ({selector})\n{}",
                    describe_pods(client, &pods).await
                )
            }
        }
        Err(e) => format!("---- fabricwatch components ({selector})\n(cannot list pods: {e})\n"),
    }
}

async fn describe_pods(client: &Client, pods: &[Pod]) -> String {
    let mut out = String::new();
    for pod in pods {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let name = pod.name_any();
        let status = pod.status.clone().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "pod/{name} (namespace {namespace}): phase={} node={node} ip={}{}",
            status.phase.as_deref().unwrap_or("?"),
            status.pod_ip.as_deref().unwrap_or("-"),
            status
                .message
                .as_deref()
                .map(|m| format!(" message={m}"))
                .unwrap_or_default()
        );
        for c in status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status != "True")
        {
            let _ = writeln!(
                out,
                "  condition {}={} {}: {}",
                c.type_,
                c.status,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            );
        }
        let statuses: Vec<&ContainerStatus> = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .collect();
        for c in &statuses {
            let _ = writeln!(out, "{}", container_line(c));
        }
        for c in &statuses {
            let started =
                c.state.as_ref().is_some_and(|s| s.waiting.is_none()) || c.restart_count > 0;
            if !started {
                continue;
            }
            for previous in [true, false] {
                if previous && c.restart_count == 0 {
                    continue;
                }
                let lp = LogParams {
                    container: Some(c.name.clone()),
                    tail_lines: Some(LOG_TAIL_LINES),
                    previous,
                    ..Default::default()
                };
                let label = if previous { " (previous run)" } else { "" };
                match api.logs(&name, &lp).await {
                    Ok(log) if log.trim().is_empty() => {
                        let _ = writeln!(out, "  log {}{label}: (empty)", c.name);
                    }
                    Ok(log) => {
                        let _ = write!(
                            out,
                            "  log {}{label} (last {LOG_TAIL_LINES} lines):\n{}",
                            c.name,
                            indent(&log, "    | ")
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  log {}{label}: (unavailable: {e})", c.name);
                    }
                }
            }
        }
    }
    out
}

async fn dump_workloads(client: &Client, namespace: &str) -> String {
    let mut out = String::new();
    match Api::<DaemonSet>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            for ds in list.items {
                let s = ds.status.clone().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "daemonset/{}: desired={} scheduled={} ready={} updated={} unavailable={}",
                    ds.name_any(),
                    s.desired_number_scheduled,
                    s.current_number_scheduled,
                    s.number_ready,
                    s.updated_number_scheduled.unwrap_or(0),
                    s.number_unavailable.unwrap_or(0)
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "(cannot list daemonsets: {e})");
        }
    }
    match Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            for d in list.items {
                let s = d.status.clone().unwrap_or_default();
                let want = d.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(1);
                let _ = writeln!(
                    out,
                    "deployment/{}: replicas={want} ready={} updated={} available={}",
                    d.name_any(),
                    s.ready_replicas.unwrap_or(0),
                    s.updated_replicas.unwrap_or(0),
                    s.available_replicas.unwrap_or(0)
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "(cannot list deployments: {e})");
        }
    }
    out
}

/// Everything in a namespace: DaemonSets and Deployments, pods with their logs, and events.
pub async fn dump_namespace(client: &Client, namespace: &str) -> String {
    format!(
        "---- workloads in namespace {namespace}\n{}---- pods in namespace {namespace}\n{}---- events in namespace {namespace}\n{}",
        dump_workloads(client, namespace).await,
        dump_pods(client, namespace).await,
        dump_events(client, Some(namespace), None).await
    )
}

/// The dump for a failed wait on `name`: the object, then its namespace (or, for a
/// cluster-scoped object, its events).
pub(crate) async fn dump_for<K>(api: &Api<K>, name: &str) -> String
where
    K: Resource + Clone + Debug + DeserializeOwned + Serialize,
    <K as Resource>::DynamicType: Default,
{
    let dt = <K as Resource>::DynamicType::default();
    let kind = K::kind(&dt);
    let object = dump_object(api, name).await;
    let client = api.clone().into_client();
    let rest = match api.namespace() {
        Some(ns) => dump_namespace(&client, ns).await,
        None => format!(
            "---- events about {name}\n{}",
            dump_events(&client, None, Some(name)).await
        ),
    };
    let components = dump_components(&client, api.namespace()).await;
    format!(
        "---- {kind} {name}\n{}{rest}{components}",
        indent(&object, "  ")
    )
}
