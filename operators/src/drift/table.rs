//! The drift table: one row per window and watched column, in Parquet
//! files under `<sink.path>/drift/`, queryable as `drift` with
//! `scorestream query` (or any Parquet reader).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt64Array, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use parquet::arrow::ArrowWriter;

use super::report::WindowReport;
use super::stats::Statistic;
use crate::sink::parquet::Store;
use crate::{OperatorError, Result};

/// The drift table's directory under a job's output.
pub const DRIFT_DIR: &str = "drift";

/// The drift table's schema (see [`scorestream_schemas::drift_schema`]),
/// with one column per [`Statistic`].
pub(super) fn drift_schema() -> SchemaRef {
    scorestream_schemas::drift_schema(Statistic::ALL.iter().map(|s| s.name()))
}

/// Writes each window as one Parquet file, appearing whole (renamed into
/// place locally, one put on object stores), so readers never see a
/// partial window.
#[derive(Debug)]
pub struct DriftTable {
    store: Store,
    /// Distinguishes this process's files from another writer's.
    writer: String,
    seq: u64,
}

impl DriftTable {
    /// The drift table of a local output directory.
    pub fn open(output: &Path) -> Result<Self> {
        Self::open_in(Store::local(output))
    }

    /// The drift table of the output at `store`.
    pub fn open_in(store: Store) -> Result<Self> {
        store.create_dir(DRIFT_DIR)?;
        Ok(Self {
            store,
            writer: format!("{:x}-{}", crate::now_ms(), std::process::id()),
            seq: 0,
        })
    }

    pub fn write(&mut self, job: &str, r: &WindowReport) -> Result<()> {
        let n = r.columns.len();
        if n == 0 {
            return Ok(());
        }
        let repeat = |s: &str| {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(s, n))) as ArrayRef
        };
        let ts = |v: i64| {
            Arc::new(
                TimestampMillisecondArray::from_iter_values(std::iter::repeat_n(v, n))
                    .with_timezone(scorestream_schemas::UTC),
            ) as ArrayRef
        };
        let mut cols: Vec<ArrayRef> = vec![
            repeat(job),
            repeat(&r.model_name),
            repeat(&r.model_version),
            ts(r.start_ms),
            ts(r.end_ms),
            Arc::new(UInt64Array::from_iter_values(std::iter::repeat_n(
                r.rows, n,
            ))),
            Arc::new(UInt64Array::from_iter_values(std::iter::repeat_n(
                r.skipped, n,
            ))),
            Arc::new(StringArray::from_iter_values(
                r.columns.iter().map(|c| c.column.as_str()),
            )),
        ];
        for s in Statistic::ALL {
            let mut b = Float64Builder::with_capacity(n);
            for c in &r.columns {
                b.append_option(c.stats.get(s));
            }
            cols.push(Arc::new(b.finish()));
        }
        let mut counts = ListBuilder::new(UInt64Builder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::UInt64, false)));
        let mut breached = ListBuilder::new(StringBuilder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)));
        for c in &r.columns {
            counts.values().append_slice(&c.counts);
            counts.append(true);
            for (col, s, _, _) in &r.breaches {
                if *col == c.column {
                    breached.values().append_value(s.name());
                }
            }
            breached.append(true);
        }
        cols.push(Arc::new(counts.finish()));
        cols.push(Arc::new(breached.finish()));
        let batch = RecordBatch::try_new(drift_schema(), cols)?;

        // The number is taken only once the file is in place, so a retried
        // window replaces a file it may have half-committed.
        let name = format!(
            "{:020}-{}-{:06}.parquet",
            r.end_ms.max(0),
            self.writer,
            self.seq + 1
        );
        let rel = format!("{DRIFT_DIR}/{name}");
        let pq = |source| OperatorError::Parquet {
            path: self.store.describe(&rel).into(),
            source,
        };
        let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), None).map_err(pq)?;
        w.write(&batch).map_err(pq)?;
        let bytes = w.into_inner().map_err(pq)?;
        let tmp = format!("{DRIFT_DIR}/.{name}.tmp");
        // Again on every write: a directory removed under a running job is
        // made again rather than failing every window after.
        self.store.create_dir(DRIFT_DIR)?;
        self.store.put(&rel, &tmp, bytes)?;
        self.seq += 1;
        Ok(())
    }
}
