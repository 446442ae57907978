//! Cost of the per-series anomaly detectors (the path `Fleet::ingest` takes for every node
//! series): CPU per point and state size, for `nodes × series` series at one point per second.
//!
//! `cargo run --release -p fabricwatch-analytics --example anomaly_cost -- [NODES] [SERIES] [SECONDS]`
//! (default 1000 nodes × 10 series, 2400 s). The clock starts after the 10-minute warm-up
//! (at 700 s), so the steady state is measured. Prints ns per point, the share of one core at
//! one point per second per series, and the size of the saved baselines per series.

use std::time::Instant;

use fabricwatch_analytics::anomaly::series::{SeriesDetectors, SERIES};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(1000) as usize;
    let series = (args.get(1).copied().unwrap_or(10) as usize).min(SERIES.len());
    let seconds = args.get(2).copied().unwrap_or(2400).max(701);
    let mut fleet: Vec<SeriesDetectors> = vec![SeriesDetectors::default(); nodes];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut start = Instant::now();
    let mut points = 0u64;
    let mut onsets = 0u64;
    for s in 0..seconds {
        if s == 700 {
            start = Instant::now();
            points = 0;
        }
        let t = 1.7e9 + s as f64;
        for (n, d) in fleet.iter_mut().enumerate() {
            for (name, _) in SERIES.iter().take(series) {
                let spike = if noise() < 1e-4 { 50.0 } else { 0.0 };
                let x = 40.0 + (n % 7) as f64 + 3.0 * noise() + spike;
                if d.observe(name, t, x).is_some_and(|o| o.onset) {
                    onsets += 1;
                }
                points += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ns = elapsed * 1e9 / points as f64;
    let n_series = (nodes * series) as f64;
    let share = ns * n_series / 1e9 * 100.0;
    let baselines: fabricwatch_analytics::anomaly::snapshot::Baselines = fleet
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("node-{i:015}"), d.snapshot()))
        .collect();
    let bytes: usize = fabricwatch_analytics::anomaly::snapshot::encode(&baselines, 900 * 1024)
        .iter()
        .map(Vec::len)
        .sum();
    println!(
        "series={} points={points} seconds={seconds} onsets={onsets} ns_per_point={ns:.1} core_percent_at_1Hz={share:.3} snapshot_bytes_per_series_with_20_char_node_names={:.0}",
        nodes * series,
        bytes as f64 / n_series
    );
}
