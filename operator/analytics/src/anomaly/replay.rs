//! `fabricwatch-operator analytics replay`: feeds recorded series through the production
//! detector path ([`SeriesDetectors::observe`], as [`crate::fleet::Fleet::ingest`] does for
//! each node series) and prints one TSV line per point. The interface is stable: anomaly
//! quality is checked with it (`operator/analytics/eval/nab.sh`).
//!
//! Input: CSV with the header `timestamp,value` (NAB's format); timestamps
//! `YYYY-MM-DD HH:MM:SS[.fff]` (UTC), RFC 3339, or seconds since the epoch.
//! Output: `file<TAB>timestamp<TAB>score<TAB>flag`, the timestamp as in the file, the score in
//! σ-equivalents (3 = alarm), flag 1 where status would count an anomaly (and `onAnomaly`
//! would be triggered on its onset).

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDateTime};

use super::series::{resolve, SeriesDetectors, ALIASES, GENERIC, SERIES};

/// Flags of `fabricwatch-operator analytics replay`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReplayArgs {
    /// Space the points this many seconds apart instead of using the file's timestamps
    /// (replays a recording as an agent with that interval would have sent it).
    #[arg(long)]
    pub interval_seconds: Option<f64>,
    /// Node series the values stand for (its noise floor applies): `generic` (no absolute
    /// floor), an alias (loss, rtt, jitter, cpu, memory, disk) or a full series name.
    #[arg(long, default_value = GENERIC)]
    pub series: String,
    /// CSV files with the header `timestamp,value`; each is one series.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs the replay, writing TSV to `out`. Errors name the file and line.
pub fn run(args: &ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let Some(series) = resolve(&args.series) else {
        let mut names: Vec<&str> = vec![GENERIC];
        names.extend(ALIASES.iter().map(|(a, _)| *a));
        names.extend(SERIES.iter().map(|(s, _)| *s));
        bail!(
            "unknown series {:?}; one of: {}",
            args.series,
            names.join(", ")
        );
    };
    if let Some(s) = args.interval_seconds {
        if !(s.is_finite() && s > 0.0) {
            bail!("--interval-seconds must be a positive number of seconds, got {s}");
        }
    }
    for file in &args.files {
        replay_file(file, series, args.interval_seconds, out)?;
    }
    out.flush()?;
    Ok(())
}

fn replay_file(
    path: &Path,
    series: &str,
    interval: Option<f64>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let name = path.display().to_string();
    let mut detectors = SeriesDetectors::default();
    let mut lines = BufReader::new(f).lines();
    let header = lines
        .next()
        .transpose()
        .with_context(|| format!("{name}: reading"))?
        .unwrap_or_default();
    let cols: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .trim()
        .split(',')
        .map(str::trim)
        .collect();
    if cols != ["timestamp", "value"] {
        bail!("{name}:1: expected the header `timestamp,value`, got {header:?}");
    }
    for (i, line) in lines.enumerate() {
        let lineno = i + 2;
        let line = line.with_context(|| format!("{name}:{lineno}: reading"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((ts, value)) = line.split_once(',') else {
            bail!("{name}:{lineno}: expected `timestamp,value`, got {line:?}");
        };
        let ts = ts.trim().trim_matches('"');
        let value = value.trim().trim_matches('"');
        let x: f64 = value
            .parse()
            .with_context(|| format!("{name}:{lineno}: value {value:?} is not a number"))?;
        let t = match interval {
            Some(s) => s * (i as f64),
            None => parse_time(ts).with_context(|| format!("{name}:{lineno}: timestamp {ts:?}"))?,
        };
        let (score, flag) = match detectors.observe(series, t, x) {
            Some(o) => (o.score, u8::from(o.flagged)),
            None => (0.0, 0),
        };
        writeln!(out, "{name}\t{ts}\t{score:.4}\t{flag}")?;
    }
    Ok(())
}

/// Seconds since the epoch of a NAB-style (`2015-02-26 21:42:53`, UTC, optional fraction),
/// RFC 3339 or numeric timestamp.
pub fn parse_time(s: &str) -> anyhow::Result<f64> {
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Ok(t.and_utc().timestamp_millis() as f64 / 1000.0);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis() as f64 / 1000.0);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => bail!("expected `YYYY-MM-DD HH:MM:SS`, RFC 3339 or seconds since the epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(series: &str, files: &[&str]) -> ReplayArgs {
        ReplayArgs {
            interval_seconds: None,
            series: series.into(),
            files: files.iter().map(PathBuf::from).collect(),
        }
    }

    fn fixture() -> String {
        format!(
            "{}/tests/fixtures/nab/speed_7578_excerpt.csv",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn nab_excerpt_one_line_per_row_and_the_labelled_window_is_flagged() {
        let f = fixture();
        let mut out = Vec::new();
        run(&args("generic", &[&f]), &mut out).expect("replay");
        let text = String::from_utf8(out).expect("utf-8");
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        let input = std::fs::read_to_string(&f).expect("fixture");
        assert_eq!(rows.len(), input.lines().count() - 1);
        assert!(rows.iter().all(|r| r.len() == 4 && r[0] == f));
        assert_eq!(rows[0][1], "2015-09-08 11:39:00");
        let flagged: Vec<&str> = rows.iter().filter(|r| r[3] == "1").map(|r| r[1]).collect();
        // NAB's window for this range: 2015-09-11 15:34:00 – 17:54:00.
        assert!(
            flagged
                .iter()
                .any(|t| ("2015-09-11 15:34:00"..="2015-09-11 17:54:00").contains(t)),
            "{flagged:?}"
        );
        assert!(
            flagged.len() <= 4,
            "few flags (about 1 % of rows): {flagged:?}"
        );
        assert!(rows
            .iter()
            .all(|r| r[2].parse::<f64>().is_ok_and(f64::is_finite)));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).expect("write");
            p.display().to_string()
        };
        let header = write("h.csv", "time,val\n1,2\n");
        let e = run(&args("generic", &[&header]), &mut Vec::new()).expect_err("header");
        assert!(
            format!("{e:#}").contains(":1: expected the header"),
            "{e:#}"
        );
        let value = write("v.csv", "timestamp,value\n2015-01-01 00:00:00,abc\n");
        let e = run(&args("generic", &[&value]), &mut Vec::new()).expect_err("value");
        assert!(format!("{e:#}").contains("v.csv:2: value \"abc\""), "{e:#}");
        let ts = write("t.csv", "timestamp,value\nyesterday,1\n");
        let e = run(&args("generic", &[&ts]), &mut Vec::new()).expect_err("time");
        assert!(format!("{e:#}").contains("t.csv:2: timestamp"), "{e:#}");
        let e = run(&args("nope", &[&ts]), &mut Vec::new()).expect_err("series");
        assert!(
            format!("{e:#}").contains("unknown series \"nope\""),
            "{e:#}"
        );
        assert!(run(&args("cpu", &["/nonexistent.csv"]), &mut Vec::new()).is_err());
        // NaN and inf are values the detector skips: a line each, score 0, flag 0.
        let nan = write(
            "n.csv",
            "timestamp,value\n2015-01-01 00:00:00,NaN\n2015-01-01 00:05:00,inf\n",
        );
        let mut out = Vec::new();
        run(&args("generic", &[&nan]), &mut out).expect("nan");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| l.ends_with("\t0.0000\t0")), "{text}");
    }

    #[test]
    fn timestamps_nab_rfc3339_and_epoch() {
        assert_eq!(parse_time("1970-01-01 00:01:00").expect("nab"), 60.0);
        assert_eq!(parse_time("1970-01-01 00:01:00.5").expect("fraction"), 60.5);
        assert_eq!(parse_time("1970-01-01T00:01:00Z").expect("rfc3339"), 60.0);
        assert_eq!(parse_time("60").expect("epoch"), 60.0);
        assert!(parse_time("inf").is_err());
    }
}
