//! Partition directory locks between writers and `scorestream compact`.
//!
//! A writer holds a shared lock on a partition directory from creating a file
//! in it until that file is committed or discarded; compaction takes the
//! exclusive lock without waiting and skips a partition it cannot get, so it
//! never swaps a directory out from under an open file. Locks are advisory
//! `flock`s on files under `_scorestream/locks/`, released when the process
//! dies, so a crash never leaves a partition locked.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::{OperatorError, Result};

pub(super) const LOCK_DIR: &str = "_scorestream/locks";

fn lock_path(root: &Path, dir: &str) -> PathBuf {
    let name: String = dir
        .chars()
        .map(|c| if c == '/' { '+' } else { c })
        .collect();
    root.join(LOCK_DIR).join(format!("{name}.lock"))
}

fn open(root: &Path, dir: &str) -> Result<File> {
    let path = lock_path(root, dir);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| OperatorError::io(format!("creating {}", parent.display()), e))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| OperatorError::io(format!("opening lock {}", path.display()), e))
}

/// Held by a writer while it has a file open in `dir` (relative to `root`);
/// waits while compaction holds the directory.
pub(super) fn shared(root: &Path, dir: &str) -> Result<File> {
    let f = open(root, dir)?;
    f.lock_shared()
        .map_err(|e| OperatorError::io(format!("locking partition {dir}"), e))?;
    Ok(f)
}

/// The exclusive lock, or `None` while a writer has a file open in `dir`.
pub(super) fn try_exclusive(root: &Path, dir: &str) -> Result<Option<File>> {
    let f = open(root, dir)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(OperatorError::io(format!("locking partition {dir}"), e))
        }
    }
}
