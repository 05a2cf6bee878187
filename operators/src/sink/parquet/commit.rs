use std::fs::{self, File};
use std::path::Path;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::{OperatorError, Result};

/// Suffix of files being written. Readers skip them: they do not end in
/// `.parquet`, and their names start with a dot.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `batch` to `dir/name` so that the file either does not exist or is
/// complete: written under a hidden temporary name, synced, renamed, and the
/// directory synced so the rename survives a power cut.
pub fn write_atomically(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    props: &WriterProperties,
) -> Result<u64> {
    let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
    let fin = dir.join(name);
    let io = |what: &str, p: &Path, e| OperatorError::io(format!("{what} {}", p.display()), e);
    let file = File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    let pq = |source| OperatorError::Parquet {
        path: tmp.clone(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props.clone())).map_err(pq)?;
    writer.write(batch).map_err(pq)?;
    let file = writer.into_inner().map_err(pq)?;
    file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| io("reading size of", &tmp, e))?
        .len();
    drop(file);
    fs::rename(&tmp, &fin).map_err(|e| io("committing", &fin, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))?;
    Ok(bytes)
}

/// Removes temporary files a crashed run left behind; they hold no committed
/// data (their offsets were never acknowledged, so the rows will be re-read).
pub(super) fn remove_leftovers(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let entries = fs::read_dir(dir)
        .map_err(|e| OperatorError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(|e| {
                OperatorError::io(format!("removing {}", entry.path().display()), e)
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}
