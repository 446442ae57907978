//! Line charts of one node's history windows, drawn with plotters' SVG backend.

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use crate::window::Sample;

/// How a series is shown: title, axis unit, and the factor from its base unit to the shown
/// one (RTT in seconds is shown in milliseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesUnit {
    /// Series name, as in [`crate::fleet::SERIES`].
    pub series: &'static str,
    /// Chart title.
    pub title: &'static str,
    /// Y-axis unit label.
    pub unit: &'static str,
    /// Multiplier from the stored value to the shown one.
    pub scale: f64,
}

/// Display settings of every windowed series ([`crate::fleet::SERIES`]).
pub const UNITS: [SeriesUnit; 9] = [
    SeriesUnit {
        series: "ping_loss_percent",
        title: "Ping loss (worst peer)",
        unit: "%",
        scale: 1.0,
    },
    SeriesUnit {
        series: "ping_rtt_p99_seconds",
        title: "RTT p99 (worst peer)",
        unit: "ms",
        scale: 1000.0,
    },
    SeriesUnit {
        series: "ping_jitter_seconds",
        title: "Jitter (mean over peers)",
        unit: "ms",
        scale: 1000.0,
    },
    SeriesUnit {
        series: "network_score",
        title: "Network score (worst path)",
        unit: "points (0-100)",
        scale: 1.0,
    },
    SeriesUnit {
        series: "cpu_usage_percent",
        title: "CPU busy",
        unit: "%",
        scale: 1.0,
    },
    SeriesUnit {
        series: "memory_used_percent",
        title: "Memory used",
        unit: "%",
        scale: 1.0,
    },
    SeriesUnit {
        series: "rdma_errors_per_minute",
        title: "RDMA port errors",
        unit: "errors/min",
        scale: 1.0,
    },
    SeriesUnit {
        series: "rdma_pause_percent",
        title: "RoCE pause time (busiest port)",
        unit: "%",
        scale: 1.0,
    },
    SeriesUnit {
        series: "rdma_discards_per_minute",
        title: "RoCE discards (all ports)",
        unit: "discards/min",
        scale: 1.0,
    },
];

/// Chart size in SVG user units (the page scales it to its column).
pub const SIZE: (u32, u32) = (560, 220);

/// An SVG line chart of `samples` (oldest first) against minutes before `now`, with the
/// unit on the y axis. `None` when there is nothing to draw or plotters fails.
pub fn line_chart(unit: &SeriesUnit, samples: &[Sample], now: DateTime<Utc>) -> Option<String> {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| {
            let minutes = (s.at - now).num_milliseconds() as f64 / 60_000.0;
            (minutes, s.value * unit.scale)
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    let x0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_min = x0.min(-1.0);
    let x_max = 0.0;
    let y_top = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let y_bot = points.iter().map(|p| p.1).fold(0.0_f64, f64::min);
    // Headroom, and a visible range for a flat zero line.
    let y_max = if y_top > 0.0 { y_top * 1.15 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min..x_max, y_bot..y_max)
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("minutes before now")
            .y_desc(unit.unit)
            .x_labels(6)
            .y_labels(5)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .ok()?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                ShapeStyle::from(&RGBColor(31, 94, 168)).stroke_width(2),
            ))
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_have_axes_with_units() {
        let now = Utc::now();
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                at: now - chrono::Duration::seconds(10 * (10 - i)),
                value: 0.0004 + 0.0001 * i as f64,
            })
            .collect();
        let svg = line_chart(&UNITS[1], &samples, now).expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains(">\nms\n</text>"), "y unit");
        assert!(svg.contains("minutes before now"), "x unit");
        assert!(svg.contains("<polyline"), "a line");
        assert_eq!(line_chart(&UNITS[0], &[], now), None);
        assert!(UNITS
            .iter()
            .zip(crate::fleet::SERIES)
            .all(|(u, (s, _))| u.series == s));
    }
}
