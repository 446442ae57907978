//! Compact binary snapshot of a target's per-node detector baselines, so an analytics restart
//! neither re-warms every detector (a blind period) nor floods onsets from empty baselines.
//!
//! What is kept per series is what the baseline needs — level, scale, typical interval, the
//! record deviation, the last point's time — as little-endian `f32`/`u32`: 21 bytes per
//! series plus 3 bytes and the name per node: 1.48 MB for 5,000 nodes × 13 series with
//! 20-character node names. Evidence and episodes are not kept: after
//! a restart the time gap resets them anyway.
//!
//! Format (version 1): `b"FWB1"`, then per node: `u16` name length, name (UTF-8), `u8` series
//! count, then per series `u8` index into [`SERIES`], `f32` level, `f32` mean absolute
//! deviation, `f32` interval (s), `f32` record, `u32` last time (s since the epoch).

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use super::{robust::State, series::SERIES};

const MAGIC: &[u8; 4] = b"FWB1";
const SERIES_BYTES: usize = 1 + 4 * 4 + 4;

/// Baselines of one target: node → series → state.
pub type Baselines = BTreeMap<String, BTreeMap<String, State>>;

/// Encodes `baselines` into chunks of at most `max_bytes` each (split between nodes; a node
/// larger than `max_bytes` alone gets a chunk of its own). Series not in [`SERIES`] and states
/// not warmed up are left out (they have nothing worth keeping).
pub fn encode(baselines: &Baselines, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut cur = MAGIC.to_vec();
    for (node, series) in baselines {
        let mut rec = Vec::new();
        let name = node.as_bytes();
        let Ok(len) = u16::try_from(name.len()) else {
            continue;
        };
        let kept: Vec<(u8, &State)> = series
            .iter()
            .filter_map(|(k, s)| {
                let i = SERIES.iter().position(|(n, _)| n == k)?;
                (s.established() && s.last_t.is_some()).then_some((i as u8, s))
            })
            .take(usize::from(u8::MAX))
            .collect();
        if kept.is_empty() {
            continue;
        }
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(name);
        rec.push(kept.len() as u8);
        for (i, s) in kept {
            rec.push(i);
            for v in [s.level, s.dev, s.interval, s.record] {
                rec.extend_from_slice(&(v as f32).to_le_bytes());
            }
            let last = s.last_t.unwrap_or(0.0).clamp(0.0, f64::from(u32::MAX)) as u32;
            rec.extend_from_slice(&last.to_le_bytes());
        }
        if cur.len() > MAGIC.len() && cur.len() + rec.len() > max_bytes {
            chunks.push(std::mem::replace(&mut cur, MAGIC.to_vec()));
        }
        cur.extend_from_slice(&rec);
    }
    if cur.len() > MAGIC.len() {
        chunks.push(cur);
    }
    chunks
}

/// Decodes one chunk. `warmup` (points, seconds) marks the restored states as warmed up.
/// Errors on a wrong magic or a truncated chunk; non-finite numbers drop that series.
pub fn decode(bytes: &[u8], warmup: (u32, f64)) -> anyhow::Result<Baselines> {
    let Some(mut rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        bail!("not a baseline snapshot (expected the FWB1 header)");
    };
    let mut out = Baselines::new();
    while !rest.is_empty() {
        let (len, r) = take(rest, 2).context("node name length")?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let (name, r) = take(r, len).context("node name")?;
        let name = std::str::from_utf8(name).context("node name is not UTF-8")?;
        let (count, mut r) = take(r, 1).context("series count")?;
        let mut series = BTreeMap::new();
        for _ in 0..count[0] {
            let (rec, r2) = take(r, SERIES_BYTES).context("series record")?;
            r = r2;
            let f = |o: usize| {
                f64::from(f32::from_le_bytes([
                    rec[o],
                    rec[o + 1],
                    rec[o + 2],
                    rec[o + 3],
                ]))
            };
            let last = f64::from(u32::from_le_bytes([rec[17], rec[18], rec[19], rec[20]]));
            let Some((sname, _)) = SERIES.get(usize::from(rec[0])) else {
                continue;
            };
            let (level, dev, interval, record) = (f(1), f(5), f(9), f(13));
            if ![level, dev, interval, record].iter().all(|v| v.is_finite()) {
                continue;
            }
            series.insert(
                (*sname).to_string(),
                State::warmed(level, dev, interval, record, last, warmup),
            );
        }
        out.insert(name.to_string(), series);
        rest = r;
    }
    Ok(out)
}

fn take(b: &[u8], n: usize) -> anyhow::Result<(&[u8], &[u8])> {
    if b.len() < n {
        bail!("truncated snapshot");
    }
    Ok(b.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::robust::{DetectorSettings, RobustDetector};
    use crate::anomaly::series::SeriesDetectors;

    fn warmed(node_count: usize) -> Baselines {
        (0..node_count)
            .map(|n| {
                let mut d = SeriesDetectors::default();
                for i in 0..200 {
                    let t = 1.7e9 + i as f64 * 10.0;
                    for (s, _) in SERIES {
                        d.observe(s, t, 50.0 + (i % 7) as f64);
                    }
                }
                (format!("node-{n}"), d.snapshot())
            })
            .collect()
    }

    #[test]
    fn round_trip_keeps_the_baseline_and_is_compact() {
        let b = warmed(3);
        let chunks = encode(&b, 1 << 20);
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].len(),
            4 + 3 * (2 + 6 + 1 + SERIES.len() * SERIES_BYTES)
        );
        let d = DetectorSettings::default();
        let back = decode(&chunks[0], (d.warmup_points, d.warmup_seconds)).expect("decode");
        assert_eq!(back.len(), 3);
        let (orig, got) = (
            &b["node-1"]["cpu_usage_percent"],
            &back["node-1"]["cpu_usage_percent"],
        );
        assert!((orig.level - got.level).abs() < 1e-4 * orig.level.abs());
        assert_eq!(got.last_t, orig.last_t.map(f64::floor));
        assert!(RobustDetector::restore(d, got.clone()).warmed_up());
    }

    #[test]
    fn a_detector_still_warming_up_is_not_saved() {
        let mut d = SeriesDetectors::default();
        for i in 0..10 {
            d.observe("cpu_usage_percent", 1.7e9 + i as f64 * 10.0, 5.0);
        }
        let b: Baselines = [("n".to_string(), d.snapshot())].into();
        assert!(encode(&b, 1 << 20).is_empty());
    }

    #[test]
    fn chunks_split_between_nodes_and_bad_input_is_an_error() {
        let b = warmed(10);
        let chunks = encode(&b, 700);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.len() <= 700 || c.len() < 400 + 700));
        let total: usize = chunks
            .iter()
            .map(|c| decode(c, (30, 600.0)).expect("decode").len())
            .sum();
        assert_eq!(total, 10);
        assert!(decode(b"nope", (30, 600.0)).is_err());
        let mut cut = chunks[0].clone();
        cut.truncate(cut.len() - 3);
        assert!(decode(&cut, (30, 600.0)).is_err());
    }
}
