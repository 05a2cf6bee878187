//! A local directory: files synced before they are named, directories
//! synced after entries appear in them, so a commit survives a power cut.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{join, split};
use crate::{OperatorError, Result};

#[derive(Debug, Clone)]
pub(super) struct LocalStore {
    root: PathBuf,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> OperatorError {
    OperatorError::io(format!("{what} {}", p.display()), e)
}

impl LocalStore {
    pub(super) fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Creates `rel` and syncs every parent it created, up to the root.
    pub(super) fn create_dir(&self, rel: &str) -> Result<()> {
        let abs = self.abs(rel);
        if abs.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&abs).map_err(|e| io("creating", &abs, e))?;
        let mut d = abs.as_path();
        while let Some(parent) = d.parent() {
            sync_path(parent)?;
            if parent == self.root || !parent.starts_with(&self.root) {
                break;
            }
            d = parent;
        }
        Ok(())
    }

    fn write_synced(&self, tmp_rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let tmp = self.abs(tmp_rel);
        let mut f = File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        Ok(tmp)
    }

    /// A hard link fails if the name exists: put-if-absent on POSIX.
    pub(super) fn put_if_absent(&self, rel: &str, tmp_rel: &str, bytes: &[u8]) -> Result<bool> {
        let tmp = self.write_synced(tmp_rel, bytes)?;
        let fin = self.abs(rel);
        let linked = fs::hard_link(&tmp, &fin);
        fs::remove_file(&tmp).map_err(|e| io("removing", &tmp, e))?;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io("committing", &fin, e)),
        }
    }

    pub(super) fn put(&self, rel: &str, tmp_rel: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.write_synced(tmp_rel, bytes)?;
        let fin = self.abs(rel);
        fs::rename(&tmp, &fin).map_err(|e| io("renaming into", &fin, e))?;
        self.sync_dir(split(rel).0)
    }

    pub(super) fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let p = self.abs(rel);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &p, e)),
        }
    }

    fn listing(&self, rel: &str, dirs: bool) -> Result<Vec<String>> {
        let p = self.abs(rel);
        let entries = match fs::read_dir(&p) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("listing", &p, e)),
        };
        Ok(entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() == dirs))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }

    pub(super) fn list_files(&self, rel: &str) -> Result<Vec<String>> {
        self.listing(rel, false)
    }

    pub(super) fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        self.listing(rel, true)
    }

    pub(super) fn list_tree(&self, rel: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut todo = vec![rel.to_owned()];
        while let Some(dir) = todo.pop() {
            out.extend(self.list_files(&dir)?.into_iter().map(|n| (dir.clone(), n)));
            todo.extend(self.list_dirs(&dir)?.iter().map(|d| join(&dir, d)));
        }
        Ok(out)
    }

    pub(super) fn publish(&self, tmp_rel: &str, rel: &str) -> Result<()> {
        let (tmp, fin) = (self.abs(tmp_rel), self.abs(rel));
        match fs::rename(&tmp, &fin) {
            Err(e) if e.kind() == ErrorKind::NotFound && fin.exists() => Ok(()),
            r => r.map_err(|e| io("committing", &fin, e)),
        }
    }

    pub(super) fn remove(&self, rel: &str) -> Result<()> {
        self.remove_path(&self.abs(rel))
    }

    pub(super) fn remove_path(&self, p: &Path) -> Result<()> {
        remove_path(p)
    }

    pub(super) fn sync_dir(&self, rel: &str) -> Result<()> {
        sync_path(&self.abs(rel))
    }
}

pub(super) fn remove_path(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io("removing", p, e)),
        _ => Ok(()),
    }
}

pub(crate) fn sync_path(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OperatorError::io(format!("syncing directory {}", dir.display()), e))
}
