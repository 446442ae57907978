//! Fault localization: from a target's probe mesh (per-path probe counts, RTT), its agents'
//! liveness, host pressure, Node conditions and RDMA port state, infer a small ranked set of
//! **suspects** — a `node` (its NIC, link or host), a `link` (one pair) or a `domain` (a
//! topology domain such as a rack or leaf) — that explain the bad paths.
//!
//! The ideas, from the literature on datacenter mesh probing:
//! - every bad path is evidence against the elements on it, and a path that is fine clears
//!   them (Pingmesh, Guo et al., SIGCOMM 2015: full-mesh probing, per-server and per-ToR
//!   views; 007, Arzani et al., NSDI 2018: each bad flow votes for the links on its path);
//! - the answer is the smallest set of elements that explains the bad paths, found greedily
//!   — pick the element that explains the most unexplained loss, remove what it explains,
//!   repeat (007's ranking of votes; NetBouncer, Tan et al., NSDI 2019: device vs link
//!   inference, and its "a device is faulty when most of its paths are bad" rule);
//! - a node is to blame when most of its paths are bad **in both directions** (what it sends
//!   and what it is sent); when only its own probes fail while its peers reach it, the trouble
//!   is on the host, not in the network (R-Pingmesh, Liu et al., SIGCOMM 2024: separating
//!   host-side from network-side RTT and loss);
//! - a domain is to blame when paths into and across it are bad for most of its members.
//!
//! Loss is judged with [`crate::loss`]: a path is bad when its exact lower confidence bound at
//! the Bonferroni-corrected level over all paths reaches the warning threshold; a node's side
//! (or a domain's crossing) is bad when most of its paths show loss **and** the pooled probes
//! of all but its worst paths are significantly lossy, so one bad link does not make its ends
//! suspects and background loss scattered over a large fleet does not add up to anything.
//!
//! Pure: no clock, no IO. The caller keeps `since` across evaluations.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    health::Health,
    loss::{any_at_least, bonferroni, worst_rate, ProbeCounts, SCAN_WINDOWS},
};

#[cfg(test)]
mod tests;

/// Suspects returned at most (status carries fewer; see the CRD).
pub const MAX_SUSPECTS: usize = 32;

/// Whether a node's agent reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Liveness {
    /// Reported within two intervals.
    #[default]
    Fresh,
    /// Last report older than two intervals: its own paths are not current.
    Late,
    /// Nothing for more than three intervals (the missed-report rule of `health`).
    Silent,
}

/// One node of the target.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeInput {
    /// Node name.
    pub name: String,
    /// Topology domain (value of the target's `topologyKey` label).
    pub domain: Option<String>,
    /// Agent liveness.
    pub liveness: Liveness,
    /// Host-side evidence, one line each (CPU or PSI saturated, Node conditions, late agent).
    pub host: Vec<String>,
    /// The host evidence alone is a fault (`NotReady`, `NetworkUnavailable`).
    pub host_fault: bool,
    /// Network-side evidence from the node's own counters (RDMA port down, error rates).
    pub network: Vec<String>,
    /// The network evidence alone is a fault (an RDMA port down and not disabled).
    pub network_fault: bool,
}

/// One directed path: probes from `src` (which reported them) to `dst`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathInput {
    /// Index of the probing node in the node list.
    pub src: usize,
    /// Index of the probed node.
    pub dst: usize,
    /// Probe counts over [`SCAN_WINDOWS`] (newest 1, 2, 4, 8 reports).
    pub windows: [ProbeCounts; SCAN_WINDOWS.len()],
    /// RTT p99 at or beyond the warning threshold in the latest report.
    pub slow: bool,
}

/// Thresholds and error rate of one inference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Warning loss, 0–1 (the MonitorTarget's `thresholds.lossPercent.warning` / 100).
    pub loss_warning: f64,
    /// Critical loss, 0–1.
    pub loss_critical: f64,
    /// Family-wise error rate per evaluation ([`crate::loss::FAMILY_ALPHA`]).
    pub alpha: f64,
}

/// What a suspect is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspectKind {
    /// One node: its NIC, its link to the switch, or its host.
    Node,
    /// One pair of nodes.
    Link,
    /// A topology domain.
    Domain,
}

impl SuspectKind {
    /// `node`, `link` or `domain`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspectKind::Node => "node",
            SuspectKind::Link => "link",
            SuspectKind::Domain => "domain",
        }
    }
}

/// Where the trouble most likely is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// In the network: NIC, cable, switch port, switch.
    Network,
    /// On the host: CPU/memory pressure, Node conditions, the agent's own side.
    Host,
    /// The node is down or unreachable: its agent is silent and peers lose every probe.
    Down,
    /// The agent is silent but peers still reach the node.
    Agent,
}

impl Cause {
    /// `network`, `host`, `down` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Network => "network",
            Cause::Host => "host",
            Cause::Down => "down",
            Cause::Agent => "agent",
        }
    }
}

/// One suspect.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspect {
    /// `node`, `link` or `domain`.
    pub kind: SuspectKind,
    /// The node, for a node suspect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The two ends of a link (sorted), or the members of a domain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// The domain's label value, for a domain suspect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Network, host, down or agent.
    pub cause: Cause,
    /// Warning or Critical.
    pub severity: Health,
    /// 0–1: the share of the suspect's paths that are bad (for a link: how clean its ends
    /// are elsewhere).
    pub confidence: f64,
    /// Human text: how many of its paths are bad, the loss, which counters or conditions.
    pub evidence: String,
    /// The directed paths `(src, dst)` this suspect explains (their pair problems are
    /// grouped under it).
    #[serde(skip)]
    pub paths: Vec<(String, String)>,
}

impl Suspect {
    /// Stable identity across evaluations: `node/a`, `link/a–b`, `domain/x`.
    pub fn key(&self) -> String {
        match self.kind {
            SuspectKind::Node => format!("node/{}", self.node.as_deref().unwrap_or("")),
            SuspectKind::Link => format!("link/{}", self.nodes.join("–")),
            SuspectKind::Domain => format!("domain/{}", self.domain.as_deref().unwrap_or("")),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct PathClass {
    lossy: bool,
    bad: bool,
    slow: bool,
    lost: u64,
}

/// Verdict on a set of paths (a node's outgoing or incoming side, a domain's crossing).
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    paths: usize,
    lossy: usize,
    bad: usize,
    slow: usize,
    lost: u64,
    sent: u64,
    /// Pooled probes over the windows of all but the worst paths.
    pooled: [ProbeCounts; SCAN_WINDOWS.len()],
    /// Most paths lossy and the pooled loss significantly at or beyond the warning threshold.
    loss_bad: bool,
}

impl Side {
    /// At least half of its paths show loss: the loss is spread, not one path's.
    fn spread(&self) -> bool {
        self.paths > 0 && 2 * self.lossy >= self.paths
    }
    fn slow_bad(&self) -> bool {
        self.paths > 0 && 2 * self.slow > self.paths
    }
    fn bad(&self) -> bool {
        self.loss_bad || self.slow_bad()
    }
    fn merge(&mut self, o: Side) {
        self.paths += o.paths;
        self.lossy += o.lossy;
        self.bad += o.bad;
        self.slow += o.slow;
        self.lost += o.lost;
        self.sent += o.sent;
        for (a, b) in self.pooled.iter_mut().zip(o.pooled) {
            a.add(b);
        }
        self.loss_bad |= o.loss_bad;
    }
    fn bad_paths(&self) -> usize {
        self.lossy.max(self.slow)
    }
    /// The pooled loss the side has at least, 0–1 (for evidence and severity).
    fn lower(&self, alpha: f64) -> f64 {
        self.pooled
            .iter()
            .map(|w| w.lower(alpha))
            .fold(0.0, f64::max)
    }
}

struct Ctx<'a> {
    nodes: &'a [NodeInput],
    paths: &'a [PathInput],
    class: Vec<PathClass>,
    explained: Vec<bool>,
    out: Vec<Vec<usize>>,
    inn: Vec<Vec<usize>>,
    alpha_pool: f64,
    limits: Limits,
}

impl Ctx<'_> {
    /// The verdict on the unexplained paths among `idx`. The pooled bound leaves out the
    /// worst `max(1, n/8)` paths, so that loss concentrated on one or two paths (a link) does
    /// not make their common end look bad: the rest of its paths must show it too.
    fn side(&self, idx: impl Iterator<Item = usize>) -> Side {
        let mut s = Side::default();
        let mut members: Vec<usize> = idx.filter(|i| !self.explained[*i]).collect();
        for &i in &members {
            let c = self.class[i];
            s.paths += 1;
            s.lossy += usize::from(c.lossy);
            s.bad += usize::from(c.bad);
            s.slow += usize::from(c.slow);
            s.lost += c.lost;
            s.sent += self.paths[i].windows[SCAN_WINDOWS.len() - 1].sent;
        }
        members.sort_by_key(|i| std::cmp::Reverse(self.class[*i].lost));
        let trim = (members.len() / 8).max(1);
        for &i in members.iter().skip(trim) {
            for (p, w) in s.pooled.iter_mut().zip(self.paths[i].windows.iter()) {
                p.add(*w);
            }
        }
        // The cheap majority test first: on a healthy fleet it fails almost everywhere.
        s.loss_bad =
            s.spread() && any_at_least(&s.pooled, self.limits.loss_warning, self.alpha_pool);
        s
    }
}

struct Pick {
    suspect: Suspect,
    explains: Vec<usize>,
    score: u64,
}

fn pct(x: f64) -> String {
    let p = 100.0 * x;
    if p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn describe(what: &str, s: &Side, alpha: f64) -> String {
    let loss = if s.sent > 0 {
        format!(
            ", {} of {} probes lost (at least {})",
            s.lost,
            s.sent,
            pct(s.lower(alpha))
        )
    } else {
        String::new()
    };
    let slow = if s.slow > 0 {
        format!(", {} slow", s.slow)
    } else {
        String::new()
    };
    format!("{} of {} paths {what} lossy{slow}{loss}", s.lossy, s.paths)
}

fn severity(s: &Side, l: &Limits, alpha: f64) -> Health {
    if s.lower(alpha) >= l.loss_critical {
        Health::Critical
    } else {
        Health::Warning
    }
}

fn node_pick(cx: &Ctx, v: usize) -> Option<Pick> {
    let n = &cx.nodes[v];
    let l = &cx.limits;
    let fresh = n.liveness == Liveness::Fresh;
    let out = fresh.then(|| cx.side(cx.out[v].iter().copied()));
    let inn = cx.side(cx.inn[v].iter().copied());
    let a = cx.alpha_pool;
    let in_data = inn.paths > 0;
    // Both directions together: loss spread over each side, significant over both pooled
    // (twice the probes of one side, so a node fault shows sooner).
    let both_lossy = out.is_some_and(|o| {
        let mut all = o;
        all.merge(inn);
        o.spread()
            && inn.spread()
            && any_at_least(&all.pooled, cx.limits.loss_warning, cx.alpha_pool)
    });
    let out_bad = out.is_some_and(|s| s.paths > 0 && s.bad()) || both_lossy;
    let in_bad = in_data && (inn.bad() || both_lossy);
    let cause = match (fresh, out_bad, in_bad) {
        (false, _, true) => Cause::Down,
        (true, true, true) | (true, false, true) => Cause::Network,
        (true, true, false) if in_data => Cause::Host,
        (true, true, false) => Cause::Network,
        _ => return None,
    };
    let cause = if cause == Cause::Network && !n.host.is_empty() {
        Cause::Host
    } else {
        cause
    };
    let mut all = inn;
    if let Some(o) = out {
        all.merge(o);
    }
    let mut evidence = Vec::new();
    if cause == Cause::Down {
        evidence.push(format!(
            "agent {}; {}",
            if n.liveness == Liveness::Silent {
                "silent"
            } else {
                "late"
            },
            describe("to it", &inn, a)
        ));
    } else {
        if let Some(o) = out.filter(|o| o.paths > 0) {
            evidence.push(describe("from it", &o, a));
        }
        if in_data {
            evidence.push(describe("to it", &inn, a));
        }
        if cause == Cause::Host && !out_bad {
            // Host by evidence alone: say what the host shows.
        } else if cause == Cause::Host && !in_bad && in_data {
            evidence.push("its own probes fail while its peers reach it".into());
        }
    }
    evidence.extend(n.host.iter().cloned());
    evidence.extend(n.network.iter().cloned());
    let explains: Vec<usize> = cx.out[v]
        .iter()
        .chain(cx.inn[v].iter())
        .copied()
        .filter(|i| !cx.explained[*i])
        .collect();
    let share = if all.paths == 0 {
        0.0
    } else {
        all.bad_paths() as f64 / all.paths as f64
    };
    let confidence = if cause == Cause::Down {
        (inn.lossy as f64 / inn.paths.max(1) as f64).max(share)
    } else {
        share
    };
    let sev = if cause == Cause::Down {
        Health::Critical
    } else {
        severity(&all, l, a)
    };
    let score = all.lost + all.slow as u64;
    Some(Pick {
        suspect: Suspect {
            kind: SuspectKind::Node,
            node: Some(n.name.clone()),
            nodes: Vec::new(),
            domain: None,
            cause,
            severity: sev,
            confidence: confidence.clamp(0.0, 1.0),
            evidence: evidence.join("; "),
            paths: Vec::new(),
        },
        explains,
        score,
    })
}

fn domain_pick(cx: &Ctx, name: &str, members: &[usize]) -> Option<Pick> {
    let l = &cx.limits;
    let a = cx.alpha_pool;
    let in_domain = |i: usize| cx.nodes[i].domain.as_deref() == Some(name);
    let (mut cross_bad, mut cross_with_data, mut intra_bad, mut intra_with_data) = (0, 0, 0, 0);
    let (mut cross, mut intra) = (Side::default(), Side::default());
    let (mut cross_idx, mut intra_idx) = (Vec::new(), Vec::new());
    for &m in members {
        let mine = || {
            let out = if cx.nodes[m].liveness == Liveness::Fresh {
                cx.out[m].as_slice()
            } else {
                &[]
            };
            out.iter().chain(cx.inn[m].iter()).copied()
        };
        let other = |i: usize| {
            let p = &cx.paths[i];
            if p.src == m {
                p.dst
            } else {
                p.src
            }
        };
        let c: Vec<usize> = mine().filter(|i| !in_domain(other(*i))).collect();
        let a: Vec<usize> = mine().filter(|i| in_domain(other(*i))).collect();
        let cs = cx.side(c.iter().copied());
        let is = cx.side(a.iter().copied());
        if cs.paths > 0 {
            cross_with_data += 1;
            cross_bad += usize::from(cs.bad());
        }
        if is.paths > 0 {
            intra_with_data += 1;
            intra_bad += usize::from(is.bad());
        }
        cross.merge(cs);
        intra.merge(is);
        cross_idx.extend(c);
        intra_idx.extend(a);
    }
    let majority = |bad: usize, of: usize| bad >= 2 && 2 * bad > of;
    if !majority(cross_bad, cross_with_data) {
        return None;
    }
    let mut explains = cross_idx;
    let mut evidence = vec![format!(
        "{cross_bad} of {cross_with_data} members lossy across the domain; {}",
        describe("across it", &cross, a)
    )];
    let mut all = cross;
    if majority(intra_bad, intra_with_data) {
        explains.extend(intra_idx);
        all.merge(intra);
        evidence.push(describe("inside it", &intra, a));
    }
    explains.sort_unstable();
    explains.dedup();
    let mut names: Vec<String> = members.iter().map(|m| cx.nodes[*m].name.clone()).collect();
    names.sort();
    Some(Pick {
        suspect: Suspect {
            kind: SuspectKind::Domain,
            node: None,
            nodes: names,
            domain: Some(name.to_string()),
            cause: Cause::Network,
            severity: severity(&all, l, a),
            confidence: (cross.bad_paths() as f64 / cross.paths.max(1) as f64).clamp(0.0, 1.0),
            evidence: evidence.join("; "),
            paths: Vec::new(),
        },
        explains,
        score: all.lost + all.slow as u64,
    })
}

/// Infers the suspects of one target, most severe and most confident first, at most
/// [`MAX_SUSPECTS`].
///
/// Paths whose `src` is not [`Liveness::Fresh`] are ignored (their counts are old); indices
/// out of range are ignored. Greedy minimal explanation: domains and nodes compete on the
/// lost probes they explain; what is left are links (pairs whose probes are lossy at the
/// per-path level) and nodes whose own evidence is a fault (silent agents, NotReady, a port
/// down).
pub fn localize(nodes: &[NodeInput], paths: &[PathInput], limits: Limits) -> Vec<Suspect> {
    let n = nodes.len();
    let valid = |p: &PathInput| {
        p.src < n && p.dst < n && p.src != p.dst && nodes[p.src].liveness == Liveness::Fresh
    };
    let paths: Vec<PathInput> = paths.iter().filter(|p| valid(p)).cloned().collect();
    let alpha_path = bonferroni(limits.alpha, paths.len());
    let mut domains: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, nd) in nodes.iter().enumerate() {
        if let Some(d) = &nd.domain {
            domains.entry(d.as_str()).or_default().push(i);
        }
    }
    domains.retain(|_, m| m.len() >= 2);
    // Sides judged together: out and in per node, and per domain member its crossing and
    // inside (at most four per node).
    let alpha_pool = bonferroni(limits.alpha, 4 * n.max(1));
    let class: Vec<PathClass> = paths
        .iter()
        .map(|p| {
            let lost = p.windows[SCAN_WINDOWS.len() - 1].lost;
            PathClass {
                lossy: lost > 0 && worst_rate(&p.windows) >= limits.loss_warning,
                bad: any_at_least(&p.windows, limits.loss_warning, alpha_path),
                slow: p.slow,
                lost,
            }
        })
        .collect();
    let mut out = vec![Vec::new(); n];
    let mut inn = vec![Vec::new(); n];
    for (i, p) in paths.iter().enumerate() {
        out[p.src].push(i);
        inn[p.dst].push(i);
    }
    let mut cx = Ctx {
        nodes,
        paths: &paths,
        class,
        explained: vec![false; paths.len()],
        out,
        inn,
        alpha_pool,
        limits,
    };
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut is_suspect = vec![false; n];
    while suspects.len() < MAX_SUSPECTS {
        // Only nodes touching a lossy or slow path, or not reporting, can be picked.
        let touched: Vec<bool> = (0..n)
            .map(|v| {
                nodes[v].liveness != Liveness::Fresh
                    || cx.out[v]
                        .iter()
                        .chain(cx.inn[v].iter())
                        .any(|i| !cx.explained[*i] && (cx.class[*i].lossy || cx.class[*i].slow))
            })
            .collect();
        let mut best: Option<Pick> = None;
        let mut consider = |p: Option<Pick>| {
            if let Some(p) = p.filter(|p| p.score > 0 && !p.explains.is_empty()) {
                if best.as_ref().is_none_or(|b| p.score > b.score) {
                    best = Some(p);
                }
            }
        };
        for (name, members) in &domains {
            if members.iter().filter(|m| touched[**m]).count() >= 2 {
                consider(domain_pick(&cx, name, members));
            }
        }
        for v in (0..n).filter(|v| touched[*v] && !is_suspect[*v]) {
            consider(node_pick(&cx, v));
        }
        let Some(mut pick) = best else { break };
        for &i in &pick.explains {
            cx.explained[i] = true;
        }
        pick.suspect.paths = pick
            .explains
            .iter()
            .map(|i| {
                let p = &paths[*i];
                (nodes[p.src].name.clone(), nodes[p.dst].name.clone())
            })
            .collect();
        if let Some(name) = &pick.suspect.node {
            if let Some(v) = nodes.iter().position(|x| &x.name == name) {
                is_suspect[v] = true;
            }
        }
        if pick.suspect.kind == SuspectKind::Domain {
            for v in domains
                .get(pick.suspect.domain.as_deref().unwrap_or(""))
                .into_iter()
                .flatten()
            {
                is_suspect[*v] = true;
            }
        }
        suspects.push(pick.suspect);
    }
    // Nodes whose own state is a fault, whatever their paths show.
    for (v, nd) in nodes.iter().enumerate() {
        if is_suspect[v] {
            continue;
        }
        let inn = cx.side(cx.inn[v].iter().copied());
        let (cause, confidence, first) = if nd.liveness == Liveness::Silent {
            if inn.paths > 0 && !inn.bad() {
                (
                    Cause::Agent,
                    0.5,
                    format!(
                        "agent silent; {} — peers still reach the node",
                        describe("to it", &inn, alpha_pool)
                    ),
                )
            } else {
                (
                    Cause::Down,
                    0.6,
                    "agent silent; no peer probes it any more".to_string(),
                )
            }
        } else if nd.host_fault {
            (Cause::Host, 0.8, String::new())
        } else if nd.network_fault {
            (Cause::Network, 0.7, String::new())
        } else {
            continue;
        };
        let evidence: Vec<String> = std::iter::once(first)
            .filter(|s| !s.is_empty())
            .chain(nd.host.iter().cloned())
            .chain(nd.network.iter().cloned())
            .collect();
        is_suspect[v] = true;
        suspects.push(Suspect {
            kind: SuspectKind::Node,
            node: Some(nd.name.clone()),
            nodes: Vec::new(),
            domain: None,
            cause,
            severity: Health::Critical,
            confidence,
            evidence: evidence.join("; "),
            paths: Vec::new(),
        });
    }
    // Links: pairs with a lossy (per-path verdict) or slow path left unexplained.
    let mut pairs: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, p) in paths.iter().enumerate() {
        let c = cx.class[i];
        if !cx.explained[i] && (c.bad || c.slow) && !is_suspect[p.src] && !is_suspect[p.dst] {
            pairs
                .entry((p.src.min(p.dst), p.src.max(p.dst)))
                .or_default()
                .push(i);
        }
    }
    for ((a, b), idx) in pairs {
        let mut both: Vec<usize> = cx.out[a]
            .iter()
            .filter(|i| paths[**i].dst == b)
            .chain(cx.out[b].iter().filter(|i| paths[**i].dst == a))
            .copied()
            .collect();
        both.sort_unstable();
        let s = cx.side(both.iter().copied());
        // How clean each end is elsewhere: the share of its other paths that are fine.
        let elsewhere = |v: usize| {
            let others = cx.out[v]
                .iter()
                .chain(cx.inn[v].iter())
                .filter(|i| !both.contains(i))
                .copied();
            let o = cx.side(others);
            if o.paths == 0 {
                0.5
            } else {
                1.0 - o.bad.max(o.slow) as f64 / o.paths as f64
            }
        };
        let confidence = elsewhere(a).min(elsewhere(b));
        let mut ends = [nodes[a].name.clone(), nodes[b].name.clone()];
        ends.sort();
        let per_dir: Vec<String> = both
            .iter()
            .map(|i| {
                let p = &paths[*i];
                let w = p.windows[SCAN_WINDOWS.len() - 1];
                format!(
                    "{}→{} {} of {} probes lost{}",
                    nodes[p.src].name,
                    nodes[p.dst].name,
                    w.lost,
                    w.sent,
                    if p.slow { ", RTT p99 high" } else { "" }
                )
            })
            .collect();
        for i in &idx {
            cx.explained[*i] = true;
        }
        suspects.push(Suspect {
            kind: SuspectKind::Link,
            node: None,
            nodes: ends.to_vec(),
            domain: None,
            cause: Cause::Network,
            severity: severity(&s, &limits, alpha_path),
            confidence,
            evidence: format!(
                "{}; both ends fine on their other paths",
                per_dir.join(", ")
            ),
            paths: both
                .iter()
                .map(|i| {
                    (
                        nodes[paths[*i].src].name.clone(),
                        nodes[paths[*i].dst].name.clone(),
                    )
                })
                .collect(),
        });
    }
    suspects.sort_by(|x, y| {
        y.severity
            .rank()
            .cmp(&x.severity.rank())
            .then(y.confidence.total_cmp(&x.confidence))
            .then_with(|| x.key().cmp(&y.key()))
    });
    suspects.truncate(MAX_SUSPECTS);
    suspects
}
