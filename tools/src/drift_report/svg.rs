//! Inline SVG charts for the drift report: no script and no external
//! assets, so the page renders the same from a mail attachment, a CI
//! artifact or a file share.
//!
//! The charts are `maud` templates: every splice (`(...)`) is escaped for
//! text and attribute values alike, so a name from the data cannot end an
//! attribute or open an element.

use maud::{Markup, html};
use scorestream_operators::drift::Statistic;

/// A number as people read it in a chart: four significant digits, in
/// scientific notation only when very large or small.
pub(super) fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let magnitude = if a == 0.0 {
        0
    } else {
        a.log10().floor() as i32
    };
    let decimals = (3 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" { "0".into() } else { s.into() }
}

/// A coordinate with two decimals: enough for a screen, short in the file.
pub(super) fn c2(v: f64) -> String {
    format!("{v:.2}")
}

pub(super) const REFERENCE: &str = "#4e79a7";
pub(super) const BREACH: &str = "#d62728";

/// One point of a statistic over time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub value: Option<f64>,
    pub breached: bool,
}

/// Where a series chart puts its points.
struct Frame {
    left: f64,
    top: f64,
    plot_w: f64,
    plot_h: f64,
    lo: f64,
    hi: f64,
    points: usize,
}

impl Frame {
    fn y(&self, v: f64) -> f64 {
        self.top + self.plot_h - self.plot_h * (v - self.lo) / (self.hi - self.lo)
    }

    fn x(&self, i: usize) -> f64 {
        self.left
            + if self.points > 1 {
                self.plot_w / (self.points - 1) as f64 * i as f64
            } else {
                self.plot_w / 2.0
            }
    }
}

/// The polylines through consecutive points: gaps (windows without the
/// statistic) break the line.
fn runs(f: &Frame, points: &[Point]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => run.push(format!("{:.2},{:.2}", f.x(i), f.y(v))),
            None if run.len() > 1 => out.push(std::mem::take(&mut run).join(" ")),
            None => run.clear(),
        }
    }
    if run.len() > 1 {
        out.push(run.join(" "));
    }
    out
}

/// What a series chart's axes say: the statistic's unit up the side, and
/// under the axis the first and last windows' starts.
pub(super) struct SeriesAxes {
    pub unit: String,
    pub first: String,
    pub last: String,
}

/// A statistic over the windows, oldest first, with its threshold dashed
/// and breaching windows marked.
/// `thresholds` are drawn as dashed lines (two, at ±t, for a statistic
/// that breaches in either direction).
pub(super) fn series(
    feature: &str,
    statistic: &str,
    points: &[Point],
    thresholds: &[f64],
    axes: &SeriesAxes,
) -> Markup {
    let (w, h, left, top, bottom) = (300.0, 170.0, 66.0, 20.0, 44.0);
    let values = points
        .iter()
        .filter_map(|p| p.value)
        .chain(thresholds.iter().copied());
    let (lo, hi) = values.fold((0.0_f64, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi <= lo {
        lo + 1.0
    } else {
        hi + (hi - lo) * 0.05
    };
    let f = Frame {
        left,
        top,
        plot_w: w - left - 8.0,
        plot_h: h - top - bottom,
        lo,
        hi,
        points: points.len(),
    };
    let (y0, x1, tx) = (c2(top + f.plot_h), left + f.plot_w, left - 4.0);
    let y_mid = c2(top + f.plot_h / 2.0);
    let latest = points.iter().rev().find_map(|p| p.value);
    html! {
        svg class="chart series" data-feature=(feature) data-statistic=(statistic)
            viewBox={ "0 0 " (w) " " (h) } width=(w) height=(h) role="img"
            aria-label={ (statistic) " of " (feature) " per window" } {
            text x=(left) y="12" font-size="11" font-weight="bold" { (statistic) }
            text x=(w - 8.0) y="12" font-size="11" text-anchor="end" {
                @if let Some(v) = latest { "latest " (num(v)) }
            }
            line class="axis" x1=(left) y1=(y0) x2=(x1) y2=(y0) stroke="#888" {}
            text class="tick" x=(tx) y=(c2(top + 6.0)) font-size="10" text-anchor="end" {
                (num(hi))
            }
            text class="tick" x=(tx) y=(y0) font-size="10" text-anchor="end" { (num(lo)) }
            text class="axis-title y" x="10" y=(y_mid) font-size="10" text-anchor="middle"
                transform={ "rotate(-90 10 " (y_mid) ")" } { (axes.unit) }
            text class="tick" x=(left) y=(c2(top + f.plot_h + 12.0)) font-size="9" {
                (axes.first)
            }
            text class="tick" x=(x1) y=(c2(top + f.plot_h + 12.0)) font-size="9"
                text-anchor="end" { (axes.last) }
            text class="axis-title x" x=(c2(left + f.plot_w / 2.0)) y=(c2(h - 6.0))
                font-size="10" text-anchor="middle" { "window start (UTC), oldest to newest" }
            @for &t in thresholds {
                @let ty = c2(f.y(t));
                line class="threshold" x1=(left) y1=(ty) x2=(x1) y2=(ty) stroke=(BREACH)
                    stroke-dasharray="4 3" { title { "threshold " (num(t)) } }
            }
            @for run in runs(&f, points) {
                polyline class="line" fill="none" stroke=(REFERENCE) stroke-width="1.5"
                    points=(run) {}
            }
            @for (i, p) in points.iter().enumerate() {
                @if let Some(v) = p.value {
                    @let (class, color, r) = if p.breached {
                        ("point breach", BREACH, 3.5)
                    } else {
                        ("point", REFERENCE, 2.0)
                    };
                    circle class=(class) cx=(c2(f.x(i))) cy=(c2(f.y(v))) r=(r) fill=(color) {
                        title { "window " (i + 1) ": " (num(v)) }
                    }
                }
            }
        }
    }
}

/// What a statistic is measured in, for its chart's axis.
pub(super) fn unit(s: Statistic, feature: &str) -> String {
    match s {
        Statistic::Psi => "PSI (unitless)".into(),
        Statistic::JsDistance => "JS distance (0 to 0.83)".into(),
        Statistic::Ks => "KS statistic (0 to 1)".into(),
        Statistic::Wasserstein => format!("in {feature}'s units"),
        Statistic::ChiSquare => "chi-square statistic".into(),
        Statistic::ChiSquareP => "p-value (0 to 1)".into(),
        Statistic::MissingRateChange => "missing share change".into(),
    }
}
