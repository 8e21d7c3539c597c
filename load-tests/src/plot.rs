//! The SVG of a run: delivery latency per second of the run (p50, p99, max) above the
//! server's resident memory.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::collector::Outcome;
use crate::server::Sample;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// (second of the run, p50, p99, max in milliseconds).
type Second = (u32, f64, f64, f64);

/// A plotted series: its name, colour and value of a second.
type Line = (&'static str, RGBColor, fn(&Second) -> f64);

/// Per second of the run, the latency percentiles of the deliveries that arrived in it.
pub fn per_second(outcome: &Outcome) -> Vec<Second> {
    let mut buckets: Vec<Vec<u32>> = Vec::new();
    for (at, us) in &outcome.series {
        let s = *at as usize;
        if buckets.len() <= s {
            buckets.resize(s + 1, Vec::new());
        }
        buckets[s].push(*us);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(s, mut b)| {
            b.sort_unstable();
            let q = |p: f64| f64::from(b[((b.len() - 1) as f64 * p).round() as usize]) / 1000.0;
            (s as u32, q(0.5), q(0.99), q(1.0))
        })
        .collect()
}

pub fn draw(path: &Path, title: &str, outcome: &Outcome, samples: &[Sample]) -> anyhow::Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the embedded font does not load"))?;
    let series = per_second(outcome);
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(460);
    let seconds = series.last().map_or(1, |s| s.0 + 1).max(1);
    let highest = series.iter().map(|s| s.3).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0u32..seconds, (0.1f64..highest * 1.2).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the writes began")
        .y_desc("commit → delivery, ms (log)")
        .draw()?;
    let lines: [Line; 3] = [
        ("p50", BLUE, |s| s.1),
        ("p99", RGBColor(230, 120, 0), |s| s.2),
        ("max", RED, |s| s.3),
    ];
    for (name, color, value) in lines {
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|s| (s.0, value(s).max(0.1))),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let peak_mb = samples
        .iter()
        .map(|s| s.rss_bytes as f64 / 1_048_576.0)
        .fold(1.0, f64::max);
    let mut memory = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0u32..(samples.len() as u32).max(1), 0f64..peak_mb * 1.2)?;
    memory
        .configure_mesh()
        .x_desc("seconds since the sessions began connecting")
        .y_desc("server RSS, MiB")
        .draw()?;
    memory.draw_series(LineSeries::new(
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, s.rss_bytes as f64 / 1_048_576.0)),
        GREEN.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}
