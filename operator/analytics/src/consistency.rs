//! Fleet consistency of RDMA ports across the nodes of one target: what is usual for the
//! fleet, and the ports that differ from it.
//!
//! * **Firmware drift**: devices of one board type (`board_id`) running different `fw_ver`.
//! * **PFC / DCQCN**: a priority with PFC, or the DCQCN reaction/notification point,
//!   enabled on some RoCE ports and not on others. Ports whose driver does not tell are
//!   left out (unknown is not "off").
//! * **Trained down**: an ACTIVE port whose rate or width is below the most common one of
//!   the ACTIVE ports of its board type and link layer.
//!
//! "Usual" is the most common value (ties: every side is reported for firmware and
//! enable switches, since neither is the majority; for rate and width the higher value).
//! Each check needs at least two ports (devices) to compare. Every finding is a Warning.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::derive::{NodeSample, PortSample};

/// One port or device that differs from the fleet.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inconsistency {
    /// Node.
    pub node: String,
    /// `rdma/<device>/firmware`, `rdma/<device>/<port>/pfc`, `.../dcqcn`, `.../link`.
    pub component: String,
    /// Human text naming the value here and the usual one.
    pub message: String,
}

fn board(p: &PortSample) -> Option<&str> {
    let id = p.identity.as_ref()?;
    id.board_id
        .as_deref()
        .or(id.hca_type.as_deref())
        .filter(|b| !b.is_empty())
}

/// Most common value with its count; `None` when there is a tie for the top.
fn mode<K: Ord + Clone>(counts: &BTreeMap<K, usize>) -> Option<(K, usize)> {
    let top = counts.values().copied().max()?;
    let mut it = counts.iter().filter(|(_, c)| **c == top);
    let first = it.next()?;
    it.next().is_none().then(|| (first.0.clone(), top))
}

/// `4X` → 4.
fn width(p: &PortSample) -> Option<u32> {
    p.identity
        .as_ref()?
        .link_width
        .as_deref()?
        .strip_suffix('X')?
        .parse()
        .ok()
}

fn link_text(p: &PortSample) -> String {
    let id = p.identity.as_ref();
    let w = id.and_then(|i| i.link_width.as_deref()).unwrap_or("");
    let s = id.and_then(|i| i.link_speed.as_deref()).unwrap_or("");
    let rate = p.rate_gbps.map(|r| format!("{r} Gb/s")).unwrap_or_default();
    format!("{rate} ({w} {s})")
        .replace("( )", "")
        .replace(" )", ")")
        .trim()
        .to_string()
}

/// Every inconsistency among `nodes` (name, latest sample of a reporting node).
pub fn check<'a>(nodes: impl IntoIterator<Item = (&'a str, &'a NodeSample)>) -> Vec<Inconsistency> {
    let ports: Vec<(&str, &PortSample)> = nodes
        .into_iter()
        .flat_map(|(n, s)| s.ports.iter().map(move |p| (n, p)))
        .collect();
    let mut out = Vec::new();
    firmware(&ports, &mut out);
    switches(&ports, &mut out);
    trained_down(&ports, &mut out);
    out.sort_by(|a, b| (&a.node, &a.component).cmp(&(&b.node, &b.component)));
    out
}

fn firmware(ports: &[(&str, &PortSample)], out: &mut Vec<Inconsistency>) {
    // One entry per device (its ports share the firmware).
    let mut devices: BTreeMap<(&str, &str), (&str, &str)> = BTreeMap::new();
    for (node, p) in ports {
        let fw = p.identity.as_ref().and_then(|i| i.fw_ver.as_deref());
        if let (Some(b), Some(fw)) = (board(p), fw) {
            devices.insert((node, &p.device), (b, fw));
        }
    }
    let mut by_board: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (b, fw) in devices.values() {
        *by_board.entry(b).or_default().entry(fw).or_default() += 1;
    }
    for ((node, device), (b, fw)) in &devices {
        let counts = &by_board[b];
        if counts.len() < 2 {
            continue;
        }
        let total: usize = counts.values().sum();
        let message = match mode(counts) {
            Some((usual, _)) if usual == *fw => continue,
            Some((usual, n)) => format!(
                "firmware {fw} on {device} differs from {usual} on {n} of {total} devices with board {b}"
            ),
            None => format!(
                "firmware {fw} on {device}: devices with board {b} run {} different versions ({})",
                counts.len(),
                counts
                    .iter()
                    .map(|(v, n)| format!("{v} on {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push(Inconsistency {
            node: node.to_string(),
            component: format!("rdma/{device}/firmware"),
            message,
        });
    }
}

/// (component suffix, what, enabled priorities of a port or `None` when unknown).
type Switch = (
    &'static str,
    &'static str,
    fn(&PortSample) -> Option<Vec<u8>>,
);

const SWITCHES: &[Switch] = &[
    ("pfc", "PFC", |p| p.pfc_enabled_priorities.clone()),
    ("dcqcn", "DCQCN reaction point", |p| {
        let d = p.dcqcn.as_ref()?;
        Some(d.rp_enabled_priorities.clone())
    }),
    ("dcqcn-np", "DCQCN notification point", |p| {
        let d = p.dcqcn.as_ref()?;
        Some(d.np_enabled_priorities.clone())
    }),
];

fn switches(ports: &[(&str, &PortSample)], out: &mut Vec<Inconsistency>) {
    for (suffix, what, get) in SWITCHES {
        let known: Vec<(&str, &PortSample, Vec<u8>)> = ports
            .iter()
            .filter_map(|(n, p)| Some((*n, *p, get(p)?)))
            .collect();
        if known.len() < 2 {
            continue;
        }
        let unknown_prio = |p: &PortSample, prio: u8| {
            *suffix != "pfc"
                && p.dcqcn
                    .as_ref()
                    .is_some_and(|d| d.unknown_priorities.contains(&prio))
        };
        for (node, p, enabled) in &known {
            let mut lines = Vec::new();
            for prio in 0u8..8 {
                if unknown_prio(p, prio) {
                    continue;
                }
                let (mut on, mut off) = (0usize, 0usize);
                for (_, q, e) in &known {
                    if unknown_prio(q, prio) {
                        continue;
                    }
                    if e.contains(&prio) {
                        on += 1
                    } else {
                        off += 1
                    }
                }
                let here = enabled.contains(&prio);
                let (same, other) = if here { (on, off) } else { (off, on) };
                // Reported when this side is not the larger one.
                if other > 0 && same <= other {
                    lines.push(format!(
                        "priority {prio} {} here, {} on {other} of {} ports",
                        if here { "on" } else { "off" },
                        if here { "off" } else { "on" },
                        on + off
                    ));
                }
            }
            if !lines.is_empty() {
                let nd = p
                    .netdev
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                out.push(Inconsistency {
                    node: node.to_string(),
                    component: format!("rdma/{}/{}/{suffix}", p.device, p.port),
                    message: format!(
                        "{what} differs from the fleet on {}/{}{nd}: {}",
                        p.device,
                        p.port,
                        lines.join("; ")
                    ),
                });
            }
        }
    }
}

fn trained_down(ports: &[(&str, &PortSample)], out: &mut Vec<Inconsistency>) {
    let active: Vec<(&str, &PortSample, &str)> = ports
        .iter()
        .filter(|(_, p)| p.is_active())
        .filter_map(|(n, p)| Some((*n, *p, board(p)?)))
        .collect();
    // Rates as integer Mb/s so they can be counted.
    let mbps = |p: &PortSample| p.rate_gbps.map(|r| (r * 1000.0).round() as u64);
    let mut rates: BTreeMap<(&str, &str), BTreeMap<u64, usize>> = BTreeMap::new();
    let mut widths: BTreeMap<(&str, &str), BTreeMap<u32, usize>> = BTreeMap::new();
    for (_, p, b) in &active {
        let key = (*b, p.link_layer.as_str());
        if let Some(r) = mbps(p) {
            *rates.entry(key).or_default().entry(r).or_default() += 1;
        }
        if let Some(w) = width(p) {
            *widths.entry(key).or_default().entry(w).or_default() += 1;
        }
    }
    // Ties go to the higher value: the fleet's capability, not its failures.
    fn usual<K: Ord + Copy>(m: Option<&BTreeMap<K, usize>>) -> Option<(K, usize, usize)> {
        let m = m?;
        let total: usize = m.values().sum();
        let top = m.values().copied().max()?;
        let k = m.iter().rev().find(|(_, c)| **c == top)?.0;
        (total >= 2).then_some((*k, top, total))
    }
    for (node, p, b) in &active {
        let key = (*b, p.link_layer.as_str());
        let slow = usual(rates.get(&key)).filter(|(u, _, _)| mbps(p).is_some_and(|r| r < *u));
        let narrow = usual(widths.get(&key)).filter(|(u, _, _)| width(p).is_some_and(|w| w < *u));
        let usual_text = match (slow, narrow) {
            (Some((r, n, t)), _) => format!("{} Gb/s of {n} of {t}", r as f64 / 1000.0),
            (None, Some((w, n, t))) => format!("{w}X width of {n} of {t}"),
            (None, None) => continue,
        };
        out.push(Inconsistency {
            node: node.to_string(),
            component: format!("rdma/{}/{}/link", p.device, p.port),
            message: format!(
                "{}/{} runs at {}, below the {usual_text} active ports with board {b}: it trained down",
                p.device,
                p.port,
                link_text(p)
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::tests::{port, t};
    use fabricwatch_proto::report::{AgentReport, DcqcnReport, PortIdentity};

    fn sample(ports: Vec<PortSample>) -> NodeSample {
        let mut s = crate::derive::derive(&AgentReport::default(), None);
        s.ports = ports;
        s.at = t(0);
        s
    }

    fn p(device: &str, fw: &str, rate: f64, width: &str) -> PortSample {
        let r = port(device, "ACTIVE", "LinkUp", 0);
        let mut s = crate::derive::derive(
            &AgentReport {
                rdma: vec![r],
                ..AgentReport::default()
            },
            None,
        )
        .ports
        .remove(0);
        s.rate_gbps = Some(rate);
        s.identity = Some(PortIdentity {
            fw_ver: Some(fw.into()),
            board_id: Some("MT_0000000012".into()),
            link_width: Some(width.into()),
            link_speed: Some("HDR".into()),
            ..PortIdentity::default()
        });
        s
    }

    #[test]
    fn firmware_differing_within_a_board_is_found_on_the_odd_device() {
        let a = sample(vec![p("mlx5_0", "20.31.1014", 200.0, "4X")]);
        let b = sample(vec![p("mlx5_0", "20.31.1014", 200.0, "4X")]);
        let c = sample(vec![p("mlx5_0", "20.28.1002", 200.0, "4X")]);
        let found = check([("a", &a), ("b", &b), ("c", &c)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].node, "c");
        assert_eq!(found[0].component, "rdma/mlx5_0/firmware");
        assert_eq!(
            found[0].message,
            "firmware 20.28.1002 on mlx5_0 differs from 20.31.1014 on 2 of 3 devices with board MT_0000000012"
        );
        // Two devices, two versions: no majority, both named.
        let found = check([("a", &a), ("c", &c)]);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_port_below_the_usual_rate_or_width_trained_down() {
        let a = sample(vec![p("mlx5_0", "1", 200.0, "4X")]);
        let b = sample(vec![p("mlx5_0", "1", 200.0, "4X")]);
        let c = sample(vec![p("mlx5_0", "1", 100.0, "2X")]);
        let found = check([("a", &a), ("b", &b), ("c", &c)]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].component, "rdma/mlx5_0/1/link");
        assert_eq!(
            found[0].message,
            "mlx5_0/1 runs at 100 Gb/s (2X HDR), below the 200 Gb/s of 2 of 3 active ports with board MT_0000000012: it trained down"
        );
        // Two ports, one slower: the higher value is the usual one.
        assert_eq!(check([("a", &a), ("c", &c)]).len(), 1);
        // A single port has nothing to compare with.
        assert!(check([("c", &c)]).is_empty());
    }

    #[test]
    fn pfc_and_dcqcn_on_some_ports_only_are_found_and_unknown_is_left_out() {
        let mut a = p("mlx5_0", "1", 100.0, "4X");
        a.pfc_enabled_priorities = Some(vec![3]);
        a.dcqcn = Some(DcqcnReport {
            rp_enabled_priorities: vec![3],
            np_enabled_priorities: vec![3],
            ..DcqcnReport::default()
        });
        let mut b = a.clone();
        let mut c = a.clone();
        c.pfc_enabled_priorities = Some(vec![]);
        c.dcqcn = Some(DcqcnReport {
            rp_enabled_priorities: vec![],
            np_enabled_priorities: vec![3],
            ..DcqcnReport::default()
        });
        b.netdev = Some("ens1f0".into());
        let mut d = a.clone();
        d.pfc_enabled_priorities = None;
        d.dcqcn = None;
        let (sa, sb, sc, sd) = (
            sample(vec![a]),
            sample(vec![b]),
            sample(vec![c]),
            sample(vec![d]),
        );
        let found = check([("a", &sa), ("b", &sb), ("c", &sc), ("d", &sd)]);
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.node.as_str(), f.component.as_str()))
            .collect();
        assert_eq!(
            got,
            [("c", "rdma/mlx5_0/1/dcqcn"), ("c", "rdma/mlx5_0/1/pfc")]
        );
        assert_eq!(
            found[1].message,
            "PFC differs from the fleet on mlx5_0/1: priority 3 off here, on on 2 of 3 ports"
        );
    }
}
