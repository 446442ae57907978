//! How values enter the context: untrusted text sanitized and anonymized, numbers with two
//! significant digits, Event counts bucketed.

use crate::anonymize::Anonymizer;

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
pub(super) fn num(v: f64) -> String {
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
pub(super) fn count_bucket(count: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
