//! A column's histogram: the reference's share per bin against the newest
//! windows', one colour each and named in a legend, with axis titles and
//! bin labels whose full text is on hover (a long category or a wide edge
//! is abbreviated under the axis, never lost).

use maud::{Markup, html};

use super::svg::{BREACH, REFERENCE, c2};

/// Windows drawn beside the reference: enough to see a trend, few enough
/// that each bar stays wide enough to read.
pub(super) const WINDOWS: usize = 4;

/// Window colours, oldest to newest; the latest window is always the
/// last (orange), so it reads the same whatever the number drawn.
const WINDOW_COLORS: [&str; WINDOWS] = ["#9c755f", "#b07aa1", "#59a14f", "#f28e2b"];

/// A bin label under the axis has at most this many characters.
const LABEL_CHARS: usize = 16;

/// One series of bars.
pub(super) struct Series {
    /// In the legend: `reference`, or the window's number and start.
    pub(super) name: String,
    /// The legend entry's hover text: the window's full span and rows.
    pub(super) detail: String,
    /// Share of non-null rows per bin.
    pub(super) shares: Vec<f64>,
}

/// What the axes measure.
pub(super) struct Axes<'a> {
    pub(super) x: &'a str,
    pub(super) y: &'a str,
}

fn color(k: usize, series: usize) -> &'static str {
    if k == 0 {
        return REFERENCE;
    }
    let windows = series.saturating_sub(1).min(WINDOWS);
    WINDOW_COLORS
        .get(WINDOWS - windows + k - 1)
        .copied()
        .unwrap_or(BREACH)
}

/// `series[0]` is the reference, the rest windows oldest first.
pub(super) fn histogram(
    feature: &str,
    labels: &[String],
    series: &[Series],
    axes: &Axes<'_>,
) -> Markup {
    let (w, h, left, top, bottom, legend_w) = (780.0, 290.0, 60.0, 16.0, 100.0, 210.0);
    let plot_w = w - left - legend_w - 12.0;
    let plot_h = h - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.shares.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = plot_w / labels.len().max(1) as f64;
    let bar = (slot * 0.8 / series.len().max(1) as f64).max(0.5);
    let (y0, tx, legend_x) = (top + plot_h, left - 4.0, w - legend_w);
    let y_mid = c2(top + plot_h / 2.0);
    html! {
        svg class="chart histogram" data-feature=(feature) data-series=(series.len())
            viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) role="img"
            aria-label={ "reference and recent windows' distribution of " (feature) } {
            line class="axis" x1=(left) y1=(y0) x2=(left + plot_w) y2=(y0) stroke="#888" {}
            line class="axis" x1=(left) y1=(top) x2=(left) y2=(y0) stroke="#888" {}
            text class="tick" x=(tx) y=(c2(top + 4.0)) font-size="10" text-anchor="end" {
                (format_args!("{:.1}%", max * 100.0))
            }
            text class="tick" x=(tx) y=(c2(top + plot_h / 2.0 + 4.0)) font-size="10"
                text-anchor="end" { (format_args!("{:.1}%", max * 50.0)) }
            text class="tick" x=(tx) y=(y0) font-size="10" text-anchor="end" { "0%" }
            text class="axis-title y" x="12" y=(y_mid) font-size="11" text-anchor="middle"
                transform={ "rotate(-90 12 " (y_mid) ")" } { (axes.y) }
            @for (i, label) in labels.iter().enumerate() {
                @let x = left + slot * i as f64 + slot * 0.1;
                @for (k, s) in series.iter().enumerate() {
                    @let v = s.shares.get(i).copied().unwrap_or(0.0);
                    @let bh = plot_h * v / max;
                    rect class=(if k == 0 { "bar ref" } else { "bar window" }) data-series=(k)
                        x=(c2(x + bar * k as f64)) y=(c2(y0 - bh)) width=(c2(bar))
                        height=(c2(bh)) fill=(color(k, series.len())) {
                        title { (label) ": " (s.name) " " (format_args!("{:.2}%", v * 100.0)) }
                    }
                }
                @let (lx, ly) = (c2(left + slot * (i as f64 + 0.5)), c2(y0 + 12.0));
                text class="bin-label" x=(lx) y=(ly) font-size="10" text-anchor="end"
                    transform={ "rotate(-35 " (lx) " " (ly) ")" } {
                    title { (label) }
                    (short(label))
                }
            }
            text class="axis-title x" x=(c2(left + plot_w / 2.0)) y=(c2(h - 6.0))
                font-size="11" text-anchor="middle" { (axes.x) }
            g class="legend" {
                @for (k, s) in series.iter().enumerate() {
                    @let y = top + 4.0 + 18.0 * k as f64;
                    g class="legend-item" data-series=(k) {
                        title { (s.detail) }
                        rect x=(legend_x) y=(c2(y)) width="10" height="10"
                            fill=(color(k, series.len())) {}
                        text x=(legend_x + 14.0) y=(c2(y + 9.0)) font-size="11" { (s.name) }
                    }
                }
            }
        }
    }
}

/// A bin label short enough to sit under its bars; the full label is the
/// element's `<title>`.
fn short(label: &str) -> String {
    if label.chars().count() > LABEL_CHARS {
        label.chars().take(LABEL_CHARS - 1).chain(['…']).collect()
    } else {
        label.to_owned()
    }
}
