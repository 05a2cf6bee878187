//! `scorestream compact` on an object store output (S3 and compatibles).
//!
//! An object store cannot swap a partition's listing in one step as a
//! local `renameat2` does: no request renames, replaces or deletes several
//! objects atomically. So a partition is compacted the way the sink
//! commits, in phases that a crash at any point leaves finishable:
//!
//! 1. the small files are downloaded into a local scratch directory,
//!    merged (rows counted in and out), and the merged files uploaded under
//!    hidden temporary keys that no reader globs;
//! 2. the compaction record `_scorestream/compactions/<partition>.json`,
//!    naming the files replaced and written, is created put-if-absent: the
//!    commit point, and the partition's lock (a second compaction of the
//!    same partition loses the put and deletes its uploads);
//! 3. the merged files are published (server-side copy, then the
//!    temporary deleted), the replaced files deleted, the record deleted.
//!
//! A later run rolls any record it finds forward through step 3. Between
//! the first copy and the last delete of step 3 (a few requests), a reader
//! that lists the partition sees both the merged file and some replaced
//! ones, and counts their rows twice; the record exists for exactly that
//! window, so a reader can check for `_scorestream/compactions/` and retry.
//! Readers that need every listing to be exact should not compact while
//! they read, or keep files large with `sink.roll` instead (see
//! docs/operations.md#compaction).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::checkpoint::crash_point;
use super::commit_log::{parse_tmp, tmp_name};
use super::compact::{CompactOptions, CompactReport, Merged, RECORDS_DIR, io};
use super::merge::{MERGED_PREFIX, merge};
use super::store::{ObjectMeta, Store, join};
use super::{SCORES_DIR, TMP_SUFFIX};
use crate::{OperatorError, Result};

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    dir: String,
    /// Writes the merged files' temporaries carry.
    id: String,
    replaced: Vec<String>,
    written: Vec<String>,
}

fn record_rel(dir: &str) -> String {
    join(RECORDS_DIR, &format!("{}.json", dir.replace('/', "+")))
}

/// Compacts every closed partition of `<output>/scores` on an object
/// store, using `scratch` (removed after) for the files being merged.
pub fn compact_store(
    store: &Store,
    opts: &CompactOptions,
    scratch: &Path,
) -> Result<CompactReport> {
    let mut report = CompactReport {
        recovered: recover(store)?,
        ..Default::default()
    };
    let Some(objects) = store.list_meta(SCORES_DIR)? else {
        return Err(OperatorError::Internal(
            "compact_store is for object store outputs".into(),
        ));
    };
    let mut dirs: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for o in objects {
        dirs.entry(o.dir.clone()).or_default().push(o);
    }
    let now = crate::now_ms();
    for (n, (dir, mut files)) in dirs.into_iter().enumerate() {
        remove_abandoned_merges(store, &dir, &mut files, now)?;
        if files.iter().any(|f| f.name.ends_with(TMP_SUFFIX)) {
            report.busy.push(dir);
            continue;
        }
        let newest = files.iter().map(|f| f.modified_ms).max().unwrap_or(0);
        if Duration::from_millis(now.saturating_sub(newest).max(0) as u64) < opts.older_than {
            report.recent.push(dir);
            continue;
        }
        let mut parquet: Vec<&ObjectMeta> = files
            .iter()
            .filter(|f| f.name.ends_with(".parquet") && !f.name.starts_with('.'))
            .collect();
        parquet.sort_by(|a, b| a.name.cmp(&b.name));
        let small: Vec<&ObjectMeta> = parquet
            .iter()
            .copied()
            .filter(|f| f.size < opts.target_bytes)
            .collect();
        if small.len() < 2 {
            continue;
        }
        let bytes_before: u64 = parquet.iter().map(|f| f.size).sum();
        let merged = if opts.dry_run {
            let small_bytes: u64 = small.iter().map(|f| f.size).sum();
            Merged {
                dir: dir.clone(),
                files_before: parquet.len(),
                files_after: parquet.len() - small.len()
                    + small_bytes.div_ceil(opts.target_bytes).max(1) as usize,
                rows: 0,
                bytes_before,
                bytes_after: 0,
            }
        } else {
            let id = format!("c{}-{}-{n}", crate::now_ms(), std::process::id());
            let work = scratch.join(&id);
            let done = merge_partition(store, &dir, &small, &id, &work, opts);
            let _ = std::fs::remove_dir_all(&work);
            let Some((rows, written_bytes, written)) = done? else {
                report.busy.push(dir);
                continue;
            };
            let replaced: u64 = small.iter().map(|f| f.size).sum();
            Merged {
                dir: dir.clone(),
                files_before: parquet.len(),
                files_after: parquet.len() - small.len() + written,
                rows,
                bytes_before,
                bytes_after: bytes_before - replaced + written_bytes,
            }
        };
        report.merged.push(merged);
    }
    Ok(report)
}

/// Merged files a compaction uploaded but never committed (it crashed
/// before its record) are deleted once older than any compaction runs.
fn remove_abandoned_merges(
    store: &Store,
    dir: &str,
    files: &mut Vec<ObjectMeta>,
    now: i64,
) -> Result<()> {
    const AGE_MS: i64 = 6 * 3600 * 1000;
    let mut kept = Vec::with_capacity(files.len());
    for f in files.drain(..) {
        let merged_tmp = parse_tmp(&f.name).is_some_and(|(fin, _)| fin.starts_with(MERGED_PREFIX));
        if merged_tmp && now.saturating_sub(f.modified_ms) > AGE_MS {
            store.remove(&join(dir, &f.name))?;
        } else {
            kept.push(f);
        }
    }
    *files = kept;
    Ok(())
}

/// Phases 1 to 3 for one partition. `None` when another compaction holds
/// its record. Returns the rows merged, the bytes and number of files
/// written.
fn merge_partition(
    store: &Store,
    dir: &str,
    small: &[&ObjectMeta],
    id: &str,
    work: &Path,
    opts: &CompactOptions,
) -> Result<Option<(u64, u64, usize)>> {
    let (input, output) = (work.join("in"), work.join("out"));
    for d in [&input, &output] {
        std::fs::create_dir_all(d).map_err(io("creating", d))?;
    }
    let mut replaced = Vec::new();
    for f in small {
        let rel = join(dir, &f.name);
        let bytes = store.read(&rel)?.ok_or_else(|| OperatorError::CommitLog {
            location: store.describe(&rel),
            reason: "a file being compacted disappeared; is another compaction running?".into(),
        })?;
        let local = input.join(&f.name);
        std::fs::write(&local, bytes).map_err(io("writing", &local))?;
        replaced.push(f.name.clone());
    }
    let (rows_in, written) = merge(&input, &replaced, &output, id, opts)?;
    let rows_out: u64 = written.iter().map(|w| w.1).sum();
    if rows_out != rows_in {
        return Err(OperatorError::Internal(format!(
            "compacting {}: read {rows_in} rows but wrote {rows_out}; nothing changed",
            store.describe(dir)
        )));
    }
    let mut written_bytes = 0;
    for (name, _) in &written {
        let local = output.join(name);
        let file = std::fs::File::open(&local).map_err(io("opening", &local))?;
        written_bytes += file.metadata().map_err(io("reading", &local))?.len();
        store.stage(file, &local, &join(dir, &tmp_name(name, id)))?;
    }
    let record = Record {
        dir: dir.to_owned(),
        id: id.to_owned(),
        replaced,
        written: written.iter().map(|w| w.0.clone()).collect(),
    };
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| OperatorError::Internal(format!("encoding compaction record: {e}")))?;
    let rel = record_rel(dir);
    if !store.put_if_absent(&rel, &join(RECORDS_DIR, &tmp_name("r.json", id)), json)? {
        for name in &record.written {
            store.remove(&join(dir, &tmp_name(name, id)))?;
        }
        return Ok(None);
    }
    crash_point("compaction-recorded")?;
    finish(store, &record)?;
    info!(
        partition = dir,
        files_replaced = record.replaced.len(),
        files_written = record.written.len(),
        rows = rows_in,
        "compacted"
    );
    Ok(Some((rows_in, written_bytes, record.written.len())))
}

/// Phase 3: idempotent, so a crashed run's record is finished by the next.
fn finish(store: &Store, r: &Record) -> Result<()> {
    for name in &r.written {
        store.publish(&join(&r.dir, &tmp_name(name, &r.id)), &join(&r.dir, name))?;
    }
    crash_point("compaction-published")?;
    for name in &r.replaced {
        store.remove(&join(&r.dir, name))?;
    }
    store.remove(&record_rel(&r.dir))
}

/// Finishes the compactions a crash interrupted after their commit point.
/// Uploads of ones interrupted before it are temporaries no record names;
/// they are deleted with the partition's other leftovers by the sink's
/// recovery or age out (see [`super::commit_log`]).
fn recover(store: &Store) -> Result<usize> {
    let mut n = 0;
    for name in store.list_files(RECORDS_DIR)? {
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let rel = join(RECORDS_DIR, &name);
        let Some(bytes) = store.read(&rel)? else {
            continue;
        };
        let r: Record = serde_json::from_slice(&bytes).map_err(|e| OperatorError::CommitLog {
            location: store.describe(&rel),
            reason: format!("not a valid compaction record: {e}"),
        })?;
        finish(store, &r)?;
        n += 1;
    }
    Ok(n)
}
