//! `scorestream drift report`: a self-contained HTML page (inline SVG, no
//! script, no external assets) comparing each watched column's reference
//! histogram with the newest windows', and each statistic over the windows.

mod bins;
mod hist;
mod html;
mod read;
mod svg;
#[cfg(test)]
mod tests;

use std::path::Path;

use scorestream_operators::drift::{DRIFT_DIR, DriftConfig, ReferenceProfile};

pub use html::{ReportInput, render};
pub use read::{WindowRow, read_drift_table, read_newest};

use crate::ToolError;

/// What the report summarises, in figures the command prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    /// Windows drawn (at most `last`).
    pub windows: usize,
    /// Older windows in the table, not drawn.
    pub older: usize,
    pub features: usize,
    /// Rows of the drift table with at least one breach.
    pub breaches: usize,
}

/// Reads the drift table under `output` (a job's `sink.path`) and writes
/// the report to `out`, atomically (a reader never sees half a page).
pub fn write_report(
    output: &Path,
    profile: &ReferenceProfile,
    config: Option<&DriftConfig>,
    last: usize,
    out: &Path,
) -> Result<ReportSummary, ToolError> {
    // One file per window (with every watched column): the newest `last`
    // files are all the charts draw.
    let (rows, older) = read_newest(&output.join(DRIFT_DIR), last)?;
    let page = render(&ReportInput {
        profile,
        rows: &rows,
        config,
        last,
        older,
    });
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, page)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| ToolError::io(format!("writing {}", out.display()), e))?;
    let features: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.feature.as_str()).collect();
    let windows: std::collections::BTreeSet<(i64, i64, u64)> = rows
        .iter()
        .map(|r| (r.start_ms, r.end_ms, r.rows))
        .collect();
    Ok(ReportSummary {
        windows: windows.len(),
        older,
        features: features.len(),
        breaches: rows.iter().filter(|r| !r.breached.is_empty()).count(),
    })
}
