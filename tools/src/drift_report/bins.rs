//! What a column's histogram shows: its bins' labels, and the shares per
//! bin of the reference and of the newest windows compared with it.

use scorestream_operators::drift::ColumnProfile;

use super::hist::{Series, WINDOWS};
use super::html::{time, time_as};
use super::read::WindowRow;
use super::svg::num;

/// Bin labels of a profiled column, as the histogram's x axis.
pub(super) fn labels(p: &ColumnProfile) -> Vec<String> {
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

pub(super) fn reference_counts(p: &ColumnProfile) -> (Vec<u64>, u64, u64) {
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

/// The reference, then the newest [`WINDOWS`] windows compared with this
/// profile (same bins), oldest first, each named by its number among the
/// feature's windows.
pub(super) fn histogram_series(
    p: &ColumnProfile,
    reference: &[u64],
    rows: &[&WindowRow],
) -> Vec<Series> {
    let mut out = vec![Series {
        name: "reference".into(),
        detail: match p {
            ColumnProfile::Numeric(n) => format!("reference profile, {} rows", n.total),
            ColumnProfile::Categorical(c) => format!("reference profile, {} rows", c.total),
        },
        shares: shares(reference),
    }];
    let same_bins: Vec<(usize, &&WindowRow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.counts.len() == reference.len())
        .collect();
    let from = same_bins.len().saturating_sub(WINDOWS);
    let newest = same_bins.len().saturating_sub(1);
    for (k, (i, r)) in same_bins[from..].iter().enumerate() {
        let latest = if from + k == newest { " (latest)" } else { "" };
        out.push(Series {
            name: format!(
                "window {} · {}{latest}",
                i + 1,
                time_as(r.start_ms, "%m-%d %H:%M:%S")
            ),
            detail: format!(
                "window {}: {} to {}, {} rows",
                i + 1,
                time(r.start_ms),
                time(r.end_ms),
                r.rows
            ),
            shares: shares(&r.counts),
        });
    }
    out
}
