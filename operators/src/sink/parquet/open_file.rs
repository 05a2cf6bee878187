use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::commit_log::tmp_name;
use super::store::{Store, join};
use crate::{OperatorError, Result};

/// One Parquet file being written across batches under its hidden temporary
/// name. Row groups go to disk as they fill; the footer is written and the
/// file synced (and, for object stores, uploaded under its temporary key)
/// by [`OpenFile::finish`], before its commit names it.
pub(super) struct OpenFile {
    /// Final path relative to the output root, as the commit log records it.
    pub rel: String,
    /// Temporary path relative to the output root.
    pub tmp_rel: String,
    /// The local file being written: the temporary file itself, or a spool
    /// file for object stores.
    local: PathBuf,
    store: Store,
    writer: Option<ArrowWriter<File>>,
    pub rows: u64,
    /// Final size once finished.
    pub bytes: u64,
    pub last_write: Instant,
    row_group_bytes: usize,
    /// Keeps compaction out of the directory until this file is committed
    /// (local outputs: object stores are not compacted in place).
    _lock: Option<File>,
}

impl OpenFile {
    /// Creates `<dir>/<name>` under its temporary name, creating (and
    /// making durable) the partition directory the first time.
    pub(super) fn create(
        store: &Store,
        dir: &str,
        name: &str,
        writer_id: &str,
        schema: &SchemaRef,
        props: &WriterProperties,
        row_group_bytes: usize,
    ) -> Result<Self> {
        let lock = match store.local_root() {
            Some(root) => Some(super::lock::shared(root, dir)?),
            None => None,
        };
        let tmp = tmp_name(name, writer_id);
        let local = store.writable(dir, &tmp)?;
        let file = File::create(&local)
            .map_err(|e| OperatorError::io(format!("creating {}", local.display()), e))?;
        let writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props.clone())).map_err(|source| {
                OperatorError::Parquet {
                    path: local.clone(),
                    source,
                }
            })?;
        Ok(Self {
            rel: join(dir, name),
            tmp_rel: join(dir, &tmp),
            local,
            store: store.clone(),
            writer: Some(writer),
            rows: 0,
            bytes: 0,
            last_write: Instant::now(),
            row_group_bytes,
            _lock: lock,
        })
    }

    fn pq(&self, source: parquet::errors::ParquetError) -> OperatorError {
        OperatorError::Parquet {
            path: self.local.clone(),
            source,
        }
    }

    fn open_writer(&mut self) -> Result<&mut ArrowWriter<File>> {
        let tmp = &self.tmp_rel;
        self.writer
            .as_mut()
            .ok_or_else(|| OperatorError::Internal(format!("{tmp} is already finished")))
    }

    pub(super) fn write(&mut self, batch: &RecordBatch, now: Instant) -> Result<()> {
        let limit = self.row_group_bytes;
        let w = self.open_writer()?;
        let mut res = w.write(batch);
        if res.is_ok() && w.in_progress_size() >= limit {
            res = w.flush();
        }
        res.map_err(|e| self.pq(e))?;
        self.rows += batch.num_rows() as u64;
        self.last_write = now;
        Ok(())
    }

    /// Bytes on disk plus the estimated size of the buffered row group.
    pub(super) fn size(&self) -> u64 {
        self.writer.as_ref().map_or(self.bytes, |w| {
            (w.bytes_written() + w.in_progress_size()) as u64
        })
    }

    /// Encoded rows held in memory.
    pub(super) fn buffered(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.in_progress_size())
    }

    /// Writes the buffered rows out as a row group, freeing their memory.
    pub(super) fn flush_row_group(&mut self) -> Result<()> {
        let res = self.open_writer()?.flush();
        res.map_err(|e| self.pq(e))
    }

    /// Writes the footer and syncs the file, so a commit never names a torn
    /// one; an object store's copy is uploaded under its temporary key.
    pub(super) fn finish(&mut self) -> Result<()> {
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        let file = w.into_inner().map_err(|e| self.pq(e))?;
        self.bytes = file
            .metadata()
            .map_err(|e| OperatorError::io(format!("reading size of {}", self.local.display()), e))?
            .len();
        self.store.stage(file, &self.local, &self.tmp_rel)
    }

    /// Removes the temporary file of a commit that did not happen.
    pub(super) fn discard(mut self) -> Result<()> {
        drop(self.writer.take());
        self.store.discard(&self.local, &self.tmp_rel)
    }
}
