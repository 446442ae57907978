//! Line charts of one node's history windows, drawn with plotters' SVG backend.

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use crate::window::Sample;

/// How a series is shown: title, axis unit, and the factor from its base unit to the shown
/// one (RTT in seconds is shown in milliseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesUnit {
    /// Series name, as in [`crate::fleet::SERIES`] or [`crate::fleet::HISTORY_SERIES`].
    pub series: &'static str,
    /// Chart title.
    pub title: &'static str,
    /// Y-axis unit label (without prefix when [`Self::si_prefix`]).
    pub unit: &'static str,
    /// Multiplier from the stored value to the shown one.
    pub scale: f64,
    /// Shown with the SI prefix that fits the largest value ([`axis_unit`]), for series
    /// spanning many orders of magnitude (bytes per second).
    pub si_prefix: bool,
}

const fn unit(
    series: &'static str,
    title: &'static str,
    unit: &'static str,
    scale: f64,
) -> SeriesUnit {
    SeriesUnit {
        series,
        title,
        unit,
        scale,
        si_prefix: false,
    }
}

/// Display settings of every windowed series ([`crate::fleet::SERIES`] and
/// [`crate::fleet::HISTORY_SERIES`]), in page order: RTT p50 next to p99, RDMA traffic next
/// to its errors.
pub const UNITS: [SeriesUnit; 12] = [
    unit("ping_loss_percent", "Ping loss (worst peer)", "%", 1.0),
    unit("ping_rtt_p50_seconds", "RTT p50 (worst peer)", "ms", 1000.0),
    unit("ping_rtt_p99_seconds", "RTT p99 (worst peer)", "ms", 1000.0),
    unit(
        "ping_jitter_seconds",
        "Jitter (mean over peers)",
        "ms",
        1000.0,
    ),
    unit(
        "network_score",
        "Network score (worst path)",
        "points (0-100)",
        1.0,
    ),
    unit("cpu_usage_percent", "CPU busy", "%", 1.0),
    unit("memory_used_percent", "Memory used", "%", 1.0),
    SeriesUnit {
        si_prefix: true,
        ..unit(
            "rdma_receive_bytes_per_second",
            "RDMA received (all ports)",
            "B/s",
            1.0,
        )
    },
    SeriesUnit {
        si_prefix: true,
        ..unit(
            "rdma_transmit_bytes_per_second",
            "RDMA transmitted (all ports)",
            "B/s",
            1.0,
        )
    },
    unit(
        "rdma_errors_per_minute",
        "RDMA port errors",
        "errors/min",
        1.0,
    ),
    unit(
        "rdma_pause_percent",
        "RoCE pause time (busiest port)",
        "%",
        1.0,
    ),
    unit(
        "rdma_discards_per_minute",
        "RoCE discards (all ports)",
        "discards/min",
        1.0,
    ),
];

/// Decimal SI prefixes up to tera (BIPM, The International System of Units, 9th ed., table 7):
/// network and RDMA byte rates are quoted in powers of 1000.
const SI_PREFIXES: [(&str, f64); 5] = [("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)];

/// The axis label and the multiplier from stored values to drawn ones for `samples` of
/// `unit`: its own, or with [`SeriesUnit::si_prefix`] the largest SI prefix whose factor does
/// not exceed the largest |value| (so the top of the axis reads 1 to 999), e.g.
/// `("MB/s", 1e-6)`.
pub fn axis_unit(unit: &SeriesUnit, samples: &[Sample]) -> (String, f64) {
    if !unit.si_prefix {
        return (unit.unit.to_string(), unit.scale);
    }
    let largest = samples
        .iter()
        .map(|s| (s.value * unit.scale).abs())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let (prefix, factor) = SI_PREFIXES
        .iter()
        .rev()
        .find(|(_, f)| largest >= *f)
        .copied()
        .unwrap_or(SI_PREFIXES[0]);
    (format!("{prefix}{}", unit.unit), unit.scale / factor)
}

/// Chart size in SVG user units (the page scales it to its column).
pub const SIZE: (u32, u32) = (560, 220);

/// An SVG line chart of `samples` (oldest first) against minutes before `now`, with the
/// unit ([`axis_unit`]) on the y axis. `None` when there is nothing to draw or plotters fails.
pub fn line_chart(unit: &SeriesUnit, samples: &[Sample], now: DateTime<Utc>) -> Option<String> {
    let (label, scale) = axis_unit(unit, samples);
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| {
            let minutes = (s.at - now).num_milliseconds() as f64 / 60_000.0;
            (minutes, s.value * scale)
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
            .y_desc(label.as_str())
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
        let svg = line_chart(&UNITS[2], &samples, now).expect("chart");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains(">\nms\n</text>"), "y unit");
        assert!(svg.contains("minutes before now"), "x unit");
        assert!(svg.contains("<polyline"), "a line");
        assert_eq!(line_chart(&UNITS[0], &[], now), None);
        // One display setting per windowed series, and no other.
        let mut shown: Vec<&str> = UNITS.iter().map(|u| u.series).collect();
        let mut windowed: Vec<&str> = crate::fleet::SERIES
            .iter()
            .map(|(s, _)| *s)
            .chain(crate::fleet::HISTORY_SERIES)
            .collect();
        shown.sort_unstable();
        windowed.sort_unstable();
        assert_eq!(shown, windowed);
    }

    #[test]
    fn byte_rates_take_the_si_prefix_that_fits() {
        let now = Utc::now();
        let at = |v: f64| Sample { at: now, value: v };
        let rx = UNITS
            .iter()
            .find(|u| u.series == "rdma_receive_bytes_per_second")
            .expect("rx unit");
        assert_eq!(
            axis_unit(rx, &[at(3.0e7), at(1.25e8)]),
            ("MB/s".into(), 1e-6)
        );
        assert_eq!(axis_unit(rx, &[at(999.0)]), ("B/s".into(), 1.0));
        assert_eq!(axis_unit(rx, &[at(1000.0)]), ("kB/s".into(), 1e-3));
        assert_eq!(axis_unit(rx, &[at(2.0e15)]), ("TB/s".into(), 1e-12));
        assert_eq!(axis_unit(rx, &[]), ("B/s".into(), 1.0));
        let svg = line_chart(rx, &[at(5.0e7), at(1.0e8)], now).expect("chart");
        assert!(svg.contains(">\nMB/s\n</text>"), "y unit with prefix");
        // Not prefixed: RTT stays in ms whatever the values.
        assert_eq!(axis_unit(&UNITS[2], &[at(5.0)]), ("ms".into(), 1000.0));
    }
}
