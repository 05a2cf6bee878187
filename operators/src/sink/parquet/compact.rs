//! `scorestream compact`: merges the small committed files of closed
//! partitions into larger ones.
//!
//! Readers list a partition directory to learn its files, so the directory
//! listing is the manifest they read, and it changes in one step: the new
//! contents (merged files, plus hard links to the files kept as they are) are
//! built in a staging directory under `_scorestream/compact/`, then swapped
//! with the partition directory by one `renameat2(RENAME_EXCHANGE)`. A reader
//! that lists the partition sees either every old file or the new ones,
//! never both and never neither. (A query that listed the directory just
//! before the swap and opens a replaced file afterwards gets "file not
//! found" and can simply be retried; it never reads a row twice.)
//!
//! A partition is closed when no writer holds it (see [`super::lock`]), it
//! has no temporary file, and its newest file is older than `older_than`.
//! A compaction record (`_scorestream/compactions/<id>.json`) written before
//! the swap lets a later run finish or undo one a crash interrupted.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use tracing::info;

use super::commit_log::sync_dir;
use super::merge::merge;
use super::{SCORES_DIR, TMP_SUFFIX};
use crate::{OperatorError, Result};

pub const COMPACT_DIR: &str = "_scorestream/compact";
pub const RECORDS_DIR: &str = "_scorestream/compactions";

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Files smaller than this are merged, into files of about this size.
    pub target_bytes: u64,
    /// A partition whose newest file is younger than this is still being
    /// written to and is left alone.
    pub older_than: Duration,
    /// Report what would be merged without changing anything.
    pub dry_run: bool,
    pub props: WriterProperties,
}

/// One partition merged (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The partition directory, relative to the output root.
    pub dir: String,
    pub files_before: usize,
    pub files_after: usize,
    pub rows: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

#[derive(Debug, Default, Clone)]
pub struct CompactReport {
    pub merged: Vec<Merged>,
    /// Partitions with a writer's file open (or uncommitted files).
    pub busy: Vec<String>,
    /// Partitions written to within `older_than`.
    pub recent: Vec<String>,
    /// Interrupted compactions finished or undone first.
    pub recovered: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    dir: String,
    staging: String,
    replaced: Vec<String>,
    written: Vec<String>,
}

pub(super) fn io(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> OperatorError {
    let context = format!("{what} {}", p.display());
    move |e| OperatorError::io(context, e)
}

/// Compacts every closed partition of `<root>/scores`.
pub fn compact(root: &Path, opts: &CompactOptions) -> Result<CompactReport> {
    let Some(_one_at_a_time) = super::lock::try_exclusive(root, "compact")? else {
        return Err(OperatorError::Internal(format!(
            "another scorestream compact is running on {}",
            root.display()
        )));
    };
    let mut report = CompactReport {
        recovered: recover(root)?,
        ..Default::default()
    };
    let mut dirs = Vec::new();
    leaf_dirs(&root.join(SCORES_DIR), &mut dirs);
    let now = SystemTime::now();
    for (n, dir) in dirs.into_iter().enumerate() {
        let rel = dir
            .strip_prefix(root)
            .map_err(|_| {
                OperatorError::Internal(format!("{} is outside the output", dir.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let listing = Listing::read(&dir)?;
        if listing.temporary {
            report.busy.push(rel);
            continue;
        }
        if listing
            .newest
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() < opts.older_than)
        {
            report.recent.push(rel);
            continue;
        }
        if listing.small(opts.target_bytes).count() < 2 {
            continue;
        }
        let Some(_lock) = super::lock::try_exclusive(root, &rel)? else {
            report.busy.push(rel);
            continue;
        };
        // A writer may have committed a file between the first look and the lock.
        let listing = Listing::read(&dir)?;
        if listing.temporary || listing.small(opts.target_bytes).count() < 2 {
            continue;
        }
        let merged = if opts.dry_run {
            listing.plan(&rel, opts.target_bytes)
        } else {
            swap_in_merged(root, &rel, &listing, opts, n)?
        };
        report.merged.push(merged);
    }
    Ok(report)
}

/// Directories under `dir` (itself included) that hold Parquet files.
fn leaf_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(it) = fs::read_dir(dir) else { return };
    let mut has_files = false;
    for e in it.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !name.starts_with(['.', '_']) {
                leaf_dirs(&e.path(), out);
            }
        } else if name.ends_with(".parquet") {
            has_files = true;
        }
    }
    if has_files {
        out.push(dir.to_owned());
    }
}

struct Listing {
    /// Committed files (name, size), by name.
    files: Vec<(String, u64)>,
    temporary: bool,
    newest: Option<SystemTime>,
}

impl Listing {
    fn read(dir: &Path) -> Result<Self> {
        let mut l = Listing {
            files: Vec::new(),
            temporary: false,
            newest: None,
        };
        for e in fs::read_dir(dir).map_err(io("listing", dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_SUFFIX) {
                l.temporary = true;
            }
            if name.starts_with('.') || !name.ends_with(".parquet") {
                continue;
            }
            let meta = e.metadata().map_err(io("reading", &e.path()))?;
            l.newest = l.newest.max(meta.modified().ok());
            l.files.push((name, meta.len()));
        }
        l.files.sort();
        Ok(l)
    }

    fn small(&self, target: u64) -> impl Iterator<Item = &(String, u64)> {
        self.files.iter().filter(move |f| f.1 < target)
    }

    fn plan(&self, rel: &str, target: u64) -> Merged {
        let small: Vec<_> = self.small(target).collect();
        let bytes: u64 = small.iter().map(|f| f.1).sum();
        let kept = self.files.len() - small.len();
        Merged {
            dir: rel.to_owned(),
            files_before: self.files.len(),
            files_after: kept + bytes.div_ceil(target).max(1) as usize,
            rows: 0,
            bytes_before: self.files.iter().map(|f| f.1).sum(),
            bytes_after: 0,
        }
    }
}

/// Replaces the partition's small files by merged ones, in the order that
/// keeps a crash at any point recoverable (see [`recover`]): new contents
/// staged and synced, the record written and synced, the directories
/// swapped, and only then the replaced files and the record removed.
fn swap_in_merged(
    root: &Path,
    rel: &str,
    listing: &Listing,
    opts: &CompactOptions,
    n: usize,
) -> Result<Merged> {
    let dir = root.join(rel);
    let id = format!("c{}-{}-{n}", crate::now_ms(), std::process::id());
    let staging = root.join(COMPACT_DIR).join(&id);
    let (replaced, written, rows) = stage(&dir, &staging, rel, listing, &id, opts)?;

    let record = Record {
        dir: rel.to_owned(),
        staging: staging
            .strip_prefix(root)
            .unwrap_or(&staging)
            .to_string_lossy()
            .into_owned(),
        replaced,
        written,
    };
    let records = root.join(RECORDS_DIR);
    let record_path = write_record(&records, &id, &record)?;

    exchange(&dir, &staging)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    if let Some(parent) = staging.parent() {
        sync_dir(parent)?;
    }
    // `staging` now holds the replaced files.
    fs::remove_dir_all(&staging).map_err(io("removing", &staging))?;
    fs::remove_file(&record_path).map_err(io("removing", &record_path))?;
    sync_dir(&records)?;

    let after = Listing::read(&dir)?;
    let merged = Merged {
        dir: rel.to_owned(),
        files_before: listing.files.len(),
        files_after: after.files.len(),
        rows,
        bytes_before: listing.files.iter().map(|f| f.1).sum(),
        bytes_after: after.files.iter().map(|f| f.1).sum(),
    };
    info!(
        partition = rel,
        files_before = merged.files_before,
        files_after = merged.files_after,
        rows = merged.rows,
        "compacted"
    );
    Ok(merged)
}

/// Builds the partition's new contents in `staging`: hard links to the
/// files kept as they are, merged files for the small ones. Returns the
/// names replaced, the names written and the rows merged. A merge that
/// lost or gained rows is removed before anything else changes.
fn stage(
    dir: &Path,
    staging: &Path,
    rel: &str,
    listing: &Listing,
    id: &str,
    opts: &CompactOptions,
) -> Result<(Vec<String>, Vec<String>, u64)> {
    fs::create_dir_all(staging).map_err(io("creating", staging))?;
    let mut replaced = Vec::new();
    for (name, size) in &listing.files {
        if *size >= opts.target_bytes {
            fs::hard_link(dir.join(name), staging.join(name)).map_err(io("linking", staging))?;
        } else {
            replaced.push(name.clone());
        }
    }
    let (rows_in, written) = merge(dir, &replaced, staging, id, opts)?;
    let rows_out: u64 = written.iter().map(|w| w.1).sum();
    if rows_out != rows_in {
        fs::remove_dir_all(staging).map_err(io("removing", staging))?;
        return Err(OperatorError::Internal(format!(
            "compacting {rel}: read {rows_in} rows but wrote {rows_out}; nothing changed"
        )));
    }
    sync_dir(staging)?;
    let written = written.into_iter().map(|w| w.0).collect();
    Ok((replaced, written, rows_in))
}

/// Makes the record durable before the swap, so a crash after it leaves a
/// later run what it needs to finish.
fn write_record(records: &Path, id: &str, record: &Record) -> Result<PathBuf> {
    fs::create_dir_all(records).map_err(io("creating", records))?;
    let record_path = records.join(format!("{id}.json"));
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| OperatorError::Internal(format!("encoding compaction record: {e}")))?;
    fs::write(&record_path, json).map_err(io("writing", &record_path))?;
    File::open(&record_path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", &record_path))?;
    sync_dir(records)?;
    Ok(record_path)
}

/// Swaps two directories in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        OperatorError::io(
            format!("swapping {} with its compacted contents", a.display()),
            e.into(),
        )
    })
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, _b: &Path) -> Result<()> {
    Err(OperatorError::Internal(format!(
        "compacting {} needs Linux (renameat2 with RENAME_EXCHANGE)",
        a.display()
    )))
}

/// Finishes or undoes compactions a crash interrupted: if the partition
/// already holds the merged files the swap happened and the staging
/// directory holds the replaced ones; otherwise the staging directory holds
/// an unfinished merge. Either way it goes.
pub fn recover(root: &Path) -> Result<usize> {
    let records = root.join(RECORDS_DIR);
    let mut n = 0;
    if let Ok(it) = fs::read_dir(&records) {
        for e in it.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io("reading", &path))?;
            let r: Record =
                serde_json::from_slice(&bytes).map_err(|e| OperatorError::CommitLog {
                    location: path.display().to_string(),
                    reason: format!("not a valid compaction record: {e}"),
                })?;
            let staging = root.join(&r.staging);
            if staging.exists() {
                fs::remove_dir_all(&staging).map_err(io("removing", &staging))?;
            }
            fs::remove_file(&path).map_err(io("removing", &path))?;
            n += 1;
        }
    }
    // Staging directories without a record never got as far as the swap.
    if let Ok(it) = fs::read_dir(root.join(COMPACT_DIR)) {
        for e in it.flatten() {
            let p = e.path();
            fs::remove_dir_all(&p).map_err(io("removing", &p))?;
            n += 1;
        }
    }
    Ok(n)
}
