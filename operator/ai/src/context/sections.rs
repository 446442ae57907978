//! The context's sections, one function each: which items a section lists, in which order
//! (worst first), and how one item renders as one line.

use std::cmp::Ordering;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::format::{clean, count_bucket, num};
use super::{ContextLimits, Section};
use crate::anonymize::{Anonymizer, EntityKind};
use crate::situation::{Health, KubeEvent, Situation};

/// Title of the suspects section; the LLM stand-in of the `testing` feature reads it back.
pub const SUSPECTS_TITLE: &str = "suspects (kind name cause severity confidence | evidence)";

pub(super) fn suspects(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<_> = s.suspects.iter().collect();
    items.sort_by(|a, b| {
        worst_first(a.severity)
            .cmp(&worst_first(b.severity))
            .then_with(|| b.confidence.total_cmp(&a.confidence))
            .then_with(|| a.nodes.cmp(&b.nodes))
    });
    let lines = items
        .into_iter()
        .map(|x| {
            let names: Vec<String> = x
                .nodes
                .iter()
                .take(l.max_nodes_per_alert)
                .map(|n| an.name(EntityKind::Node, n))
                .collect();
            let name = match (x.kind.as_str(), &x.domain) {
                ("domain", Some(d)) => clean(an, d, 63),
                _ => names.join(","),
            };
            let mut line = format!(
                "{} {} {} {} confidence={}",
                clean(an, &x.kind, 16),
                name,
                clean(an, &x.cause, 16),
                x.severity.as_str(),
                num(x.confidence)
            );
            if x.kind == "domain" && !names.is_empty() {
                let _ = write!(line, " members={}", names.join(","));
                if x.nodes.len() > names.len() {
                    let _ = write!(line, ",+{}", x.nodes.len() - names.len());
                }
            }
            push_since(&mut line, x.since);
            if !x.evidence.is_empty() {
                let _ = write!(line, " | {}", clean(an, &x.evidence, l.max_text_chars));
            }
            line
        })
        .collect();
    Section {
        title: SUSPECTS_TITLE,
        lines,
    }
}

pub(super) fn alerts(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<_> = s.alerts.iter().collect();
    items.sort_by(|a, b| {
        // Most severe first.
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.since.cmp(&b.since))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let lines = items
        .into_iter()
        .map(|a| {
            let mut line = format!(
                "{} {} {}={} (threshold {})",
                clean(an, a.severity.as_str(), 16),
                clean(an, &a.rule, 63),
                clean(an, &a.metric, 63),
                num(a.value),
                num(a.threshold)
            );
            if !a.nodes.is_empty() {
                let mut names: Vec<&String> = a.nodes.iter().collect();
                names.sort();
                let shown: Vec<String> = names
                    .iter()
                    .take(l.max_nodes_per_alert)
                    .map(|n| an.name(EntityKind::Node, n))
                    .collect();
                let _ = write!(line, " nodes={}", shown.join(","));
                if names.len() > shown.len() {
                    let _ = write!(line, ",+{}", names.len() - shown.len());
                }
            }
            push_since(&mut line, a.since);
            line
        })
        .collect();
    Section {
        title: "firing alerts (severity rule metric=value)",
        lines,
    }
}

pub(super) fn anomalies(s: &Situation, an: &mut Anonymizer) -> Section {
    let mut items: Vec<_> = s.anomalies.iter().collect();
    items.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.metric.cmp(&b.metric))
    });
    let lines = items
        .into_iter()
        .map(|a| {
            let mut line = format!(
                "{} {} score={} value={}",
                an.name(EntityKind::Node, &a.node),
                clean(an, &a.metric, 63),
                num(a.score),
                num(a.value)
            );
            if let Some(b) = a.baseline {
                let _ = write!(line, " baseline={}", num(b));
            }
            push_since(&mut line, a.since);
            line
        })
        .collect();
    Section {
        title: "anomalies (node metric, highest score first)",
        lines,
    }
}

pub(super) fn nodes(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<_> = s
        .nodes
        .iter()
        .filter(|n| n.health != Health::Healthy)
        .collect();
    items.sort_by(|a, b| {
        worst_first(a.health)
            .cmp(&worst_first(b.health))
            .then_with(|| opt_cmp(a.score, b.score))
            .then_with(|| a.node.cmp(&b.node))
    });
    let lines = items
        .into_iter()
        .map(|n| {
            let mut line = format!(
                "{} {}",
                an.name(EntityKind::Node, &n.node),
                n.health.as_str()
            );
            if let Some(score) = n.score {
                let _ = write!(line, " score={}", num(score));
            }
            if let Some(addr) = &n.address {
                let _ = write!(line, " addr={}", clean(an, addr, 45));
            }
            for p in n.problems.iter().take(l.max_problems_per_node) {
                let _ = write!(line, " | {}", clean(an, p, l.max_text_chars));
            }
            line
        })
        .collect();
    Section {
        title: "nodes not healthy (node health score | problems)",
        lines,
    }
}

pub(super) fn rdma(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<_> = s.rdma_ports.iter().filter(|p| p.is_interesting()).collect();
    let active = |p: &crate::situation::RdmaPortStats| p.state.eq_ignore_ascii_case("ACTIVE");
    items.sort_by(|a, b| {
        active(a)
            .cmp(&active(b))
            .then_with(|| b.link_flaps.cmp(&a.link_flaps))
            .then_with(|| b.error_rate_per_minute.total_cmp(&a.error_rate_per_minute))
            .then_with(|| (&a.node, &a.device, a.port).cmp(&(&b.node, &b.device, b.port)))
    });
    let lines = items
        .into_iter()
        .map(|p| {
            let mut line = format!(
                "{} {}/{} {} {} err_per_min={} flaps={}",
                an.name(EntityKind::Node, &p.node),
                clean(an, &p.device, 32),
                p.port,
                clean(an, &p.state, 16),
                clean(an, &p.link_layer, 16),
                num(p.error_rate_per_minute),
                p.link_flaps
            );
            let mut deltas: Vec<_> = p.counter_deltas.iter().filter(|(_, v)| **v > 0).collect();
            deltas.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            if !deltas.is_empty() {
                line.push_str(" deltas:");
                for (k, v) in deltas.into_iter().take(l.max_counters_per_port) {
                    let _ = write!(line, " {}={}", clean(an, k, 48), v);
                }
            }
            let mut cong: Vec<_> = p
                .congestion_per_second
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .collect();
            cong.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
            if !cong.is_empty() {
                line.push_str(" congestion_per_s:");
                for (k, v) in cong.into_iter().take(l.max_counters_per_port) {
                    let _ = write!(line, " {}={}", clean(an, k, 48), num(*v));
                }
            }
            line
        })
        .collect();
    Section {
        title: "rdma ports needing attention (node device/port state link_layer)",
        lines,
    }
}

pub(super) fn peers(s: &Situation, an: &mut Anonymizer) -> Section {
    let mut items: Vec<_> = s.peers.iter().collect();
    items.sort_by(|a, b| {
        b.loss_percent
            .total_cmp(&a.loss_percent)
            .then_with(|| opt_cmp(b.rtt_p99_seconds, a.rtt_p99_seconds))
            .then_with(|| opt_cmp(b.jitter_seconds, a.jitter_seconds))
            .then_with(|| (&a.source, &a.peer).cmp(&(&b.source, &b.peer)))
    });
    let lines = items
        .into_iter()
        .map(|p| {
            let peer = if p.external {
                format!("external:{}", clean(an, &p.peer, 63))
            } else {
                an.name(EntityKind::Node, &p.peer)
            };
            let mut line = format!(
                "{}->{} loss={}%",
                an.name(EntityKind::Node, &p.source),
                peer,
                num(p.loss_percent)
            );
            for (label, v) in [
                ("rtt_p50", p.rtt_p50_seconds),
                ("rtt_p99", p.rtt_p99_seconds),
                ("jitter", p.jitter_seconds),
            ] {
                if let Some(v) = v {
                    let _ = write!(line, " {label}={}ms", num(v * 1000.0));
                }
            }
            line
        })
        .collect();
    Section {
        title: "worst peers (source->peer loss rtt jitter)",
        lines,
    }
}

pub(super) fn hosts(s: &Situation, an: &mut Anonymizer) -> Section {
    let mut items: Vec<_> = s.hosts.iter().collect();
    items.sort_by(|a, b| {
        b.pressure()
            .total_cmp(&a.pressure())
            .then_with(|| a.node.cmp(&b.node))
    });
    let lines = items
        .into_iter()
        .map(|h| {
            let mut line = format!(
                "{} cpu={}% mem={}%",
                an.name(EntityKind::Node, &h.node),
                num(h.cpu_usage_percent),
                num(h.memory_used_percent)
            );
            for (label, v) in [
                ("disk_free_min", h.disk_free_percent_min),
                ("psi_cpu_some", h.psi_cpu_some_avg10),
                ("psi_mem_full", h.psi_memory_full_avg10),
                ("psi_io_full", h.psi_io_full_avg10),
            ] {
                if let Some(v) = v {
                    let _ = write!(line, " {label}={}%", num(v));
                }
            }
            line
        })
        .collect();
    Section {
        title: "host pressure (worst first)",
        lines,
    }
}

pub(super) fn events(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<&KubeEvent> = s.events.iter().collect();
    items.sort_by(|a, b| {
        let warn = |e: &KubeEvent| !e.type_.eq_ignore_ascii_case("Warning");
        warn(a)
            .cmp(&warn(b))
            .then_with(|| b.last_seen.cmp(&a.last_seen))
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| {
                (&a.namespace, &a.name, &a.reason).cmp(&(&b.namespace, &b.name, &b.reason))
            })
            .then_with(|| a.message.cmp(&b.message))
    });
    let lines = items
        .into_iter()
        .map(|e| {
            let object = match e.kind {
                crate::situation::EventObjectKind::Node => {
                    format!("Node {}", an.name(EntityKind::Node, &e.name))
                }
                crate::situation::EventObjectKind::Pod => format!(
                    "Pod {}/{}",
                    an.name(EntityKind::Namespace, &e.namespace),
                    an.name(EntityKind::Pod, &e.name)
                ),
            };
            // No timestamp: the order says what is newest, and a changing `lastTimestamp`
            // would defeat the answer cache.
            let mut line = format!(
                "{} {} {} {}",
                clean(an, &e.type_, 16),
                object,
                clean(an, &e.reason, 63),
                count_bucket(e.count)
            );
            let msg = clean(an, &e.message, l.max_text_chars);
            // JSON string quoting keeps a multi-line or quote-laden message on one line.
            let quoted = serde_json::to_string(&msg).unwrap_or_default();
            let _ = write!(line, ": {quoted}");
            line
        })
        .collect();
    Section {
        title: "kubernetes events, newest first (type object reason count: message)",
        lines,
    }
}

/// Appends ` since=` and the time in RFC 3339 UTC to whole seconds, when there is one.
fn push_since(line: &mut String, since: Option<DateTime<Utc>>) {
    if let Some(since) = since {
        let _ = write!(line, " since={}", since.format("%Y-%m-%dT%H:%M:%SZ"));
    }
}

/// Sort key putting the worst health first: Critical, Warning, Unknown, Healthy.
fn worst_first(h: Health) -> std::cmp::Reverse<u8> {
    std::cmp::Reverse(h.rank())
}

/// Ascending order with `None` last.
fn opt_cmp(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
