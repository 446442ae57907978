//! Parsers of `ethtool -S` and `ethtool -i` text, for statistics read from a directory
//! (node_exporter's fixture layout `<dir>/<netdev>/{statistics,driver}`) instead of the
//! kernel.
//!
//! `ethtool -S` prints `NIC statistics:` and then `     <name>: <value>` per statistic
//! (`ethtool.c`, `dump_stats`). Names may contain `.`, spaces and (bnxt_en per-ring
//! lines) a `[N]: ` prefix, so a line is split on its **last** `": "`. Comment lines
//! (`#`) and the header are skipped.

/// One line that is not a statistic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line, truncated to 80 characters.
    pub text: String,
}

/// Statistics in the order of the text, and the lines that were not `name: <u64>`.
pub fn parse_statistics(text: &str) -> (Vec<(String, u64)>, Vec<BadLine>) {
    let mut stats = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line == "NIC statistics:" {
            continue;
        }
        let parsed = line
            .rsplit_once(": ")
            .and_then(|(name, value)| Some((name.trim(), value.trim().parse::<u64>().ok()?)))
            .filter(|(name, _)| !name.is_empty());
        match parsed {
            Some((name, v)) => stats.push((name.to_string(), v)),
            None => bad.push(BadLine {
                line: i + 1,
                text: line.chars().take(80).collect(),
            }),
        }
    }
    (stats, bad)
}

/// The `driver: <name>` line of `ethtool -i` output.
pub fn parse_driver(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("driver:")?.trim();
        (!v.is_empty()).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_lines_split_on_the_last_separator() {
        let (s, bad) = parse_statistics(
            "NIC statistics:\n     rx_packets: 12\n     [0]: rx_ucast_packets: 7\n     link_xon_rx.nic: 0\n# comment\n",
        );
        assert_eq!(
            s,
            [
                ("rx_packets".to_string(), 12),
                ("[0]: rx_ucast_packets".to_string(), 7),
                ("link_xon_rx.nic".to_string(), 0)
            ]
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_kept() {
        let (s, bad) =
            parse_statistics("a: 1\nb: -1\nc: x\nd:\n: 4\ne: 99999999999999999999999\nf: 2");
        assert_eq!(s, [("a".to_string(), 1), ("f".to_string(), 2)]);
        assert_eq!(
            bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn driver_line() {
        assert_eq!(
            parse_driver("driver: bnxt_en\nversion: 1.10.2\n"),
            Some("bnxt_en".into())
        );
        assert_eq!(parse_driver("version: 1\n"), None);
        assert_eq!(parse_driver("driver: \n"), None);
    }
}
