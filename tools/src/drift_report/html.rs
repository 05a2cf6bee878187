//! The drift report page: a summary table, then per watched column the
//! reference against the latest window's histogram and each statistic over
//! the windows.

use std::collections::BTreeSet;
use std::fmt::Write;

use scorestream_operators::drift::{ColumnProfile, DriftConfig, ReferenceProfile, Statistic};

use super::read::WindowRow;
use super::svg::{Point, esc, histogram, num, series};

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

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Bin labels of a profiled column, as the histogram's x axis.
fn labels(p: &ColumnProfile) -> Vec<String> {
    match p {
        ColumnProfile::Numeric(n) => {
            let e = &n.edges;
            if e.is_empty() {
                return vec!["all".into()];
            }
            let mut l = vec![format!("≤ {}", num(e[0]))];
            l.extend(
                e.windows(2)
                    .map(|w| format!("({}, {}]", num(w[0]), num(w[1]))),
            );
            l.push(format!("> {}", num(e[e.len() - 1])));
            l
        }
        ColumnProfile::Categorical(c) => {
            let mut l = c.categories.clone();
            l.push("other".into());
            l
        }
    }
}

fn reference_counts(p: &ColumnProfile) -> (Vec<u64>, u64, u64) {
    match p {
        ColumnProfile::Numeric(n) => (n.counts.clone(), n.missing, n.total),
        ColumnProfile::Categorical(c) => {
            let mut v = c.counts.clone();
            v.push(c.other);
            (v, c.missing, c.total)
        }
    }
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|&c| c as f64 / total).collect()
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

/// The whole page.
pub fn render(input: &ReportInput<'_>) -> String {
    let mut h = String::new();
    let job = input.rows.first().map(|r| r.job.as_str()).unwrap_or("");
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drift report: {j}</title><style>{STYLE}</style></head><body><h1>Drift report: {j}</h1>",
        j = esc(job)
    );
    let versions: BTreeSet<String> = input
        .rows
        .iter()
        .map(|r| format!("{} {}", r.model_name, r.model_version))
        .collect();
    let per_feature: Vec<(&str, Vec<&WindowRow>)> = features(input)
        .into_iter()
        .map(|f| (f, input.rows.iter().filter(|r| r.feature == f).collect()))
        .collect();
    let windows = per_feature.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let (first, last) = (
        input.rows.iter().map(|r| r.start_ms).min(),
        input.rows.iter().map(|r| r.end_ms).max(),
    );
    let _ = write!(
        h,
        "<p>Model {m}. {windows} window(s){span}. Reference: {src} ({rows} rows). Thresholds: {th}.</p>",
        m = esc(&versions.into_iter().collect::<Vec<_>>().join(", ")),
        span = match (first, last) {
            (Some(a), Some(b)) => format!(", {} to {}", time(a), time(b)),
            _ => String::new(),
        },
        src = esc(&input.profile.source),
        rows = input.profile.rows,
        th = match input.config {
            Some(c) => esc(&c
                .thresholds
                .iter()
                .map(|(s, v)| format!("{} {}", s.name(), num(*v)))
                .collect::<Vec<_>>()
                .join(", ")),
            None => "not known (report made without the job file; breaches as recorded)".into(),
        },
    );
    if input.older > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">The newest windows only: {} older window(s) are in the drift table (`scorestream query` reads them all).</p>",
            input.older
        );
    }
    if per_feature.is_empty() {
        h.push_str("<p class=\"note\">The drift table has no windows yet.</p></body></html>");
        return h;
    }
    summary(&mut h, &per_feature);
    for (feature, rows) in &per_feature {
        section(&mut h, input, feature, rows);
    }
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, per_feature: &[(&str, Vec<&WindowRow>)]) {
    h.push_str(
        "<table class=\"summary\"><tr><th>feature</th><th>windows</th><th>windows breached</th>",
    );
    let shown = [
        Statistic::Psi,
        Statistic::JsDistance,
        Statistic::Ks,
        Statistic::ChiSquareP,
        Statistic::MissingRateChange,
    ];
    for s in shown {
        let _ = write!(h, "<th>{}</th>", s.name());
    }
    h.push_str("<th>latest breaches</th></tr>");
    for (feature, rows) in per_feature {
        let breached = rows.iter().filter(|r| !r.breached.is_empty()).count();
        let latest = rows.last();
        let _ = write!(
            h,
            "<tr><td><a href=\"#f-{id}\">{f}</a></td><td>{}</td><td{cls}>{breached}</td>",
            rows.len(),
            id = esc(feature),
            f = esc(feature),
            cls = if breached > 0 {
                " class=\"breach\""
            } else {
                ""
            },
        );
        for s in shown {
            let v = latest.and_then(|r| r.stats.get(s));
            let hit = latest.is_some_and(|r| r.breached.iter().any(|b| b == s.name()));
            let _ = write!(
                h,
                "<td{}>{}</td>",
                if hit { " class=\"breach\"" } else { "" },
                v.map(num).unwrap_or_else(|| "–".into())
            );
        }
        let _ = write!(
            h,
            "<td class=\"breach\">{}</td></tr>",
            esc(&latest.map(|r| r.breached.join(", ")).unwrap_or_default())
        );
    }
    h.push_str("</table>");
}

fn section(h: &mut String, input: &ReportInput<'_>, feature: &str, rows: &[&WindowRow]) {
    let _ = write!(h, "<section id=\"f-{f}\"><h2>{f}</h2>", f = esc(feature));
    let Some(latest) = rows.last() else {
        return;
    };
    match input.profile.columns.get(feature) {
        None => {
            let _ = write!(
                h,
                "<p class=\"note\">{} is not in this reference profile, so there is no reference histogram.</p>",
                esc(feature)
            );
        }
        Some(p) => {
            let (reference, ref_missing, ref_total) = reference_counts(p);
            if reference.len() == latest.counts.len() {
                // The window's counts may be of a sample; its missing rate is
                // the reference's plus the recorded change.
                let ref_rate = ref_missing as f64 / ref_total.max(1) as f64;
                let window_rate = latest
                    .stats
                    .missing_rate_change
                    .map(|c| format!("{:.2}%", 100.0 * (ref_rate + c)))
                    .unwrap_or_else(|| "–".into());
                let _ = write!(
                    h,
                    "<p class=\"note\">Missing: reference {:.2}%, latest window {window_rate} ({} rows, {} to {}).</p>",
                    100.0 * ref_rate,
                    latest.rows,
                    time(latest.start_ms),
                    time(latest.end_ms),
                );
                h.push_str(&histogram(
                    feature,
                    &labels(p),
                    &shares(&reference),
                    &shares(&latest.counts),
                ));
            } else {
                let _ = write!(
                    h,
                    "<p class=\"note\">The latest window has {} bins and the profile {}: the windows were compared with another profile, so no histogram is drawn.</p>",
                    latest.counts.len(),
                    reference.len()
                );
            }
        }
    }
    let from = rows.len().saturating_sub(input.last.max(1));
    let shown = &rows[from..];
    if from > 0 {
        let _ = write!(
            h,
            "<p class=\"note\">The last {} of {} windows.</p>",
            shown.len(),
            rows.len()
        );
    }
    h.push_str("<div class=\"charts\">");
    for s in Statistic::ALL {
        if shown.iter().all(|r| r.stats.get(s).is_none()) {
            continue;
        }
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
        h.push_str(&series(feature, s.name(), &points, &thresholds));
    }
    h.push_str("</div></section>");
}
