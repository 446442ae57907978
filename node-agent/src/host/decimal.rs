//! Parsers of the `/proc` files whose numbers the procfs crate reads as `f32`
//! (`loadavg`, `pressure/*`): here as `f64`, so that `0.21` stays `0.21` and matches what
//! node_exporter exports (an `f32` widened to `f64` reads `0.20999999344348907`).
//!
//! Formats: `fs/proc/loadavg.c` (`"%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d\n"`) and
//! `kernel/sched/psi.c` (`"some avg10=%lu.%02lu avg60=... avg300=... total=%llu\n"`, a
//! `full` line for memory and io, and for cpu since Linux 5.13).

use procfs::{ProcError, ProcResult};

fn bad(what: &str) -> ProcError {
    ProcError::Other(format!("unexpected {what} content"))
}

fn number(tok: Option<&str>, what: &str) -> ProcResult<f64> {
    tok.and_then(|t| t.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| bad(what))
}

/// The 1, 5 and 15 minute load averages.
///
/// # Errors
/// `ProcError::Other` when the first three fields are not non-negative numbers.
pub fn loadavg(b: &[u8]) -> ProcResult<[f64; 3]> {
    let text = String::from_utf8_lossy(b);
    let mut it = text.split_whitespace();
    Ok([
        number(it.next(), "loadavg")?,
        number(it.next(), "loadavg")?,
        number(it.next(), "loadavg")?,
    ])
}

/// `avg10` of the `some` and (when present) `full` lines of a PSI file, in percent.
///
/// # Errors
/// `ProcError::Other` when there is no `some` line with an `avg10=` number.
pub fn psi_avg10(b: &[u8]) -> ProcResult<(f64, Option<f64>)> {
    let text = String::from_utf8_lossy(b);
    let avg10 = |kind: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .map(|l| {
                number(
                    l.split_whitespace().find_map(|f| f.strip_prefix("avg10=")),
                    "pressure",
                )
            })
    };
    let some = avg10("some").ok_or_else(|| bad("pressure"))??;
    let full = avg10("full").transpose()?;
    Ok((some, full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_keeps_decimal_values() {
        assert_eq!(
            loadavg(b"0.21 0.30 1.05 2/345 6789\n").expect("parse"),
            [0.21, 0.30, 1.05]
        );
        assert!(loadavg(b"0.21 x 1\n").is_err());
        assert!(loadavg(b"").is_err());
        assert!(loadavg(b"-1 0 0").is_err());
    }

    #[test]
    fn psi_lines() {
        let t = b"some avg10=0.21 avg60=0.00 avg300=0.00 total=1\nfull avg10=3.25 avg60=0 avg300=0 total=2\n";
        assert_eq!(psi_avg10(t).expect("parse"), (0.21, Some(3.25)));
        assert_eq!(
            psi_avg10(b"some avg10=1.50 avg60=0 avg300=0 total=0\n").expect("parse"),
            (1.5, None)
        );
        assert!(psi_avg10(b"full avg10=1\n").is_err());
        assert!(psi_avg10(b"some avg10=NaN\n").is_err());
        assert!(psi_avg10(b"some avg60=1\n").is_err());
    }
}
