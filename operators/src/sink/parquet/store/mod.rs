//! Where a job's output lives: a local directory or a prefix in an S3
//! bucket (or any S3-compatible store).
//!
//! The commit protocol ([`super::commit_log`]) is written once against the
//! few steps below; each backend supplies them with its own atomic
//! primitives. A local directory creates commit entries with a hard link and
//! publishes files with `rename`, syncing directories; an object store
//! creates entries with a conditional put (`If-None-Match: *`) and publishes
//! by server-side copy then delete. In both, a data file waits under a
//! hidden temporary name (`.<name>.<writer>.tmp`, which no reader globs) in
//! its partition directory until its entry is created.

mod local;
mod object;
mod path;
mod spool;
mod uploads;

use std::path::{Path, PathBuf};

pub(crate) use local::sync_path;
pub use path::{ObjectUrl, OutputPath, S3Options};
pub(crate) use uploads::Upload;

use crate::Result;
use local::LocalStore;
use object::ObjectOutput;

/// A handle on the output root; cheap to clone. Every `rel` below is a
/// `/`-separated path relative to the root.
#[derive(Debug, Clone)]
pub struct Store(Backend);

#[derive(Debug, Clone)]
enum Backend {
    Local(LocalStore),
    Object(ObjectOutput),
}

impl Store {
    /// Opens the output at `path`. An object store output is reached with
    /// the standard `AWS_*` environment variables (credentials, region,
    /// endpoint) overridden by `s3`; it must be opened inside a tokio
    /// runtime, whose I/O driver its requests use. `spool` is where files
    /// are written before their upload.
    pub fn open(path: &OutputPath, s3: &S3Options, spool: &Path) -> Result<Self> {
        Ok(Self(match path {
            OutputPath::Local(p) => Backend::Local(LocalStore::new(p)),
            OutputPath::Object(url) => Backend::Object(ObjectOutput::open(url, s3, spool)?),
        }))
    }

    /// A local directory.
    pub fn local(root: &Path) -> Self {
        Self(Backend::Local(LocalStore::new(root)))
    }

    /// Any object store (tests use `object_store::memory::InMemory`).
    pub fn object(
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        url: ObjectUrl,
        spool: &Path,
    ) -> Result<Self> {
        Ok(Self(Backend::Object(ObjectOutput::new(store, url, spool)?)))
    }

    /// An S3 output reached with a builder the caller configured, rather
    /// than the `AWS_*` environment.
    pub fn s3(
        builder: object_store::aws::AmazonS3Builder,
        url: &ObjectUrl,
        spool: &Path,
    ) -> Result<Self> {
        Ok(Self(Backend::Object(ObjectOutput::from_builder(
            builder, url, spool,
        )?)))
    }

    /// Multipart uploads in progress under the output (keys relative to
    /// it); `None` for stores that have none or cannot list them.
    pub(crate) fn uploads(&self) -> Result<Option<Vec<Upload>>> {
        match &self.0 {
            Backend::Local(_) => Ok(None),
            Backend::Object(o) => o.uploads(),
        }
    }

    pub(crate) fn abort_upload(&self, up: &Upload) -> Result<()> {
        match &self.0 {
            Backend::Local(_) => Ok(()),
            Backend::Object(o) => o.abort_upload(up),
        }
    }

    /// The local root directory, if the output is local.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.0 {
            Backend::Local(l) => Some(l.root()),
            Backend::Object(_) => None,
        }
    }

    /// The object store and the URL of its root, if the output is remote:
    /// for readers (DataFusion) that register the store themselves.
    pub fn object_store(
        &self,
    ) -> Option<(std::sync::Arc<dyn object_store::ObjectStore>, &ObjectUrl)> {
        match &self.0 {
            Backend::Local(_) => None,
            Backend::Object(o) => Some((o.store(), o.url())),
        }
    }

    /// Where `rel` is, for messages: a path or an `s3://` URL.
    pub fn describe(&self, rel: &str) -> String {
        match &self.0 {
            Backend::Local(l) => l.abs(rel).display().to_string(),
            Backend::Object(o) => o.describe(rel),
        }
    }

    /// Makes sure directory `rel` exists (durably); object stores have no
    /// directories.
    pub(crate) fn create_dir(&self, rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.create_dir(rel),
            Backend::Object(_) => Ok(()),
        }
    }

    /// Creates `rel` holding `bytes` unless it exists; `false` when it does.
    /// Local outputs write `tmp_rel` first and link it into place. Durable
    /// once [`Store::sync_dir`] returns for its directory.
    pub(crate) fn put_if_absent(&self, rel: &str, tmp_rel: &str, bytes: Vec<u8>) -> Result<bool> {
        match &self.0 {
            Backend::Local(l) => l.put_if_absent(rel, tmp_rel, &bytes),
            Backend::Object(o) => o.put_if_absent(rel, bytes),
        }
    }

    /// Replaces `rel` with `bytes` in one step: readers see the old object
    /// or the new one, never part of it.
    pub fn put(&self, rel: &str, tmp_rel: &str, bytes: Vec<u8>) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.put(rel, tmp_rel, &bytes),
            Backend::Object(o) => o.put(rel, bytes),
        }
    }

    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match &self.0 {
            Backend::Local(l) => l.read(rel),
            Backend::Object(o) => o.read(rel),
        }
    }

    pub fn exists(&self, rel: &str) -> Result<bool> {
        match &self.0 {
            Backend::Local(l) => Ok(l.abs(rel).exists()),
            Backend::Object(o) => o.exists(rel),
        }
    }

    /// Names of the files directly in directory `rel` (none if it is absent).
    pub fn list_files(&self, rel: &str) -> Result<Vec<String>> {
        match &self.0 {
            Backend::Local(l) => l.list_files(rel),
            Backend::Object(o) => o.list_files(rel),
        }
    }

    /// Every file under directory `rel`, as (directory, name), both relative
    /// to the root.
    pub fn list_tree(&self, rel: &str) -> Result<Vec<(String, String)>> {
        match &self.0 {
            Backend::Local(l) => l.list_tree(rel),
            Backend::Object(o) => o.list_tree(rel),
        }
    }

    /// Every object under `rel` with its size and age; `None` for local
    /// outputs, which `scorestream compact` reads through the filesystem.
    pub(crate) fn list_meta(&self, rel: &str) -> Result<Option<Vec<ObjectMeta>>> {
        match &self.0 {
            Backend::Local(_) => Ok(None),
            Backend::Object(o) => o.list_meta(rel).map(Some),
        }
    }

    /// Names of the directories directly in `rel`.
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        match &self.0 {
            Backend::Local(l) => l.list_dirs(rel),
            Backend::Object(o) => o.list_dirs(rel),
        }
    }

    /// Moves a committed file from its temporary name to its final one. A
    /// concurrent recovery may have done it already, which is not an error.
    pub fn publish(&self, tmp_rel: &str, rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.publish(tmp_rel, rel),
            Backend::Object(o) => o.publish(tmp_rel, rel),
        }
    }

    /// Removes `rel`; absent is fine.
    pub fn remove(&self, rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.remove(rel),
            Backend::Object(o) => o.remove(rel),
        }
    }

    /// Makes renames and creations in directory `rel` durable (local only:
    /// an object store's writes are durable when acknowledged).
    pub(crate) fn sync_dir(&self, rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.sync_dir(rel),
            Backend::Object(_) => Ok(()),
        }
    }

    /// Where a data file is written before it is staged as `dir/tmp_name`:
    /// the temporary file itself for local outputs, a spool file for object
    /// stores (uploaded by [`Store::stage`]).
    pub fn writable(&self, dir: &str, tmp_name: &str) -> Result<PathBuf> {
        match &self.0 {
            Backend::Local(l) => {
                l.create_dir(dir)?;
                Ok(l.abs(&join(dir, tmp_name)))
            }
            Backend::Object(o) => o.spool_file(dir, tmp_name),
        }
    }

    /// Makes a finished file from [`Store::writable`] the staged temporary
    /// `tmp_rel`, durably: synced in place locally, uploaded (its spool
    /// copy needs no sync) to an object store.
    pub fn stage(&self, file: std::fs::File, local: &Path, tmp_rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(_) => file
                .sync_all()
                .map_err(|e| crate::OperatorError::io(format!("syncing {}", local.display()), e)),
            Backend::Object(o) => {
                drop(file);
                o.upload(local, tmp_rel)
            }
        }
    }

    /// Drops a data file whose commit did not happen: its local file and,
    /// once staged, its temporary object.
    pub(crate) fn discard(&self, local: &Path, tmp_rel: &str) -> Result<()> {
        match &self.0 {
            Backend::Local(l) => l.remove_path(local),
            Backend::Object(o) => {
                local::remove_path(local)?;
                o.remove(tmp_rel)
            }
        }
    }
}

/// An object, as listed: where, how large, when last written.
#[derive(Debug, Clone)]
pub(crate) struct ObjectMeta {
    pub dir: String,
    pub name: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// `dir/name`, or `name` at the root.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// (directory, name) of a relative path.
pub(super) fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}
