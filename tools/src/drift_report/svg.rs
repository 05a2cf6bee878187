//! Inline SVG charts for the drift report: no script and no external
//! assets, so the page renders the same from a mail attachment, a CI
//! artifact or a file share.

use std::fmt::Write;

/// Escapes text for HTML and SVG content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

const REFERENCE: &str = "#4e79a7";
const RECENT: &str = "#f28e2b";
const BREACH: &str = "#d62728";

/// Reference and recent shares per bin, side by side.
pub(super) fn histogram(
    feature: &str,
    labels: &[String],
    reference: &[f64],
    recent: &[f64],
) -> String {
    let (w, h, left, top, bottom) = (640.0, 240.0, 44.0, 24.0, 64.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - top - bottom;
    let max = reference
        .iter()
        .chain(recent)
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let n = labels.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.4).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart histogram" data-feature="{f}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="reference and recent distribution of {f}">"#,
        f = esc(feature)
    );
    let _ = write!(
        s,
        r##"<line class="axis" x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#888"/><text x="{tx}" y="{ty}" font-size="10" text-anchor="end">{m}</text><text x="{tx}" y="{y0}" font-size="10" text-anchor="end">0</text>"##,
        y0 = top + plot_h,
        x1 = left + plot_w,
        tx = left - 4.0,
        ty = top + 4.0,
        m = esc(&format!("{:.1}%", max * 100.0)),
    );
    for (i, label) in labels.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.1;
        for (k, (shares, color, class, who)) in [
            (reference, REFERENCE, "ref", "reference"),
            (recent, RECENT, "recent", "latest window"),
        ]
        .into_iter()
        .enumerate()
        {
            let v = shares.get(i).copied().unwrap_or(0.0);
            let bh = plot_h * v / max;
            let _ = write!(
                s,
                r#"<rect class="bar {class}" x="{x:.2}" y="{y:.2}" width="{bar:.2}" height="{bh:.2}" fill="{color}"><title>{l}: {who} {p}</title></rect>"#,
                x = x + bar * k as f64,
                y = top + plot_h - bh,
                l = esc(label),
                p = esc(&format!("{:.2}%", v * 100.0)),
            );
        }
        let short: String = if label.chars().count() > 14 {
            label.chars().take(13).chain(['…']).collect()
        } else {
            label.clone()
        };
        let lx = left + slot * (i as f64 + 0.5);
        let ly = top + plot_h + 12.0;
        let _ = write!(
            s,
            r#"<text x="{lx:.2}" y="{ly:.2}" font-size="10" text-anchor="end" transform="rotate(-35 {lx:.2} {ly:.2})">{}</text>"#,
            esc(&short)
        );
    }
    let _ = write!(
        s,
        r#"<rect x="{x}" y="4" width="10" height="10" fill="{REFERENCE}"/><text x="{tx}" y="13" font-size="11">reference</text><rect x="{x2}" y="4" width="10" height="10" fill="{RECENT}"/><text x="{tx2}" y="13" font-size="11">latest window</text></svg>"#,
        x = left,
        tx = left + 14.0,
        x2 = left + 90.0,
        tx2 = left + 104.0,
    );
    s
}

/// One point of a statistic over time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub value: Option<f64>,
    pub breached: bool,
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
) -> String {
    let (w, h, left, top, bottom) = (290.0, 140.0, 60.0, 20.0, 18.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - top - bottom;
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
    let y = |v: f64| top + plot_h - plot_h * (v - lo) / (hi - lo);
    let step = if points.len() > 1 {
        plot_w / (points.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| {
        left + if points.len() > 1 {
            step * i as f64
        } else {
            plot_w / 2.0
        }
    };
    let mut s = String::new();
    let latest = points.iter().rev().find_map(|p| p.value);
    let _ = write!(
        s,
        r##"<svg class="chart series" data-feature="{f}" data-statistic="{st}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{st} of {f} per window"><text x="{left}" y="12" font-size="11" font-weight="bold">{st}</text><text x="{rx}" y="12" font-size="11" text-anchor="end">{latest}</text><line class="axis" x1="{left}" y1="{y0:.2}" x2="{x1}" y2="{y0:.2}" stroke="#888"/><text x="{tx}" y="{ty:.2}" font-size="10" text-anchor="end">{hi_l}</text><text x="{tx}" y="{y0:.2}" font-size="10" text-anchor="end">{lo_l}</text>"##,
        f = esc(feature),
        st = esc(statistic),
        rx = w - 8.0,
        latest = latest
            .map(|v| format!("latest {}", esc(&num(v))))
            .unwrap_or_default(),
        y0 = top + plot_h,
        x1 = left + plot_w,
        tx = left - 4.0,
        ty = top + 6.0,
        hi_l = esc(&num(hi)),
        lo_l = esc(&num(lo)),
    );
    for &t in thresholds {
        let _ = write!(
            s,
            r#"<line class="threshold" x1="{left}" y1="{ty:.2}" x2="{x1}" y2="{ty:.2}" stroke="{BREACH}" stroke-dasharray="4 3"><title>threshold {t}</title></line>"#,
            ty = y(t),
            x1 = left + plot_w,
            t = esc(&num(t)),
        );
    }
    // Gaps (windows without the statistic) break the line.
    let mut run = Vec::new();
    let flush = |run: &mut Vec<String>, s: &mut String| {
        if run.len() > 1 {
            let _ = write!(
                s,
                r#"<polyline class="line" fill="none" stroke="{REFERENCE}" stroke-width="1.5" points="{}"/>"#,
                run.join(" ")
            );
        }
        run.clear();
    };
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => run.push(format!("{:.2},{:.2}", x(i), y(v))),
            None => flush(&mut run, &mut s),
        }
    }
    flush(&mut run, &mut s);
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.value {
            let (class, color, r) = if p.breached {
                ("point breach", BREACH, 3.5)
            } else {
                ("point", REFERENCE, 2.0)
            };
            let _ = write!(
                s,
                r#"<circle class="{class}" cx="{:.2}" cy="{:.2}" r="{r}" fill="{color}"><title>window {}: {}</title></circle>"#,
                x(i),
                y(v),
                i + 1,
                esc(&num(v))
            );
        }
    }
    s.push_str("</svg>");
    s
}
