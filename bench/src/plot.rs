//! Charts for the Skua-vs-Kafka benchmark report: SVG line charts drawn with `plotters` from
//! loadgen result files (OpenMessaging Benchmark `TestResult` field names, read as
//! `serde_json::Value`).
//!
//! Owns: which fields each chart reads, how a run's series are turned into points, axis ranges
//! and scales, colours, and the "no data" chart. A missing or malformed field drops that series
//! or point; it never fails the report.
//!
//! Must not know: how runs were produced (brokers, the harness, loadgen's threads) or where the
//! report lives; the caller hands in file paths and `(run label, result)` pairs. Runs on the
//! caller's thread; its only I/O is writing the SVG files.
//!
//! Fonts: `plotters` is built without `ttf`/`ab_glyph`, so it measures text with its built-in
//! estimate and the SVG backend writes every label as a `<text>` element for the viewer to
//! render. No font file is read, at build time or at run time.

use std::ops::Range;
use std::path::Path;

use anyhow::Context as _;

use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// Size of every chart, in SVG pixels.
const CHART_WIDTH_PX: u32 = 1024;
const CHART_HEIGHT_PX: u32 = 640;
/// Length of one loadgen reporting period: the per-period series have one entry per period.
const PERIOD_SECONDS: f64 = 10.0;
/// Above this max/min ratio a latency chart uses a log scale, or the low percentiles flatten.
const LOG_SCALE_RATIO_MIN: f64 = 100.0;
/// Empty space above the highest point, so the legend does not cover the lines.
const LINEAR_HEADROOM: f64 = 1.25;
const LOG_HEADROOM: f64 = 3.0;
/// The percentiles of a latency chart: label and the `TestResult` aggregate field suffix.
const PERCENTILES: [(&str, &str); 7] = [
    ("p50", "50pct"),
    ("p75", "75pct"),
    ("p95", "95pct"),
    ("p99", "99pct"),
    ("p99.9", "999pct"),
    ("p99.99", "9999pct"),
    ("max", "Max"),
];
/// One colour per run (Tableau 10), repeating after ten runs.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Which latency a percentile chart shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyKind {
    /// Send to acknowledgement (`aggregatedPublishLatency*`).
    Publish,
    /// Send to receipt by a consumer (`aggregatedEndToEndLatency*`).
    EndToEnd,
}

impl LatencyKind {
    fn field_prefix(self) -> &'static str {
        match self {
            LatencyKind::Publish => "aggregatedPublishLatency",
            LatencyKind::EndToEnd => "aggregatedEndToEndLatency",
        }
    }

    fn title(self) -> &'static str {
        match self {
            LatencyKind::Publish => "Publish latency by percentile",
            LatencyKind::EndToEnd => "End-to-end latency by percentile",
        }
    }
}

/// A line chart of `series` with linear axes.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> anyhow::Result<()> {
    let lines = series
        .iter()
        .enumerate()
        .map(|(index, series)| Line { series: series.clone(), color: color(index), dashed: false })
        .collect();
    Chart {
        title,
        x_label,
        y_label,
        lines,
        x_categories: None,
        y_scale: YScale::Linear,
        legend_position: SeriesLabelPosition::UpperRight,
    }
    .write(path)
}

/// Publish and consume rate (messages/s) of every run against time: `<run> publish` solid,
/// `<run> consume` dashed, one colour per run.
pub fn throughput_over_time(path: &Path, runs: &[(String, Value)]) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for (index, (name, result)) in runs.iter().enumerate() {
        let label = run_label(index, name, result);
        for (field, per_second, metric, dashed) in [
            ("publishRate", "publishRatePerSecond", "publish", false),
            ("consumeRate", "consumeRatePerSecond", "consume", true),
        ] {
            // loadgen's 1-second series when present (short runs have one 10-second period).
            let mut points = second_series(result, per_second);
            if points.is_empty() {
                points = period_series(result, field);
            }
            lines.push(Line {
                series: Series { label: format!("{label} {metric}"), points },
                color: color(index),
                dashed,
            });
        }
    }
    Chart {
        title: "Throughput over time",
        x_label: "time (s)",
        y_label: "messages/s",
        lines,
        x_categories: None,
        y_scale: YScale::Linear,
        legend_position: SeriesLabelPosition::LowerRight,
    }
    .write(path)
}

/// Latency at each percentile of the measured part of every run, in ms; log scale when the
/// values span more than `LOG_SCALE_RATIO_MIN`.
pub fn latency_percentiles(path: &Path, runs: &[(String, Value)], kind: LatencyKind) -> anyhow::Result<()> {
    let lines = runs
        .iter()
        .enumerate()
        .map(|(index, (name, result))| {
            let points = PERCENTILES
                .iter()
                .enumerate()
                .filter_map(|(position, (_, suffix))| {
                    let field = format!("{}{suffix}", kind.field_prefix());
                    finite(result.get(&field)).map(|ms| (position as f64, ms))
                })
                .collect();
            Line {
                series: Series { label: run_label(index, name, result), points },
                color: color(index),
                dashed: false,
            }
        })
        .collect();
    let categories: Vec<&str> = PERCENTILES.iter().map(|(label, _)| *label).collect();
    Chart {
        title: kind.title(),
        x_label: "percentile",
        y_label: "latency (ms)",
        lines,
        x_categories: Some(&categories),
        y_scale: YScale::LogIfWide,
        legend_position: SeriesLabelPosition::UpperLeft,
    }
    .write(path)
}

/// Total consumer lag (messages behind the log end) of every run against time.
pub fn consumer_lag_over_time(path: &Path, runs: &[(String, Value)]) -> anyhow::Result<()> {
    let lines = runs
        .iter()
        .enumerate()
        .map(|(index, (name, result))| Line {
            series: Series { label: run_label(index, name, result), points: lag_series(result) },
            color: color(index),
            dashed: false,
        })
        .collect();
    Chart {
        title: "Consumer lag over time",
        x_label: "time (s)",
        y_label: "consumer lag (messages)",
        lines,
        x_categories: None,
        y_scale: YScale::Linear,
        legend_position: SeriesLabelPosition::UpperRight,
    }
    .write(path)
}

/// The run's label: the caller's name, else the broker from the metadata, else its position.
fn run_label(index: usize, name: &str, result: &Value) -> String {
    if !name.trim().is_empty() {
        return name.to_string();
    }
    match result.pointer("/metadata/broker").and_then(Value::as_str) {
        Some(broker) if !broker.trim().is_empty() => broker.to_string(),
        _ => format!("run {}", index + 1),
    }
}

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

fn finite(value: Option<&Value>) -> Option<f64> {
    value?.as_f64().filter(|number| number.is_finite())
}

/// A per-period array as (seconds since start, value); entry `i` is at `i × PERIOD_SECONDS`.
/// A list sampled once a second (index = seconds since the start of the run).
fn second_series(result: &Value, field: &str) -> Vec<(f64, f64)> {
    let Some(values) = result.get(field).and_then(Value::as_array) else {
        return Vec::new();
    };
    values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| finite(Some(value)).map(|y| (index as f64 + 1.0, y)))
        .collect()
}

fn period_series(result: &Value, field: &str) -> Vec<(f64, f64)> {
    let Some(values) = result.get(field).and_then(Value::as_array) else {
        return Vec::new();
    };
    values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| finite(Some(value)).map(|y| (index as f64 * PERIOD_SECONDS, y)))
        .collect()
}

/// `consumerLag[]` as (elapsed seconds, total). loadgen's `LagSample` serializes its fields in
/// snake case (`elapsed_seconds`), OMB style would be camel case: both are read.
fn lag_series(result: &Value) -> Vec<(f64, f64)> {
    let Some(samples) = result.get("consumerLag").and_then(Value::as_array) else {
        return Vec::new();
    };
    samples
        .iter()
        .filter_map(|sample| {
            let seconds = finite(sample.get("elapsedSeconds").or_else(|| sample.get("elapsed_seconds")))?;
            let total = finite(sample.get("total"))?;
            Some((seconds, total))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum YScale {
    Linear,
    /// Log when the positive values span more than `LOG_SCALE_RATIO_MIN` (non-positive points
    /// are then left out: they have no place on a log axis).
    LogIfWide,
}

#[derive(Debug)]
struct Line {
    series: Series,
    color: RGBColor,
    dashed: bool,
}

struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    lines: Vec<Line>,
    /// Categorical x axis: point `x = i` is labelled `x_categories[i]`.
    x_categories: Option<&'a [&'a str]>,
    y_scale: YScale,
    legend_position: SeriesLabelPosition,
}

/// The smallest box holding every point.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    x_min: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Bounds {
    fn of<'p>(points: impl Iterator<Item = &'p (f64, f64)>) -> Option<Bounds> {
        points.fold(None, |bounds, &(x, y)| {
            Some(match bounds {
                None => Bounds { x_min: x, x_max: x, y_min: y, y_max: y },
                Some(b) => Bounds {
                    x_min: b.x_min.min(x),
                    x_max: b.x_max.max(x),
                    y_min: b.y_min.min(y),
                    y_max: b.y_max.max(y),
                },
            })
        })
    }
}

impl Chart<'_> {
    fn write(mut self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        for line in &mut self.lines {
            line.series.points.retain(|(x, y)| x.is_finite() && y.is_finite());
        }
        let bounds = Bounds::of(self.lines.iter().flat_map(|line| &line.series.points));
        let log = self.y_scale == YScale::LogIfWide
            && bounds.is_some_and(|b| {
                let positive_min = self.positive_y_min();
                b.y_max > 0.0 && positive_min.is_some_and(|min| b.y_max / min > LOG_SCALE_RATIO_MIN)
            });
        if log {
            for line in &mut self.lines {
                line.series.points.retain(|&(_, y)| y > 0.0);
            }
        }
        self.lines.retain(|line| !line.series.points.is_empty());
        let root = SVGBackend::new(path, (CHART_WIDTH_PX, CHART_HEIGHT_PX)).into_drawing_area();
        self.draw(&root, bounds, log).with_context(|| format!("drawing {}", path.display()))
    }

    fn positive_y_min(&self) -> Option<f64> {
        self.lines.iter().flat_map(|line| &line.series.points).map(|&(_, y)| y).filter(|&y| y > 0.0).reduce(f64::min)
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>, bounds: Option<Bounds>, log: bool) -> anyhow::Result<()> {
        root.fill(&WHITE)?;
        let (x_min, x_max) = match (self.x_categories, bounds) {
            (Some(categories), _) => (-0.5, categories.len().max(1) as f64 - 0.5),
            (None, Some(b)) => widen(b.x_min, b.x_max),
            (None, None) => (0.0, 1.0),
        };
        let x_positions = self.x_categories.map(|categories| (0..categories.len()).map(|i| i as f64).collect());
        match (bounds, x_positions) {
            (None, None) => self.draw_lines(root, x_min..x_max, 0.0..1.0)?,
            (None, Some(positions)) => self.draw_lines(root, CategoryAxis::new(x_min..x_max, positions), 0.0..1.0)?,
            (Some(b), positions) => {
                if log {
                    // `log` implies a positive minimum exists.
                    let y_min = self.positive_y_min().unwrap_or(1.0) / LOG_HEADROOM.sqrt();
                    let y_range = (y_min..b.y_max * LOG_HEADROOM).log_scale();
                    match positions {
                        Some(positions) => {
                            self.draw_lines(root, CategoryAxis::new(x_min..x_max, positions), y_range)?
                        }
                        None => self.draw_lines(root, x_min..x_max, y_range)?,
                    }
                } else {
                    // Rates and lags read best against zero.
                    let (y_min, y_max) = widen(b.y_min.min(0.0), b.y_max.max(0.0));
                    let y_range = y_min * LINEAR_HEADROOM..y_max * LINEAR_HEADROOM;
                    match positions {
                        Some(positions) => {
                            self.draw_lines(root, CategoryAxis::new(x_min..x_max, positions), y_range)?
                        }
                        None => self.draw_lines(root, x_min..x_max, y_range)?,
                    }
                }
            }
        }
        root.present()?;
        Ok(())
    }

    fn draw_lines<X, Y>(&self, root: &DrawingArea<SVGBackend<'_>, Shift>, x_range: X, y_range: Y) -> anyhow::Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 28))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)?;
        let x_format = |x: &f64| match self.x_categories {
            Some(categories) => category_at(categories, *x),
            None => format_number(*x),
        };
        let y_format = |y: &f64| format_number(*y);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_label)
            .y_desc(self.y_label)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 14));
        if self.lines.is_empty() {
            // The placeholder 0..1 range is no measurement: show no numbers on it.
            mesh.y_labels(0);
            if self.x_categories.is_none() {
                mesh.x_labels(0);
            }
        }
        mesh.draw()?;
        if self.lines.is_empty() {
            let (x_pixels, y_pixels) = chart.plotting_area().dim_in_pixel();
            let center = (x_pixels as i32 / 2, y_pixels as i32 / 2);
            let style = ("sans-serif", 32).into_font().color(&BLACK.mix(0.5)).pos(Pos::new(HPos::Center, VPos::Center));
            chart.plotting_area().strip_coord_spec().draw(&Text::new("no data", center, style))?;
            return Ok(());
        }
        // Categories are points, not a continuum: mark them.
        let marker_size = if self.x_categories.is_some() { 4 } else { 0 };
        for line in &self.lines {
            let style = line.color.stroke_width(2);
            let points = line.series.points.iter().copied();
            if line.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points, 8, 6, style))?
                    .label(line.series.label.as_str())
                    .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 24, y)], 8, 6, style));
            } else {
                chart
                    .draw_series(LineSeries::new(points, style).point_size(marker_size))?
                    .label(line.series.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
        }
        chart
            .configure_series_labels()
            .position(self.legend_position.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()?;
        Ok(())
    }
}

/// A categorical x axis: a linear f64 axis whose ticks (and bold grid lines) sit only at the
/// category positions `0, 1, …`. plotters' own `with_key_points` on f64 loses the value
/// formatter the mesh needs, hence this type.
#[derive(Clone, Debug)]
struct CategoryAxis {
    range: Range<f64>,
    positions: Vec<f64>,
}

impl CategoryAxis {
    fn new(range: Range<f64>, positions: Vec<f64>) -> CategoryAxis {
        CategoryAxis { range, positions }
    }
}

impl Ranged for CategoryAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.range.clone()).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // No light grid lines between categories: they would suggest values in between.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.positions.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A range that is never empty: a single value 0 gets `0..1` (a lag that stayed at zero),
/// any other single value one unit either side.
fn widen(min: f64, max: f64) -> (f64, f64) {
    if max > min {
        (min, max)
    } else if min == 0.0 {
        (0.0, 1.0)
    } else {
        (min - 1.0, max + 1.0)
    }
}

fn category_at(categories: &[&str], x: f64) -> String {
    let rounded = x.round();
    if (x - rounded).abs() > 1e-6 || rounded < 0.0 {
        return String::new();
    }
    categories.get(rounded as usize).map_or_else(String::new, |label| (*label).to_string())
}

/// A tick label: SI suffix from ten thousand on, a few significant digits below.
fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "G")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e4 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let scaled_magnitude = scaled.abs();
    let decimals = if scaled_magnitude == 0.0 || scaled_magnitude >= 100.0 {
        0
    } else {
        // Three significant digits, at most six decimals.
        (2 - scaled_magnitude.log10().floor() as i32).clamp(0, 6) as usize
    };
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        text.truncate(text.trim_end_matches('0').trim_end_matches('.').len());
    }
    if text == "-0" {
        text = "0".to_string();
    }
    text + suffix
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fake_result(broker: &str, rate: f64, latency_ms: f64) -> Value {
        json!({
            "workload": "1-topic-16-partitions-1kb",
            "publishRate": [rate, rate * 1.01, rate * 0.99, rate],
            "consumeRate": [rate * 0.98, rate, rate, rate * 1.02],
            "backlog": [0, 10, 5, 0],
            "publishLatency50pct": [latency_ms, latency_ms, latency_ms, latency_ms],
            "aggregatedPublishLatency50pct": latency_ms,
            "aggregatedPublishLatency75pct": latency_ms * 1.3,
            "aggregatedPublishLatency95pct": latency_ms * 2.0,
            "aggregatedPublishLatency99pct": latency_ms * 4.0,
            "aggregatedPublishLatency999pct": latency_ms * 12.0,
            "aggregatedPublishLatency9999pct": latency_ms * 40.0,
            "aggregatedPublishLatencyMax": latency_ms * 250.0,
            "aggregatedEndToEndLatency50pct": latency_ms * 2.0,
            "aggregatedEndToEndLatency75pct": latency_ms * 2.5,
            "aggregatedEndToEndLatency95pct": latency_ms * 3.0,
            "aggregatedEndToEndLatency99pct": latency_ms * 5.0,
            "aggregatedEndToEndLatency999pct": latency_ms * 8.0,
            "aggregatedEndToEndLatency9999pct": latency_ms * 9.0,
            "aggregatedEndToEndLatencyMax": latency_ms * 10.0,
            "consumerLag": [
                {"elapsed_seconds": 1.0, "total": 0, "per_partition": {"t-0": 0}},
                {"elapsed_seconds": 2.0, "total": 120, "per_partition": {"t-0": 120}},
                {"elapsedSeconds": 3.0, "total": 40, "perPartition": {"t-0": 40}},
            ],
            "metadata": {"broker": broker},
        })
    }

    fn runs() -> Vec<(String, Value)> {
        vec![
            ("skua".to_string(), fake_result("skua", 200_000.0, 0.8)),
            ("kafka".to_string(), fake_result("kafka", 150_000.0, 2.5)),
        ]
    }

    fn read_svg(path: &Path) -> String {
        let svg = std::fs::read_to_string(path).expect("the chart was written");
        assert!(svg.starts_with("<svg"), "{}: {}", path.display(), &svg[..svg.len().min(80)]);
        svg
    }

    /// The contents of every `<text>` element, trimmed (plotters puts them on their own line).
    fn svg_texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let (_, rest) = element.split_once('>')?;
                let (content, _) = rest.split_once("</text>")?;
                Some(content.trim())
            })
            .collect()
    }

    fn assert_texts(svg: &str, texts: &[&str]) {
        let found = svg_texts(svg);
        for text in texts {
            assert!(found.contains(text), "missing text {text:?} in {found:?}");
        }
    }

    #[test]
    fn throughput_chart_has_labels_and_legend() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("throughput.svg");
        throughput_over_time(&path, &runs()).expect("throughput chart");
        let svg = read_svg(&path);
        assert_texts(
            &svg,
            &[
                "Throughput over time",
                "time (s)",
                "messages/s",
                "skua publish",
                "skua consume",
                "kafka publish",
                "kafka consume",
            ],
        );
        assert!(svg.contains("<polyline"), "lines drawn");
    }

    #[test]
    fn latency_charts_have_percentile_labels() {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (kind, title) in [
            (LatencyKind::Publish, "Publish latency by percentile"),
            (LatencyKind::EndToEnd, "End-to-end latency by percentile"),
        ] {
            let path = dir.path().join(format!("{kind:?}.svg"));
            latency_percentiles(&path, &runs(), kind).expect("latency chart");
            let svg = read_svg(&path);
            assert_texts(&svg, &[title, "percentile", "latency (ms)", "skua", "kafka"]);
            assert_texts(&svg, &PERCENTILES.map(|(label, _)| label));
            // Publish spans 250× (log axis, decade ticks); end-to-end 10× (linear from 0).
            let decade_ticks = ["1", "10", "100"].iter().all(|tick| svg_texts(&svg).contains(tick));
            assert_eq!(decade_ticks, kind == LatencyKind::Publish, "{:?}", svg_texts(&svg));
        }
    }

    #[test]
    fn consumer_lag_chart_reads_both_field_spellings() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("lag.svg");
        consumer_lag_over_time(&path, &runs()).expect("lag chart");
        let svg = read_svg(&path);
        assert_texts(&svg, &["Consumer lag over time", "time (s)", "consumer lag (messages)", "skua", "kafka"]);
        let points = lag_series(&runs()[0].1);
        assert_eq!(points, vec![(1.0, 0.0), (2.0, 120.0), (3.0, 40.0)]);
    }

    #[test]
    fn line_chart_escapes_labels() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nested").join("custom.svg");
        let series = [
            Series { label: "a <&> b".to_string(), points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, f64::NAN)] },
            Series { label: "flat".to_string(), points: vec![(5.0, 2.0)] },
        ];
        line_chart(&path, "Custom", "x axis", "y axis", &series).expect("line chart");
        let svg = read_svg(&path);
        assert_texts(&svg, &["Custom", "x axis", "y axis", "a &lt;&amp;&gt; b", "flat"]);
    }

    #[test]
    fn empty_and_missing_fields_make_a_no_data_chart() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let broken = vec![
            (String::new(), json!({"metadata": {"broker": "kafka"}})),
            (
                "nulls".to_string(),
                json!({"publishRate": [null, "x"], "consumerLag": [{"total": 3}], "aggregatedPublishLatency50pct": "slow"}),
            ),
            ("not an object".to_string(), json!([1, 2, 3])),
            ("empty".to_string(), Value::Null),
        ];
        for runs in [Vec::new(), broken] {
            let throughput = dir.path().join("throughput.svg");
            throughput_over_time(&throughput, &runs).expect("throughput chart");
            assert_texts(&read_svg(&throughput), &["Throughput over time", "time (s)", "no data"]);
            for kind in [LatencyKind::Publish, LatencyKind::EndToEnd] {
                let latency = dir.path().join("latency.svg");
                latency_percentiles(&latency, &runs, kind).expect("latency chart");
                assert_texts(&read_svg(&latency), &["percentile", "p99.9", "no data"]);
            }
            let lag = dir.path().join("lag.svg");
            consumer_lag_over_time(&lag, &runs).expect("lag chart");
            assert_texts(&read_svg(&lag), &["Consumer lag over time", "no data"]);
            let custom = dir.path().join("custom.svg");
            line_chart(&custom, "Nothing", "x", "y", &[]).expect("line chart");
            assert_texts(&read_svg(&custom), &["Nothing", "no data"]);
        }
    }

    #[test]
    fn partial_latency_uses_the_fields_present() {
        let result = json!({"aggregatedPublishLatency99pct": 3.0, "aggregatedPublishLatencyMax": 900.0});
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("partial.svg");
        latency_percentiles(&path, &[(String::new(), result)], LatencyKind::Publish).expect("latency chart");
        // No name and no broker: the run is named by its position.
        assert_texts(&read_svg(&path), &["run 1", "p99", "max"]);
    }

    #[test]
    fn run_label_falls_back_to_the_broker() {
        assert_eq!(run_label(0, "", &json!({"metadata": {"broker": "kafka"}})), "kafka");
        assert_eq!(run_label(1, " ", &json!({})), "run 2");
        assert_eq!(run_label(0, "skua fsync", &json!({"metadata": {"broker": "skua"}})), "skua fsync");
    }

    #[test]
    fn tick_labels_are_short() {
        for (value, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (-0.0001, "-0.0001"),
            (0.25, "0.25"),
            (1.0, "1"),
            (12.5, "12.5"),
            (150.0, "150"),
            (2_500.0, "2500"),
            (25_000.0, "25k"),
            (200_000.0, "200k"),
            (1_250_000.0, "1.25M"),
            (3e9, "3G"),
            (0.00123, "0.00123"),
        ] {
            assert_eq!(format_number(value), text, "{value}");
        }
        assert_eq!(widen(0.0, 0.0), (0.0, 1.0));
        assert_eq!(widen(5.0, 5.0), (4.0, 6.0));
        assert_eq!(widen(1.0, 3.0), (1.0, 3.0));
        assert_eq!(category_at(&["p50", "p75"], 1.0), "p75");
        assert_eq!(category_at(&["p50", "p75"], 0.5), "");
        assert_eq!(category_at(&["p50", "p75"], 7.0), "");
    }
}
