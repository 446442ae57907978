//! The mesh heatmap of a target (Goldpinger-style): one row per source node, one column per
//! peer, nodes grouped by topology domain, each probed pair coloured by its loss or RTT p99.
//!
//! Hand-built SVG rather than plotters: every cell carries a `<title>` (the tooltip and what
//! screen readers read) and `data-src`/`data-dst`/`data-value` attributes (what tests and
//! scripts address), which plotters' backend cannot emit. Only probed pairs get a cell, so a
//! 500-node mesh with tens of peers per node stays a few thousand elements.

use std::{collections::BTreeMap, fmt::Write};

use crate::fleet::NodeView;

/// Which value a heatmap shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Loss over the path's recent probes, percent.
    Loss,
    /// RTT p99 of the latest report, seconds (shown in ms).
    RttP99,
}

/// One colour band of the legend: values below `upper` (in the shown unit) get `colour`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    /// Exclusive upper bound; `f64::INFINITY` for the last band.
    pub upper: f64,
    /// CSS colour.
    pub colour: &'static str,
    /// Legend text.
    pub label: &'static str,
}

/// Loss bands, percent: none, below the default warning (1 %), below critical (5 %), worse.
/// Colours from ColorBrewer's RdYlGn scheme (colour-blind safe in 4 classes).
pub const LOSS_BANDS: [Band; 4] = [
    Band {
        upper: 0.000_001,
        colour: "#1a9641",
        label: "0 %",
    },
    Band {
        upper: 1.0,
        colour: "#a6d96a",
        label: "< 1 %",
    },
    Band {
        upper: 5.0,
        colour: "#fdae61",
        label: "1–5 %",
    },
    Band {
        upper: f64::INFINITY,
        colour: "#d7191c",
        label: "≥ 5 %",
    },
];

/// RTT p99 bands, milliseconds (the default thresholds warn at 1 ms and are critical at 5 ms).
pub const RTT_BANDS: [Band; 4] = [
    Band {
        upper: 0.5,
        colour: "#1a9641",
        label: "< 0.5 ms",
    },
    Band {
        upper: 1.0,
        colour: "#a6d96a",
        label: "0.5–1 ms",
    },
    Band {
        upper: 5.0,
        colour: "#fdae61",
        label: "1–5 ms",
    },
    Band {
        upper: f64::INFINITY,
        colour: "#d7191c",
        label: "≥ 5 ms",
    },
];

impl Measure {
    /// The legend of this measure.
    pub fn bands(self) -> &'static [Band; 4] {
        match self {
            Measure::Loss => &LOSS_BANDS,
            Measure::RttP99 => &RTT_BANDS,
        }
    }

    /// Short name, used in element ids.
    pub fn id(self) -> &'static str {
        match self {
            Measure::Loss => "loss",
            Measure::RttP99 => "rtt",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Measure::Loss => "% loss",
            Measure::RttP99 => "ms RTT p99",
        }
    }
}

/// The band index of `value` (shown unit).
pub fn band(bands: &[Band], value: f64) -> usize {
    bands
        .iter()
        .position(|b| value < b.upper)
        .unwrap_or(bands.len() - 1)
}

/// One probed pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Row (source) index.
    pub src: usize,
    /// Column (peer) index.
    pub dst: usize,
    /// Value in the shown unit.
    pub value: f64,
}

/// The matrix of a heatmap: node order (grouped by domain) and the probed pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Node names in display order.
    pub nodes: Vec<String>,
    /// Domain of each node (`""` when none).
    pub domains: Vec<String>,
    /// Probed pairs with a value.
    pub cells: Vec<Cell>,
}

/// Builds the matrix of `measure` from the nodes' latest samples: nodes sorted by (domain,
/// name); a pair's loss is lost/sent over its recent probes when counted, else the latest
/// report's percentage; external peers are left out.
pub fn matrix(nodes: &[NodeView], measure: Measure) -> Matrix {
    let mut order: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n.domain.as_deref().unwrap_or(""), n.node.as_str()))
        .collect();
    order.sort_by_cached_key(|(d, n)| (natural(d), natural(n)));
    let index: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (_, n))| (*n, i))
        .collect();
    let mut cells = Vec::new();
    for n in nodes {
        let Some(&src) = index.get(n.node.as_str()) else {
            continue;
        };
        for p in n.latest.peers.iter().filter(|p| !p.external) {
            let Some(&dst) = index.get(p.peer.as_str()) else {
                continue;
            };
            let value = match measure {
                Measure::Loss if p.probes_sent > 0 => {
                    100.0 * p.probes_lost as f64 / p.probes_sent as f64
                }
                Measure::Loss => p.loss_percent,
                Measure::RttP99 => match p.rtt_p99_seconds {
                    Some(r) => 1000.0 * r,
                    None => continue,
                },
            };
            if value.is_finite() {
                cells.push(Cell { src, dst, value });
            }
        }
    }
    Matrix {
        nodes: order.iter().map(|(_, n)| n.to_string()).collect(),
        domains: order.iter().map(|(d, _)| d.to_string()).collect(),
        cells,
    }
}

/// Sort key that orders digit runs by value ("n2" before "n10"): each run left-padded to 20
/// digits (u64's width).
pub fn natural(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut digits = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            out.push_str(&format!("{digits:0>20}"));
            digits.clear();
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Largest node count whose names are written beside the rows and above the columns; larger
/// meshes show names in the cells' tooltips only.
pub const LABEL_LIMIT: usize = 64;

/// Room for the row and column labels: about 7 units per character at font size 11, at least
/// 40 and at most 150 (longer names are cut by the edge; the cells' tooltips hold them whole).
pub fn margin(m: &Matrix) -> usize {
    let longest = m
        .nodes
        .iter()
        .chain(&m.domains)
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    (7 * longest + 16).clamp(40, 150)
}

/// The heatmap as an inline SVG element (no XML prolog).
pub fn svg(m: &Matrix, measure: Measure) -> String {
    let n = m.nodes.len().max(1);
    let cell = (640 / n).clamp(3, 22);
    let labels = m.nodes.len() <= LABEL_LIMIT;
    let margin = if labels { margin(m) } else { 40 };
    let size = margin + n * cell;
    let bands = measure.bands();
    let mut s = String::with_capacity(256 + m.cells.len() * 160);
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" id="heatmap-{id}" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" aria-label="{unit} per source→peer pair, {n} nodes"><rect x="{margin}" y="{margin}" width="{w}" height="{w}" fill="#f2f2f2"/>"##,
        id = measure.id(),
        unit = measure.unit(),
        n = m.nodes.len(),
        w = n * cell,
    );
    // Domain boundaries and names.
    let mut start = 0;
    for i in 1..=m.domains.len() {
        if i == m.domains.len() || m.domains[i] != m.domains[start] {
            let (a, b) = (margin + start * cell, margin + i * cell);
            let _ = write!(
                s,
                r##"<g class="domain"><rect x="{a}" y="{a}" width="{w}" height="{w}" fill="none" stroke="#555" stroke-width="1"/>"##,
                w = b - a
            );
            if !m.domains[start].is_empty() {
                let _ = write!(
                    s,
                    r##"<text x="4" y="{y}" font-size="10" fill="#555">{d}</text>"##,
                    y = (a + 10).min(margin.saturating_sub(4)).max(10),
                    d = escape(&m.domains[start])
                );
            }
            s.push_str("</g>");
            start = i;
        }
    }
    if labels {
        for (i, name) in m.nodes.iter().enumerate() {
            let y = margin + i * cell + cell / 2 + 4;
            let name = escape(name);
            let _ = write!(
                s,
                r##"<text x="{x}" y="{y}" font-size="11" text-anchor="end">{name}</text><text transform="translate({cx},{ty}) rotate(-60)" font-size="11">{name}</text>"##,
                x = margin - 4,
                cx = margin + i * cell + cell / 2 + 3,
                ty = margin - 4,
            );
        }
    }
    for c in &m.cells {
        let b = band(bands, c.value);
        let (src, dst) = (escape(&m.nodes[c.src]), escape(&m.nodes[c.dst]));
        let _ = write!(
            s,
            r##"<rect class="cell" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" data-src="{src}" data-dst="{dst}" data-value="{v:.3}" data-band="{b}"><title>{src} → {dst}: {v:.2} {unit}</title></rect>"##,
            x = margin + c.dst * cell,
            y = margin + c.src * cell,
            fill = bands[b].colour,
            v = c.value,
            unit = measure.unit(),
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_every_value() {
        assert_eq!(band(&LOSS_BANDS, 0.0), 0);
        assert_eq!(band(&LOSS_BANDS, 0.5), 1);
        assert_eq!(band(&LOSS_BANDS, 1.0), 2);
        assert_eq!(band(&LOSS_BANDS, 30.0), 3);
        assert_eq!(band(&RTT_BANDS, 0.2), 0);
        assert_eq!(band(&RTT_BANDS, 7.0), 3);
    }

    #[test]
    fn cells_sit_at_row_source_and_column_peer() {
        let m = Matrix {
            nodes: vec!["a1".into(), "a2".into(), "b1".into()],
            domains: vec!["rack-a".into(), "rack-a".into(), "rack-b".into()],
            cells: vec![Cell {
                src: 2,
                dst: 0,
                value: 12.0,
            }],
        };
        let svg = svg(&m, Measure::Loss);
        let cell = 640 / 3;
        let cell = cell.clamp(3, 22);
        // Longest label "rack-b": 7 × 6 + 16 = 58 units of margin.
        assert_eq!(margin(&m), 58);
        let want = format!(r#"x="58" y="{}" width="{cell}""#, 58 + 2 * cell);
        assert!(svg.contains(&want), "{svg}");
        assert!(svg.contains(r#"data-src="b1" data-dst="a1" data-value="12.000" data-band="3""#));
        assert!(svg.contains(">rack-b<"), "domain label");
        assert!(svg.contains("<title>b1 → a1: 12.00 % loss</title>"));
    }

    #[test]
    fn numbers_in_names_sort_by_value() {
        let mut v = vec!["n10", "n2", "rack-1-n1", "n1"];
        v.sort_by_key(|s| natural(s));
        assert_eq!(v, vec!["n1", "n2", "n10", "rack-1-n1"]);
    }

    #[test]
    fn names_are_escaped() {
        let m = Matrix {
            nodes: vec!["<x>".into()],
            domains: vec![String::new()],
            cells: vec![],
        };
        assert!(svg(&m, Measure::RttP99).contains("&lt;x&gt;"));
    }
}
