use std::fs::File;
use std::path::Path;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::{OperatorError, Result};

/// Suffix of files not yet committed. Readers skip them: they do not end in
/// `.parquet`, and their names start with a dot.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Writes `batch` to `path` as one Parquet file and syncs it to disk, so that
/// a commit that names it never names a torn file. Returns its size.
pub fn write_synced(path: &Path, batch: &RecordBatch, props: &WriterProperties) -> Result<u64> {
    let io = |what: &str, e| OperatorError::io(format!("{what} {}", path.display()), e);
    let file = File::create(path).map_err(|e| io("creating", e))?;
    let pq = |source| OperatorError::Parquet {
        path: path.to_owned(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).map_err(pq)?;
    writer.write(batch).map_err(pq)?;
    let file = writer.into_inner().map_err(pq)?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    Ok(file.metadata().map_err(|e| io("reading size of", e))?.len())
}
