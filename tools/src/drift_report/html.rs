//! The drift report page: a summary table, then per watched column the
//! reference against the latest window's histogram and each statistic over
//! the windows.

use std::collections::BTreeSet;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use scorestream_operators::drift::{ColumnProfile, DriftConfig, ReferenceProfile, Statistic};

use super::bins::{histogram_series, labels, reference_counts};
use super::hist::{Axes, histogram};
use super::read::WindowRow;
use super::svg::{Point, SeriesAxes, num, series, unit};

pub struct ReportInput<'a> {
    pub profile: &'a ReferenceProfile,
    /// The drift table, ordered by window.
    pub rows: &'a [WindowRow],
    /// The job's `[drift]`, for its thresholds (when the report is made
    /// from a job file).
    pub config: Option<&'a DriftConfig>,
    /// Windows shown in the charts: the most recent ones.
    pub last: usize,
    /// Older windows in the table that were not read.
    pub older: usize,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}\
td:first-child,th:first-child{text-align:left}.breach{color:#d62728;font-weight:bold}\
section{margin-top:28px;border-top:1px solid #ccc;padding-top:8px}.charts{display:flex;flex-wrap:wrap;gap:8px}\
.note{color:#777;font-size:13px}h1{font-size:22px}h2{font-size:18px}";

pub(super) fn time(ms: i64) -> String {
    time_as(ms, "%Y-%m-%d %H:%M:%S UTC")
}

pub(super) fn time_as(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format(format).to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The features in the table: the profile's order first, then any the
/// profile does not know (a replaced profile).
fn features<'a>(input: &'a ReportInput<'_>) -> Vec<&'a str> {
    let present: BTreeSet<&str> = input.rows.iter().map(|r| r.feature.as_str()).collect();
    let mut out: Vec<&str> = input
        .profile
        .columns
        .keys()
        .map(String::as_str)
        .filter(|c| present.contains(c))
        .collect();
    out.extend(
        present
            .iter()
            .copied()
            .filter(|c| !input.profile.columns.contains_key(*c)),
    );
    out
}

/// The whole page. Every value from the data (names, labels, sources) is
/// spliced into a `maud` template, which escapes it; the one unescaped
/// piece is the constant stylesheet.
pub fn render(input: &ReportInput<'_>) -> String {
    let job = input.rows.first().map(|r| r.job.as_str()).unwrap_or("");
    let per_feature: Vec<(&str, Vec<&WindowRow>)> = features(input)
        .into_iter()
        .map(|f| (f, input.rows.iter().filter(|r| r.feature == f).collect()))
        .collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Drift report: " (job) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Drift report: " (job) }
                (overview(input, &per_feature))
                @if input.older > 0 {
                    p class="note" {
                        "The newest windows only: " (input.older) " older window(s) are in the \
                         drift table (`scorestream query` reads them all)."
                    }
                }
                @if per_feature.is_empty() {
                    p class="note" { "The drift table has no windows yet." }
                } @else {
                    (summary(&per_feature))
                    @for (feature, rows) in &per_feature {
                        (section(input, feature, rows))
                    }
                }
            }
        }
    };
    let mut page = page.into_string();
    page.push('\n');
    page
}

/// The paragraph under the title: model versions, windows, reference and
/// thresholds.
fn overview(input: &ReportInput<'_>, per_feature: &[(&str, Vec<&WindowRow>)]) -> Markup {
    let versions: BTreeSet<String> = input
        .rows
        .iter()
        .map(|r| format!("{} {}", r.model_name, r.model_version))
        .collect();
    let versions = versions.into_iter().collect::<Vec<_>>().join(", ");
    let windows = per_feature.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let span = match (
        input.rows.iter().map(|r| r.start_ms).min(),
        input.rows.iter().map(|r| r.end_ms).max(),
    ) {
        (Some(a), Some(b)) => format!(", {} to {}", time(a), time(b)),
        _ => String::new(),
    };
    html! {
        p {
            "Model " (versions) ". " (windows) " window(s)" (span) ". Reference: "
            (input.profile.source) " (" (input.profile.rows) " rows). Thresholds: "
            @match input.config {
                Some(c) => { (listed(c.thresholds.iter())) }
                None => "not known (report made without the job file; breaches as recorded)",
            }
            "."
        }
        @if let Some(c) = input.config.filter(|c| !c.column_thresholds.is_empty()) {
            p { "Per-column overrides (these replace the thresholds above for that column):" }
            ul class="overrides" {
                @for (column, thresholds) in &c.column_thresholds {
                    li { b { (column) } ": " (listed(thresholds.iter())) }
                }
            }
        }
    }
}

/// `psi 0.2, ks 0.15`.
fn listed<'a>(thresholds: impl Iterator<Item = (&'a Statistic, &'a f64)>) -> String {
    thresholds
        .map(|(s, v)| format!("{} {}", s.name(), num(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statistics the summary table shows for each feature's latest window.
const SUMMARY: [Statistic; 5] = [
    Statistic::Psi,
    Statistic::JsDistance,
    Statistic::Ks,
    Statistic::ChiSquareP,
    Statistic::MissingRateChange,
];

fn summary(per_feature: &[(&str, Vec<&WindowRow>)]) -> Markup {
    html! {
        table class="summary" {
            tr {
                th { "feature" } th { "windows" } th { "windows breached" }
                @for s in SUMMARY { th { (s.name()) } }
                th { "latest breaches" }
            }
            @for (feature, rows) in per_feature {
                (summary_row(feature, rows))
            }
        }
    }
}

/// A feature's windows, breaches, and its latest window's statistics.
fn summary_row(feature: &str, rows: &[&WindowRow]) -> Markup {
    let breached = rows.iter().filter(|r| !r.breached.is_empty()).count();
    let latest = rows.last();
    let cell = |s: Statistic| {
        let hit = latest.is_some_and(|r| r.breached.iter().any(|b| b == s.name()));
        let value = latest.and_then(|r| r.stats.get(s)).map(num);
        (hit.then_some("breach"), value.unwrap_or_else(|| "–".into()))
    };
    let latest_breaches = latest.map(|r| r.breached.join(", ")).unwrap_or_default();
    html! {
        tr {
            td { a href={ "#f-" (feature) } { (feature) } }
            td { (rows.len()) }
            td class=[(breached > 0).then_some("breach")] { (breached) }
            @for (class, value) in SUMMARY.map(cell) {
                td class=[class] { (value) }
            }
            td class="breach" { (latest_breaches) }
        }
    }
}

fn section(input: &ReportInput<'_>, feature: &str, rows: &[&WindowRow]) -> Markup {
    html! {
        section id={ "f-" (feature) } {
            h2 { (feature) }
            @if let Some(c) = input.config {
                @let own = c.column_thresholds.get(feature);
                p class="note thresholds" {
                    "Thresholds: "
                    (Statistic::ALL
                        .iter()
                        .filter_map(|s| c.threshold(feature, *s).map(|t| {
                            let mark = if own.is_some_and(|o| o.contains_key(s)) {
                                " (this column's)"
                            } else {
                                ""
                            };
                            format!("{} {}{mark}", s.name(), num(t))
                        }))
                        .collect::<Vec<_>>()
                        .join(", "))
                    "."
                }
            }
            @if let Some(latest) = rows.last() {
                (reference(input, feature, rows, latest))
                (charts(input, feature, rows))
            }
        }
    }
}

/// The reference against the newest windows, or why it is not drawn.
fn reference(
    input: &ReportInput<'_>,
    feature: &str,
    rows: &[&WindowRow],
    latest: &WindowRow,
) -> Markup {
    let Some(p) = input.profile.columns.get(feature) else {
        return html! {
            p class="note" {
                (feature) " is not in this reference profile, so there is no reference histogram."
            }
        };
    };
    let (reference, ref_missing, ref_total) = reference_counts(p);
    if reference.len() != latest.counts.len() {
        return html! {
            p class="note" {
                "The latest window has " (latest.counts.len()) " bins and the profile "
                (reference.len()) ": the windows were compared with another profile, so no \
                 histogram is drawn."
            }
        };
    }
    // The window's counts may be of a sample; its missing rate is the
    // reference's plus the recorded change.
    let ref_rate = ref_missing as f64 / ref_total.max(1) as f64;
    let window_rate = latest
        .stats
        .missing_rate_change
        .map(|c| format!("{:.2}%", 100.0 * (ref_rate + c)))
        .unwrap_or_else(|| "–".into());
    let x = match p {
        ColumnProfile::Numeric(_) => format!("{feature}: the reference's bins, in its units"),
        ColumnProfile::Categorical(_) => {
            format!("{feature}: the reference's top categories, then other")
        }
    };
    let axes = Axes {
        x: &x,
        y: "share of non-null rows",
    };
    html! {
        p class="note" {
            "Missing: reference " (format_args!("{:.2}%", 100.0 * ref_rate)) ", latest window "
            (window_rate) " (" (latest.rows) " rows, " (time(latest.start_ms)) " to "
            (time(latest.end_ms)) ")."
        }
        (histogram(feature, &labels(p), &histogram_series(p, &reference, rows), &axes))
    }
}

/// Each statistic over the last `input.last` windows.
fn charts(input: &ReportInput<'_>, feature: &str, rows: &[&WindowRow]) -> Markup {
    let from = rows.len().saturating_sub(input.last.max(1));
    let shown = &rows[from..];
    html! {
        @if from > 0 {
            p class="note" { "The last " (shown.len()) " of " (rows.len()) " windows." }
        }
        div class="charts" {
            @for s in Statistic::ALL {
                @if shown.iter().any(|r| r.stats.get(s).is_some()) {
                    (chart(input, feature, shown, s))
                }
            }
        }
    }
}

/// One statistic over `shown`, with the job's threshold for it.
fn chart(input: &ReportInput<'_>, feature: &str, shown: &[&WindowRow], s: Statistic) -> Markup {
    let points: Vec<Point> = shown
        .iter()
        .map(|r| Point {
            value: r.stats.get(s),
            breached: r.breached.iter().any(|b| b == s.name()),
        })
        .collect();
    let thresholds: Vec<f64> = match input.config.and_then(|c| c.threshold(feature, s)) {
        Some(t) if s == Statistic::MissingRateChange => vec![t, -t],
        Some(t) => vec![t],
        None => Vec::new(),
    };
    let when = |r: Option<&&WindowRow>| {
        r.map(|r| time_as(r.start_ms, "%m-%d %H:%M"))
            .unwrap_or_default()
    };
    let axes = SeriesAxes {
        unit: unit(s, feature),
        first: when(shown.first()),
        last: when(shown.last()),
    };
    series(feature, s.name(), &points, &thresholds, &axes)
}
