//! Cutting the rendered sections to the token budget: round-robin across sections, with a
//! `(+N more omitted)` note under every cut section.

use std::fmt::Write as _;

use super::Section;
use crate::tokens;

/// Fits the sections into `budget` tokens (see the module docs). Returns the text and the
/// number of lines left out.
pub(super) fn fit(header: &str, sections: &[Section], budget: u64) -> (String, usize) {
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
