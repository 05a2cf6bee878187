//! Reads the drift table back: one [`WindowRow`] per window and column,
//! from every committed Parquet file under `<sink.path>/drift/`.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampMillisecondType, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use scorestream_operators::drift::{DriftStats, Statistic};

use crate::ToolError;

/// One row of the drift table.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub job: String,
    pub model_name: String,
    pub model_version: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub rows: u64,
    pub skipped: u64,
    pub feature: String,
    pub stats: DriftStats,
    /// The window's counts per reference bin or category slot.
    pub counts: Vec<u64>,
    pub breached: Vec<String>,
}

fn bad(dir: &Path, reason: impl Into<String>) -> ToolError {
    ToolError::DriftTable {
        dir: dir.display().to_string(),
        reason: reason.into(),
    }
}

/// Every row of the drift table in `dir`, ordered by window, then feature.
/// Files being written (hidden `.tmp` names) are not read.
pub fn read_drift_table(dir: &Path) -> Result<Vec<WindowRow>, ToolError> {
    read_newest(dir, usize::MAX).map(|(rows, _)| rows)
}

/// The rows of the newest `files` window files (one file per window,
/// named by its end time, so a name sort is a time sort), and how many
/// older files were left unread: the report's memory stays bounded however
/// long the job has run.
pub fn read_newest(dir: &Path, files: usize) -> Result<(Vec<WindowRow>, usize), ToolError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        bad(
            dir,
            format!("{e} (has the job run with [drift] and written a window?)"),
        )
    })?;
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|e| bad(dir, e.to_string()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".parquet") {
            names.push(name);
        }
    }
    names.sort_unstable();
    let older = names.len().saturating_sub(files);
    let mut rows = Vec::new();
    for name in &names[older..] {
        let in_file = |reason: String| bad(dir, format!("{name}: {reason}"));
        let file = std::fs::File::open(dir.join(name)).map_err(|e| in_file(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| in_file(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| in_file(e.to_string()))?;
            append_rows(&batch, &mut rows).map_err(in_file)?;
        }
    }
    rows.sort_by(|a, b| {
        (a.start_ms, a.end_ms, &a.feature).cmp(&(b.start_ms, b.end_ms, &b.feature))
    });
    Ok((rows, older))
}

fn append_rows(b: &RecordBatch, out: &mut Vec<WindowRow>) -> Result<(), String> {
    let col = |n: &str| {
        b.column_by_name(n)
            .ok_or_else(|| format!("no column `{n}`: not a scorestream drift table"))
    };
    let wrong = |n: &str| format!("column `{n}` has an unexpected type");
    let strings =
        |n: &str| col(n).and_then(|c| c.as_string_opt::<i32>().cloned().ok_or_else(|| wrong(n)));
    let times = |n: &str| {
        col(n).and_then(|c| {
            c.as_primitive_opt::<TimestampMillisecondType>()
                .cloned()
                .ok_or_else(|| wrong(n))
        })
    };
    let counts_of = |n: &str| {
        col(n).and_then(|c| {
            c.as_primitive_opt::<UInt64Type>()
                .cloned()
                .ok_or_else(|| wrong(n))
        })
    };
    let lists =
        |n: &str| col(n).and_then(|c| c.as_list_opt::<i32>().cloned().ok_or_else(|| wrong(n)));
    use scorestream_schemas::drift_columns as dc;
    let (job, model_name, model_version, feature) = (
        strings(dc::JOB)?,
        strings(dc::MODEL_NAME)?,
        strings(dc::MODEL_VERSION)?,
        strings(dc::FEATURE)?,
    );
    let (start, end) = (times(dc::WINDOW_START)?, times(dc::WINDOW_END)?);
    let (rows, skipped) = (counts_of(dc::WINDOW_ROWS)?, counts_of(dc::SKIPPED_ROWS)?);
    let (counts, breached) = (lists(dc::COUNTS)?, lists(dc::BREACHED)?);
    let stats: Vec<(Statistic, arrow::array::Float64Array)> = Statistic::ALL
        .iter()
        .map(|s| {
            col(s.name()).and_then(|c| {
                c.as_primitive_opt::<Float64Type>()
                    .cloned()
                    .map(|a| (*s, a))
                    .ok_or_else(|| wrong(s.name()))
            })
        })
        .collect::<Result<_, _>>()?;
    for i in 0..b.num_rows() {
        let mut ds = DriftStats::default();
        for (s, a) in &stats {
            *ds.get_mut(*s) = a.is_valid(i).then(|| a.value(i));
        }
        let c = counts.value(i);
        let c = c
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| wrong(dc::COUNTS))?;
        let br = breached.value(i);
        let br = br
            .as_string_opt::<i32>()
            .ok_or_else(|| wrong(dc::BREACHED))?;
        out.push(WindowRow {
            job: job.value(i).to_owned(),
            model_name: model_name.value(i).to_owned(),
            model_version: model_version.value(i).to_owned(),
            start_ms: start.value(i),
            end_ms: end.value(i),
            rows: rows.value(i),
            skipped: skipped.value(i),
            feature: feature.value(i).to_owned(),
            stats: ds,
            counts: c.values().to_vec(),
            breached: br.iter().flatten().map(str::to_owned).collect(),
        });
    }
    Ok(())
}
