//! Compaction's merged files: the rows of a partition's small files
//! rewritten, in name order, into files of about the target size in the
//! staging directory, each synced before the compaction record names it.

use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::compact::{CompactOptions, io};
use crate::{OperatorError, Result};

/// How merged files' names start.
pub(super) const MERGED_PREFIX: &str = "compacted+";

/// Copies the rows of `replaced` (files of `dir`) into merged files in
/// `staging`. Returns the rows read and the files written with their rows,
/// so the caller can check that none were lost before anything is swapped.
pub(super) fn merge(
    dir: &Path,
    replaced: &[String],
    staging: &Path,
    id: &str,
    opts: &CompactOptions,
) -> Result<(u64, Vec<(String, u64)>)> {
    let mut rows_in = 0u64;
    let mut out = MergeWriter::new(staging, id, opts);
    for name in replaced {
        let path = dir.join(name);
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            File::open(&path).map_err(io("opening", &path))?,
        )
        .map_err(|source| OperatorError::Parquet {
            path: path.clone(),
            source,
        })?
        .build()
        .map_err(|source| OperatorError::Parquet {
            path: path.clone(),
            source,
        })?;
        for batch in reader {
            let batch = batch?;
            rows_in += batch.num_rows() as u64;
            out.write(&batch)?;
        }
    }
    Ok((rows_in, out.finish()?))
}

/// Writes merged files of about `target_bytes`, each with one schema.
struct MergeWriter<'a> {
    dir: &'a Path,
    id: &'a str,
    opts: &'a CompactOptions,
    open: Option<(String, ArrowWriter<File>, SchemaRef, u64)>,
    done: Vec<(String, u64)>,
}

impl<'a> MergeWriter<'a> {
    fn new(dir: &'a Path, id: &'a str, opts: &'a CompactOptions) -> Self {
        Self {
            dir,
            id,
            opts,
            open: None,
            done: Vec::new(),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let rolls = self.open.as_ref().is_some_and(|(_, w, schema, _)| {
            schema != &batch.schema()
                || (w.bytes_written() + w.in_progress_size()) as u64 >= self.opts.target_bytes
        });
        if rolls {
            self.close()?;
        }
        if self.open.is_none() {
            let name = format!("{MERGED_PREFIX}{}+{:04}.parquet", self.id, self.done.len());
            let path = self.dir.join(&name);
            let f = File::create(&path).map_err(io("creating", &path))?;
            let w = ArrowWriter::try_new(f, batch.schema(), Some(self.opts.props.clone()))
                .map_err(|source| OperatorError::Parquet { path, source })?;
            self.open = Some((name, w, batch.schema(), 0));
        }
        if let Some((name, w, _, rows)) = self.open.as_mut() {
            w.write(batch).map_err(|source| OperatorError::Parquet {
                path: self.dir.join(&*name),
                source,
            })?;
            *rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if let Some((name, w, _, rows)) = self.open.take() {
            let path = self.dir.join(&name);
            let f = w.into_inner().map_err(|source| OperatorError::Parquet {
                path: path.clone(),
                source,
            })?;
            f.sync_all().map_err(io("syncing", &path))?;
            self.done.push((name, rows));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(String, u64)>> {
        self.close()?;
        Ok(self.done)
    }
}
