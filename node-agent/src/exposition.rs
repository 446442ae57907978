//! Prometheus text exposition (format 0.0.4) written straight from samples, without
//! building `prometheus::proto` messages first.
//!
//! The output is byte-identical to `prometheus::TextEncoder` over `Registry::gather()` of
//! the same samples (families sorted by name, samples within a family sorted by their
//! label values, `f64` values in Rust's `Display` form, `\`, `\n` and `"` escaped as the
//! encoder does); `tests` below and `metrics::tests` check that against the real encoder.
//! Building the text this way avoids a few allocations per sample and the registry's
//! sorting of proto messages, which was most of the cost of a scrape.

use std::{fmt::Write as _, ops::Range};

use prometheus::proto::MetricType;

/// Receives samples in any order; [`crate::metrics::render_into`] drives it.
pub trait Sink {
    /// Adds one sample of family `name`. `help` and `ty` are taken from the family's first
    /// sample. Label order must be the same for every sample of a family.
    fn add(&mut self, name: &str, help: &str, ty: MetricType, labels: &[(&str, &str)], value: f64);

    /// A gauge sample.
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricType::GAUGE, labels, value);
    }

    /// A counter sample.
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricType::COUNTER, labels, value);
    }
}

struct Family {
    name: String,
    help: String,
    ty: MetricType,
    samples: Vec<Sample>,
}

/// Ranges into [`TextFamilies::arena`]: the sort key (label values joined by NUL, which no
/// file name, interface name or mount point contains) and the text after the metric name.
struct Sample {
    labels: usize,
    key: Range<usize>,
    rest: Range<usize>,
}

/// Collects samples into one string arena and writes them out sorted.
#[derive(Default)]
pub struct TextFamilies {
    families: Vec<Family>,
    arena: String,
    last: usize,
}

/// Encoded families: the text and, per family, where its block starts, how long its name
/// is and where the block ends (sorted by name). Every block starts with `# HELP <name> ` or
/// `# TYPE <name> `, so the name is at `start + 7`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Text of all families, in name order.
    pub text: String,
    /// (start, name length, end) of each family's block in `text`.
    pub blocks: Vec<(usize, usize, usize)>,
}

impl Encoded {
    /// The families as (name, block text), in name order.
    pub fn families(&self) -> impl Iterator<Item = (&str, &str)> {
        self.blocks.iter().map(|&(start, len, end)| {
            (
                &self.text[start + 7..start + 7 + len],
                &self.text[start..end],
            )
        })
    }
}

/// Appends `v` escaped as `prometheus::encoder::text::escape_string` does: `\` and newline
/// always, `"` in label values only.
fn push_escaped(out: &mut String, v: &str, quote: bool) {
    if !v
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' | '\n' => out.extend(c.escape_default()),
            '"' if quote => out.extend(c.escape_default()),
            _ => out.push(c),
        }
    }
}

impl Sink for TextFamilies {
    fn add(&mut self, name: &str, help: &str, ty: MetricType, labels: &[(&str, &str)], value: f64) {
        // Samples of one family usually come in a run; check the last family first.
        let idx = if self.families.get(self.last).is_some_and(|f| f.name == name) {
            self.last
        } else if let Some(i) = self.families.iter().position(|f| f.name == name) {
            i
        } else {
            self.families.push(Family {
                name: name.to_string(),
                help: help.to_string(),
                ty,
                samples: Vec::new(),
            });
            self.families.len() - 1
        };
        self.last = idx;
        let a = &mut self.arena;
        let k0 = a.len();
        for (i, (_, v)) in labels.iter().enumerate() {
            if i > 0 {
                a.push('\0');
            }
            a.push_str(v);
        }
        let k1 = a.len();
        if !labels.is_empty() {
            let mut sep = '{';
            for (k, v) in labels {
                a.push(sep);
                a.push_str(k);
                a.push_str("=\"");
                push_escaped(a, v, true);
                a.push('"');
                sep = ',';
            }
            a.push('}');
        }
        a.push(' ');
        // Infallible: writing to a String.
        let _ = write!(a, "{value}");
        let end = a.len();
        self.families[idx].samples.push(Sample {
            labels: labels.len(),
            key: k0..k1,
            rest: k1..end,
        });
    }
}

impl TextFamilies {
    /// Sorts and writes every family.
    pub fn finish(mut self) -> Encoded {
        let arena = &self.arena;
        let mut out = Encoded {
            text: String::with_capacity(arena.len() * 2),
            blocks: Vec::with_capacity(self.families.len()),
        };
        self.families.sort_by(|a, b| a.name.cmp(&b.name));
        for f in &mut self.families {
            // Stable, like the registry's sort: same label values keep insertion order.
            f.samples.sort_by(|x, y| {
                x.labels
                    .cmp(&y.labels)
                    .then_with(|| arena[x.key.clone()].cmp(&arena[y.key.clone()]))
            });
            let t = &mut out.text;
            let start = t.len();
            if !f.help.is_empty() {
                t.push_str("# HELP ");
                t.push_str(&f.name);
                t.push(' ');
                push_escaped(t, &f.help, false);
                t.push('\n');
            }
            t.push_str("# TYPE ");
            t.push_str(&f.name);
            t.push_str(match f.ty {
                MetricType::COUNTER => " counter\n",
                MetricType::GAUGE => " gauge\n",
                MetricType::SUMMARY => " summary\n",
                MetricType::UNTYPED => " untyped\n",
                MetricType::HISTOGRAM => " histogram\n",
            });
            for s in &f.samples {
                t.push_str(&f.name);
                t.push_str(&arena[s.rest.clone()]);
                t.push('\n');
            }
            out.blocks.push((start, f.name.len(), t.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

    #[test]
    fn matches_the_text_encoder_on_sorting_and_escaping() {
        let reg = Registry::new();
        let g = GaugeVec::new(
            Opts::new("x_gauge", "a \\ help\nwith \"quotes\""),
            &["a", "b"],
        )
        .expect("gauge");
        let c = IntCounterVec::new(Opts::new("a_total", "counts"), &["k"]).expect("counter");
        reg.register(Box::new(g.clone())).expect("register");
        reg.register(Box::new(c.clone())).expect("register");
        let mut t = TextFamilies::default();
        let rows: &[(&str, &str, f64)] = &[
            ("b", "2", 0.1),
            ("a", "10", 1e21),
            ("a", "1", -0.0),
            ("a\"q\\\n", "", f64::NAN),
            ("ab", "", 3.0),
            ("a!", "x", f64::INFINITY),
        ];
        for (a, b, v) in rows {
            g.with_label_values(&[a, b]).set(*v);
            t.gauge(
                "x_gauge",
                "a \\ help\nwith \"quotes\"",
                &[("a", a), ("b", b)],
                *v,
            );
        }
        for (k, v) in [("z", 3u64), ("", 1), ("y", 12_345_678_901)] {
            c.with_label_values(&[k]).inc_by(v);
            t.counter("a_total", "counts", &[("k", k)], v as f64);
        }
        let mut want = Vec::new();
        TextEncoder::new()
            .encode(&reg.gather(), &mut want)
            .expect("encode");
        let got = t.finish();
        assert_eq!(got.text, String::from_utf8(want).expect("utf8"));
        let names: Vec<&str> = got.families().map(|(n, _)| n).collect();
        assert_eq!(names, ["a_total", "x_gauge"]);
        assert!(got
            .families()
            .all(|(n, block)| block.starts_with(&format!("# HELP {n} "))));
    }
}
