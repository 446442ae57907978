//! The noise-tolerant form of a context that the cache fingerprint is taken over.

use std::fmt::Write as _;

use super::Section;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_to_decades_and_names_stay() {
        assert_eq!(
            normalize_numbers("node-12 mlx5_1/1 loss=18.3% rtt=0.21ms x12+ score=0 ip-3:80 1.2.3"),
            "node-12 mlx5_1/1 loss=1e1% rtt=1e-1ms x1e1 score=0 ip-3:80 1.2.3"
        );
    }
}
