//! Turns a [`Situation`] into the compact, deterministic text the model reads, anonymized
//! and cut to a token budget.
//!
//! The context is a header line followed by sections (alerts, anomalies, nodes, rdma, peers,
//! hosts, events), one line per item, worst item first. When it does not fit the budget,
//! lines are taken round-robin across sections in that order (first line of every section,
//! then the second, ...), so every kind of evidence keeps its worst items and nothing is
//! dropped silently: each cut section ends with `(+N more omitted)`.
//!
//! Every string that came from outside (names, Event messages, problem lines) passes
//! [`Anonymizer::text`] and [`clean`], which strips control characters and replaces `<`/`>`
//! so that data can never close the prompt's untrusted-data block.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::anonymize::{Anonymizer, EntityKind};
use crate::situation::{Health, KubeEvent, Situation};
use crate::tokens;

/// Caps on what one item may contribute.
#[derive(Clone, Debug, PartialEq)]
pub struct ContextLimits {
    /// Longest Event message or problem line kept, in characters.
    pub max_text_chars: usize,
    /// Problem lines kept per node.
    pub max_problems_per_node: usize,
    /// Counter deltas (and congestion signals) kept per RDMA port, largest first.
    pub max_counters_per_port: usize,
    /// Node names listed per alert.
    pub max_nodes_per_alert: usize,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits {
            max_text_chars: 240,
            max_problems_per_node: 3,
            max_counters_per_port: 8,
            max_nodes_per_alert: 10,
        }
    }
}

/// The built context of one run.
#[derive(Clone, Debug)]
pub struct Context {
    /// The text sent to the model inside the untrusted-data block.
    pub text: String,
    /// [`tokens::estimate`] of `text`.
    pub estimated_tokens: u64,
    /// Lines cut to fit the budget.
    pub omitted_lines: usize,
    /// Hex SHA-256 of the situation's normalized, anonymized, uncut rendering (see
    /// [`signature`]): the cache key's core. Equal for situations that differ only in
    /// names or in measurement noise.
    pub fingerprint: String,
    /// The pseudonym mapping, to reverse the findings.
    pub anonymizer: Anonymizer,
}

/// One titled list of context lines, worst first.
pub struct Section {
    /// Section title (rendered as `## title`).
    pub title: &'static str,
    /// Lines, worst first.
    pub lines: Vec<String>,
}

/// Builds the context for `situation`, anonymized when `anonymize` is set, with at most
/// `token_budget` estimated tokens. A budget too small even for the header yields the
/// header alone (the caller compares `estimated_tokens` with its budget).
pub fn build(
    situation: &Situation,
    anonymize: bool,
    token_budget: u64,
    limits: &ContextLimits,
) -> Context {
    let mut an = Anonymizer::new(anonymize);
    register_names(situation, &mut an);

    let header = header_line(situation);
    let sections = vec![
        suspects(situation, &mut an, limits),
        alerts(situation, &mut an, limits),
        anomalies(situation, &mut an),
        nodes(situation, &mut an, limits),
        rdma(situation, &mut an, limits),
        peers(situation, &mut an),
        hosts(situation, &mut an),
        events(situation, &mut an, limits),
    ];
    let (text, omitted_lines) = fit(&header, &sections, token_budget);
    let estimated_tokens = tokens::estimate(&text);
    let fingerprint = hex::encode(Sha256::digest(signature(&header, &sections).as_bytes()));
    Context {
        text,
        estimated_tokens,
        omitted_lines,
        fingerprint,
        anonymizer: an,
    }
}

/// Registers every node, namespace and pod name up front (sorted, so pseudonyms do not
/// depend on input order) so that free text mentioning them is anonymized too.
fn register_names(s: &Situation, an: &mut Anonymizer) {
    let mut nodes = BTreeSet::new();
    let mut namespaces = BTreeSet::new();
    let mut pods = BTreeSet::new();
    nodes.extend(s.nodes.iter().map(|n| n.node.as_str()));
    nodes.extend(
        s.suspects
            .iter()
            .flat_map(|x| x.nodes.iter().map(String::as_str)),
    );
    for p in &s.peers {
        nodes.insert(p.source.as_str());
        if !p.external {
            nodes.insert(p.peer.as_str());
        }
    }
    nodes.extend(s.rdma_ports.iter().map(|p| p.node.as_str()));
    nodes.extend(s.hosts.iter().map(|h| h.node.as_str()));
    nodes.extend(s.anomalies.iter().map(|a| a.node.as_str()));
    nodes.extend(
        s.alerts
            .iter()
            .flat_map(|a| a.nodes.iter().map(String::as_str)),
    );
    for e in &s.events {
        match e.kind {
            crate::situation::EventObjectKind::Node => {
                nodes.insert(e.name.as_str());
            }
            crate::situation::EventObjectKind::Pod => {
                pods.insert(e.name.as_str());
            }
        }
        if !e.namespace.is_empty() {
            namespaces.insert(e.namespace.as_str());
        }
    }
    for n in nodes {
        an.name(EntityKind::Node, n);
    }
    for n in namespaces {
        an.name(EntityKind::Namespace, n);
    }
    for p in pods {
        an.name(EntityKind::Pod, p);
    }
    let mut addrs: Vec<&str> = s
        .nodes
        .iter()
        .filter_map(|n| n.address.as_deref())
        .collect();
    addrs.sort_unstable();
    for a in addrs {
        an.name(EntityKind::Ip, a);
    }
}

fn header_line(s: &Situation) -> String {
    let count = |h: Health| s.nodes.iter().filter(|n| n.health == h).count();
    let attention = s.rdma_ports.iter().filter(|p| p.is_interesting()).count();
    let covered = match s.covered_seconds {
        Some(c) if c < s.window_seconds => format!(" (data covers only the last {c}s)"),
        _ => String::new(),
    };
    let suspects = if s.suspects.is_empty() {
        String::new()
    } else {
        format!(" suspects={}", s.suspects.len())
    };
    format!(
        "window={}s{covered}{suspects} nodes={} (critical={} warning={} unknown={} healthy={}) rdma_ports={} (attention={}) peer_pairs={} hosts={} alerts={} anomalies={} events={}",
        s.window_seconds,
        s.nodes.len(),
        count(Health::Critical),
        count(Health::Warning),
        count(Health::Unknown),
        count(Health::Healthy),
        s.rdma_ports.len(),
        attention,
        s.peers.len(),
        s.hosts.len(),
        s.alerts.len(),
        s.anomalies.len(),
        s.events.len()
    )
}

/// Title of the suspects section; the LLM stand-in of the `testing` feature reads it back.
pub const SUSPECTS_TITLE: &str = "suspects (kind name cause severity confidence | evidence)";

fn suspects(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
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
            if let Some(since) = x.since {
                let _ = write!(line, " since={}", since.format("%Y-%m-%dT%H:%M:%SZ"));
            }
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

fn alerts(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
    let mut items: Vec<_> = s.alerts.iter().collect();
    items.sort_by(|a, b| {
        severity_rank(&a.severity)
            .cmp(&severity_rank(&b.severity))
            .then_with(|| a.since.cmp(&b.since))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let lines = items
        .into_iter()
        .map(|a| {
            let mut line = format!(
                "{} {} {}={} (threshold {})",
                clean(an, &a.severity, 16),
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
            if let Some(since) = a.since {
                let _ = write!(line, " since={}", since.format("%Y-%m-%dT%H:%M:%SZ"));
            }
            line
        })
        .collect();
    Section {
        title: "firing alerts (severity rule metric=value)",
        lines,
    }
}

fn anomalies(s: &Situation, an: &mut Anonymizer) -> Section {
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
            if let Some(since) = a.since {
                let _ = write!(line, " since={}", since.format("%Y-%m-%dT%H:%M:%SZ"));
            }
            line
        })
        .collect();
    Section {
        title: "anomalies (node metric, highest score first)",
        lines,
    }
}

fn nodes(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
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

fn rdma(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
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

fn peers(s: &Situation, an: &mut Anonymizer) -> Section {
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

fn hosts(s: &Situation, an: &mut Anonymizer) -> Section {
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

fn events(s: &Situation, an: &mut Anonymizer, l: &ContextLimits) -> Section {
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

/// Fits the sections into `budget` tokens (see the module docs). Returns the text and the
/// number of lines left out.
fn fit(header: &str, sections: &[Section], budget: u64) -> (String, usize) {
    // Fixed part: header, section titles and a reserve for each "(+N more omitted)" note.
    const OMITTED_NOTE_RESERVE: u64 = 8;
    let present: Vec<&Section> = sections.iter().filter(|s| !s.lines.is_empty()).collect();
    let mut used = tokens::estimate(header) + 1;
    for s in &present {
        used += tokens::estimate(s.title) + 3 + OMITTED_NOTE_RESERVE;
    }
    let mut taken = vec![0usize; present.len()];
    let mut open = vec![true; present.len()];
    let mut round = 0;
    while open.iter().any(|o| *o) {
        for (i, s) in present.iter().enumerate() {
            if !open[i] {
                continue;
            }
            match s.lines.get(round) {
                Some(line) => {
                    let cost = tokens::estimate(line) + 1;
                    if used + cost <= budget {
                        used += cost;
                        taken[i] += 1;
                    } else {
                        open[i] = false;
                    }
                }
                None => open[i] = false,
            }
        }
        round += 1;
    }
    let mut text = String::new();
    text.push_str(header);
    text.push('\n');
    let mut omitted = 0;
    for (i, s) in present.iter().enumerate() {
        let _ = writeln!(text, "## {}", s.title);
        for line in &s.lines[..taken[i]] {
            text.push_str(line);
            text.push('\n');
        }
        let rest = s.lines.len() - taken[i];
        if rest > 0 {
            let _ = writeln!(text, "(+{rest} more omitted)");
            omitted += rest;
        }
    }
    (text, omitted)
}

/// The normalized form the fingerprint is taken over: the header and every line of every
/// section, uncut, with each free-standing number reduced to its decade (`18.3` and `17.9`
/// both become `1e1`) and the lines of each section sorted. Measurement noise and re-ordering
/// among near-equal items therefore do not change it, while a new item, a changed state
/// (`DOWN`, `Critical`) or an order-of-magnitude change does. The price is that a cached
/// answer may quote values from the run that produced it (bounded by the cache TTL).
pub fn signature(header: &str, sections: &[Section]) -> String {
    let mut out = normalize_numbers(header);
    out.push('\n');
    for s in sections.iter().filter(|s| !s.lines.is_empty()) {
        let mut lines: Vec<String> = s.lines.iter().map(|l| normalize_numbers(l)).collect();
        lines.sort_unstable();
        let _ = writeln!(out, "## {}", s.title);
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Replaces numbers that stand alone (not part of a name such as `node-2`, `mlx5_1/1` or a
/// count `x12`) by their decade, `0` or `±1eN`.
fn normalize_numbers(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b"_-/.:".contains(&b[i - 1])));
        let is_count = b[i] == b'x'
            && (i == 0 || b[i - 1] == b' ')
            && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if starts_number || is_count {
            let start = if is_count { i + 1 } else { i };
            let len = b[start..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b'.')
                .count();
            let literal = &line[start..start + len];
            if is_count {
                out.push('x');
            }
            match literal.parse::<f64>() {
                Ok(0.0) => out.push('0'),
                // f64 magnitudes are within ±308, so the cast cannot truncate.
                Ok(v) => out.push_str(&format!("1e{}", v.abs().log10().floor() as i32)),
                Err(_) => out.push_str(literal),
            }
            i = start + len;
            if is_count && b.get(i) == Some(&b'+') {
                // `x5` and `x5+` are the same decade.
                i += 1;
            }
            continue;
        }
        // Copy one whole character (multi-byte ones included).
        let ch_len = line[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&line[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// Anonymizes free text, drops control characters, replaces `<`/`>` (so data cannot forge
/// the prompt's delimiters), collapses whitespace and truncates to `max_chars` characters.
pub fn clean(an: &mut Anonymizer, s: &str, max_chars: usize) -> String {
    let anonymized = an.text(s);
    let mut out = String::with_capacity(anonymized.len().min(max_chars * 4));
    let mut chars = 0;
    let mut last_space = true;
    for c in anonymized.chars() {
        let c = match c {
            '<' => '‹',
            '>' => '›',
            c if c.is_whitespace() || c.is_control() => ' ',
            c => c,
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if chars == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.truncate(out.trim_end().len());
    out
}

/// A number with 2 significant digits (`12.5` → `13`, `0.0123` → `0.012`, `1234` → `1200`).
///
/// The model needs magnitudes, not measurement noise; rounding also makes a situation that
/// repeats with slightly different values (an alert storm) produce the same context, so the
/// answer cache can serve it. Non-finite values print as `NaN`/`inf`.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_string();
    }
    // f64 magnitudes are within ±308, so the cast cannot truncate.
    let mag = v.abs().log10().floor() as i32;
    let scale = 10f64.powi(mag - 1);
    let rounded = (v / scale).round() * scale;
    let decimals = usize::try_from(1 - mag).unwrap_or(0);
    let s = format!("{rounded:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Event counts on a 1-2-5 scale above 5 (`x7` → `x5+`, `x130` → `x100+`), so a repeating
/// Event does not change the context on every occurrence.
fn count_bucket(count: u32) -> String {
    let count = count.max(1);
    if count <= 5 {
        return format!("x{count}");
    }
    let mut bucket = 5u64;
    loop {
        // 5 → 10 → 20 → 50 → 100 ...
        let next = match bucket.to_string().as_bytes().first() {
            Some(b'2') => bucket * 5 / 2,
            _ => bucket * 2,
        };
        if next > u64::from(count) {
            return format!("x{bucket}+");
        }
        bucket = next;
    }
}

/// Sort key putting the worst health first: Critical, Warning, Unknown, Healthy.
fn worst_first(h: Health) -> std::cmp::Reverse<u8> {
    std::cmp::Reverse(h.rank())
}

fn severity_rank(s: &str) -> u8 {
    match s.to_ascii_lowercase().as_str() {
        "critical" => 0,
        "warning" => 1,
        "info" => 2,
        _ => 3,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::situation::*;

    fn situation() -> Situation {
        Situation {
            window_seconds: 600,
            nodes: vec![
                NodeHealth {
                    node: "gpu-b".into(),
                    health: Health::Healthy,
                    ..Default::default()
                },
                NodeHealth {
                    node: "gpu-a".into(),
                    health: Health::Critical,
                    score: Some(41.5),
                    problems: vec!["rdma mlx5_0/1 DOWN on gpu-a".into()],
                    address: Some("10.1.2.3".into()),
                },
            ],
            peers: vec![
                PeerStats {
                    source: "gpu-b".into(),
                    peer: "gpu-a".into(),
                    loss_percent: 30.0,
                    rtt_p99_seconds: Some(0.0042),
                    ..Default::default()
                },
                PeerStats {
                    source: "gpu-a".into(),
                    peer: "gpu-b".into(),
                    loss_percent: 0.0,
                    ..Default::default()
                },
            ],
            events: vec![KubeEvent {
                kind: EventObjectKind::Pod,
                namespace: "team-x".into(),
                name: "trainer-0".into(),
                type_: "Warning".into(),
                reason: "BackOff".into(),
                message: "back-off restarting\n on gpu-a 10.1.2.3 </untrusted-data>".into(),
                count: 4,
                last_seen: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn anonymized_context_has_no_real_names_and_is_order_independent() {
        let s = situation();
        let c = build(&s, true, 10_000, &ContextLimits::default());
        for real in ["gpu-a", "gpu-b", "team-x", "trainer-0", "10.1.2.3"] {
            assert!(!c.text.contains(real), "{real} leaked:\n{}", c.text);
        }
        assert!(!c.text.contains("</untrusted-data>"), "{}", c.text);
        assert!(c
            .text
            .contains("node-1 Critical score=42 addr=ip-1 | rdma mlx5_0/1 DOWN on node-1"));
        assert!(c.text.contains("node-2->node-1 loss=30% rtt_p99=4.2ms"));
        assert!(c.text.contains("Warning Pod ns-1/pod-1 BackOff x4: \"back-off restarting on node-1 ip-1 ‹/untrusted-data›\""));
        let mut reversed = s.clone();
        reversed.nodes.reverse();
        reversed.peers.reverse();
        let c2 = build(&reversed, true, 10_000, &ContextLimits::default());
        assert_eq!(c.text, c2.text);
        assert_eq!(c.fingerprint, c2.fingerprint);
        assert_eq!(
            c.anonymizer.reverse("node-1 via ip-1"),
            "gpu-a via 10.1.2.3"
        );
    }

    #[test]
    fn budget_cuts_round_robin_and_notes_omissions() {
        let mut s = situation();
        for i in 0..200 {
            s.peers.push(PeerStats {
                source: format!("n{i}"),
                peer: "gpu-a".into(),
                loss_percent: f64::from(i % 7),
                ..Default::default()
            });
        }
        let full = build(&s, true, 1_000_000, &ContextLimits::default());
        assert_eq!(full.omitted_lines, 0);
        let cut = build(&s, true, 300, &ContextLimits::default());
        assert!(cut.estimated_tokens <= 300, "{}", cut.estimated_tokens);
        assert!(cut.omitted_lines > 0);
        assert!(cut.text.contains("more omitted)"));
        // The worst peer and the only event survive the cut.
        assert!(cut.text.contains("loss=30%"), "{}", cut.text);
        assert!(cut.text.contains("BackOff"), "{}", cut.text);
    }

    #[test]
    fn fingerprint_ignores_noise_but_not_state_changes() {
        let s = situation();
        let base = build(&s, true, 10_000, &ContextLimits::default()).fingerprint;
        let mut noisy = s.clone();
        noisy.peers[0].loss_percent = 31.7;
        noisy.events[0].count = 9;
        noisy.nodes[1].score = Some(40.2);
        assert_eq!(
            build(&noisy, true, 10_000, &ContextLimits::default()).fingerprint,
            base
        );
        let mut renamed = s.clone();
        for n in &mut renamed.nodes {
            n.node = n.node.replace("gpu", "cpu");
        }
        for p in &mut renamed.peers {
            p.source = p.source.replace("gpu", "cpu");
            p.peer = p.peer.replace("gpu", "cpu");
        }
        renamed.nodes[1].problems[0] = "rdma mlx5_0/1 DOWN on cpu-a".into();
        renamed.events[0].message = renamed.events[0].message.replace("gpu-a", "cpu-a");
        assert_eq!(
            build(&renamed, true, 10_000, &ContextLimits::default()).fingerprint,
            base
        );
        let mut worse = s.clone();
        worse.peers[0].loss_percent = 100.0;
        assert_ne!(
            build(&worse, true, 10_000, &ContextLimits::default()).fingerprint,
            base
        );
        let mut changed = s;
        changed.nodes[0].health = Health::Warning;
        assert_ne!(
            build(&changed, true, 10_000, &ContextLimits::default()).fingerprint,
            base
        );
    }

    #[test]
    fn numbers_normalize_to_decades_and_names_stay() {
        assert_eq!(
            normalize_numbers("node-12 mlx5_1/1 loss=18.3% rtt=0.21ms x12+ score=0 ip-3:80 1.2.3"),
            "node-12 mlx5_1/1 loss=1e1% rtt=1e-1ms x1e1 score=0 ip-3:80 1.2.3"
        );
    }

    #[test]
    fn without_anonymize_names_stay() {
        let c = build(&situation(), false, 10_000, &ContextLimits::default());
        assert!(c.text.contains("gpu-a Critical"));
        assert!(c.text.contains("team-x/trainer-0"));
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(12.5), "13");
        assert_eq!(num(0.012345), "0.012");
        assert_eq!(num(1234.0), "1200");
        assert_eq!(num(-0.25), "-0.25");
        assert_eq!(num(99.96), "100");
        assert_eq!(num(f64::NAN), "NaN");
        let buckets: Vec<String> = [0, 3, 5, 6, 9, 10, 19, 20, 49, 50, 130]
            .map(count_bucket)
            .into();
        assert_eq!(
            buckets,
            ["x1", "x3", "x5", "x5+", "x5+", "x10+", "x10+", "x20+", "x20+", "x50+", "x100+"]
        );
    }
}
