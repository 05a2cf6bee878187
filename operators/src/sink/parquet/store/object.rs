//! An S3 (or S3-compatible) prefix through the `object_store` crate.
//!
//! Commit entries are created with a conditional put (`If-None-Match: *`),
//! which S3 has honoured since 2024 and S3-compatible stores (MinIO, R2,
//! Ceph, moto) honour too: the loser of a race gets `AlreadyExists`, as a
//! hard link does locally. Data files are encoded into a local spool file
//! (memory stays bounded by row groups, not file sizes), uploaded under
//! their hidden temporary key before the commit point, then published by a
//! server-side copy and a delete. A crash between the entry and the copy is
//! rolled forward by the next recovery, exactly as a local rename is.
//!
//! The sink is synchronous (it runs under `block_in_place`), so requests are
//! driven to completion on the runtime the store was opened in.

use std::future::Future;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::runtime::{Handle, RuntimeFlavor};

mod upload;

use super::spool::clear_stale_spool;
use super::uploads::{Upload, Uploads};
use super::{ObjectUrl, S3Options, join};
use crate::{OperatorError, Result};

#[derive(Clone)]
pub(super) struct ObjectOutput {
    store: Arc<dyn ObjectStore>,
    url: ObjectUrl,
    handle: Handle,
    spool: PathBuf,
    /// S3's listing of uploads in progress; `None` for other stores.
    uploads: Option<Arc<Uploads>>,
}

impl std::fmt::Debug for ObjectOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The store's Debug would print its configuration, credentials included.
        f.debug_struct("ObjectOutput")
            .field("url", &self.url.to_string())
            .field("spool", &self.spool)
            .finish()
    }
}

fn err(context: String) -> impl FnOnce(object_store::Error) -> OperatorError {
    move |source| OperatorError::ObjectStore { context, source }
}

impl ObjectOutput {
    pub(super) fn open(url: &ObjectUrl, s3: &S3Options, spool: &FsPath) -> Result<Self> {
        let mut b = AmazonS3Builder::from_env().with_url(url.bucket_url());
        if let Some(e) = &s3.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &s3.region {
            b = b.with_region(r);
        }
        if let Some(h) = s3.allow_http {
            b = b.with_allow_http(h);
        }
        if let Some(v) = s3.virtual_hosted_style {
            b = b.with_virtual_hosted_style_request(v);
        }
        Self::from_builder(b, url, spool)
    }

    /// An S3 output configured by the caller (tests pass credentials this way).
    pub(super) fn from_builder(
        b: AmazonS3Builder,
        url: &ObjectUrl,
        spool: &FsPath,
    ) -> Result<Self> {
        let b = b.with_url(url.bucket_url());
        let s3 = Arc::new(b.clone().build().map_err(|e| {
            OperatorError::OutputConfig(format!("cannot reach {url} (sink.path, [sink.s3]): {e}"))
        })?);
        let uploads = Uploads::new(&b, s3.clone())?;
        let mut out = Self::new(s3, url.clone(), spool)?;
        out.uploads = Some(Arc::new(uploads));
        Ok(out)
    }

    pub(super) fn new(store: Arc<dyn ObjectStore>, url: ObjectUrl, spool: &FsPath) -> Result<Self> {
        let handle = Handle::try_current().map_err(|_| {
            OperatorError::Internal("object store outputs are opened inside a tokio runtime".into())
        })?;
        clear_stale_spool(spool);
        Ok(Self {
            store,
            url,
            handle,
            spool: spool.to_owned(),
            uploads: None,
        })
    }

    pub(super) fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub(super) fn url(&self) -> &ObjectUrl {
        &self.url
    }

    pub(super) fn describe(&self, rel: &str) -> String {
        format!("{}", self.url.child(rel))
    }

    fn key(&self, rel: &str) -> Result<Path> {
        let full = join(self.url.prefix(), rel.trim_matches('/'));
        Path::parse(&full).map_err(|e| {
            OperatorError::Internal(format!("`{full}` is not a valid object key: {e}"))
        })
    }

    /// `key` relative to the output root.
    fn rel_of<'a>(&self, key: &'a Path) -> &'a str {
        let k = key.as_ref();
        match self.url.prefix() {
            "" => k,
            p => k
                .strip_prefix(p)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(k),
        }
    }

    /// Drives a request to completion from synchronous code.
    fn block_on<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        match Handle::try_current() {
            Err(_) => self.handle.block_on(f),
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                Err(OperatorError::Internal(
                    "object store outputs need tokio's multi-threaded runtime".into(),
                ))
            }
            Ok(_) => tokio::task::block_in_place(|| self.handle.block_on(f)),
        }
    }

    pub(super) fn put_if_absent(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let key = self.key(rel)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.block_on(async {
            match self
                .store
                .put_opts(&key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Ok(false),
                Err(e) => Err(err(format!("creating {}", self.describe(rel)))(e)),
            }
        })
    }

    pub(super) fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(rel)?;
        self.block_on(async {
            self.store
                .put(&key, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(err(format!("writing {}", self.describe(rel))))
        })
    }

    pub(super) fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(rel)?;
        self.block_on(async {
            let got = match self.store.get(&key).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(err(format!("reading {}", self.describe(rel)))(e)),
            };
            let bytes = got
                .bytes()
                .await
                .map_err(err(format!("reading {}", self.describe(rel))))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    pub(super) fn exists(&self, rel: &str) -> Result<bool> {
        let key = self.key(rel)?;
        self.block_on(async {
            match self.store.head(&key).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(err(format!("looking up {}", self.describe(rel)))(e)),
            }
        })
    }

    fn delimited(&self, rel: &str) -> Result<object_store::ListResult> {
        let key = self.key(rel)?;
        self.block_on(async {
            self.store
                .list_with_delimiter(Some(&key))
                .await
                .map_err(err(format!("listing {}", self.describe(rel))))
        })
    }

    pub(super) fn list_files(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .delimited(rel)?
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_owned))
            .collect())
    }

    pub(super) fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self
            .delimited(rel)?
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    pub(super) fn list_tree(&self, rel: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .list_meta(rel)?
            .into_iter()
            .map(|m| (m.dir, m.name))
            .collect())
    }

    /// [`ObjectOutput::list_tree`] with each object's size and last
    /// modification (ms since the epoch).
    pub(super) fn list_meta(&self, rel: &str) -> Result<Vec<super::ObjectMeta>> {
        let key = self.key(rel)?;
        let metas: Vec<_> = self.block_on(async {
            self.store
                .list(Some(&key))
                .try_collect()
                .await
                .map_err(err(format!("listing {}", self.describe(rel))))
        })?;
        Ok(metas
            .iter()
            .map(|m| {
                let (dir, name) = super::split(self.rel_of(&m.location));
                super::ObjectMeta {
                    dir: dir.to_owned(),
                    name: name.to_owned(),
                    size: m.size,
                    modified_ms: m.last_modified.timestamp_millis(),
                }
            })
            .collect())
    }

    /// Server-side copy to the final key, then the temporary is deleted.
    /// The copy overwrites: a final key only ever receives the bytes its
    /// commit entry names, so a repeated copy (recovery racing the writer)
    /// writes the same object again.
    pub(super) fn publish(&self, tmp_rel: &str, rel: &str) -> Result<()> {
        let (from, to) = (self.key(tmp_rel)?, self.key(rel)?);
        self.block_on(async {
            match self.store.copy(&from, &to).await {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    // Published by someone else already, or truly lost.
                    return match self.store.head(&to).await {
                        Ok(_) => Ok(()),
                        Err(e) => Err(err(format!("committing {}", self.describe(rel)))(e)),
                    };
                }
                Err(e) => return Err(err(format!("committing {}", self.describe(rel)))(e)),
            }
            match self.store.delete(&from).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(err(format!("removing {}", self.describe(tmp_rel)))(e)),
            }
        })
    }

    pub(super) fn remove(&self, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        self.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(err(format!("removing {}", self.describe(rel)))(e)),
            }
        })
    }

    /// Multipart uploads in progress under the output, keys relative to
    /// it; `None` when the store cannot list them.
    pub(super) fn uploads(&self) -> Result<Option<Vec<Upload>>> {
        let Some(u) = &self.uploads else {
            return Ok(None);
        };
        let prefix = match self.url.prefix() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let mut all = self.block_on(u.list(&prefix))?;
        for up in &mut all {
            up.key = up.key[prefix.len()..].to_owned();
        }
        Ok(Some(all))
    }

    pub(super) fn abort_upload(&self, up: &Upload) -> Result<()> {
        let Some(u) = &self.uploads else {
            return Ok(());
        };
        let key = self.key(&up.key)?;
        self.block_on(u.abort(key.as_ref(), &up.id))
    }

    /// A local file to encode `dir/tmp_name` into before its upload.
    pub(super) fn spool_file(&self, dir: &str, tmp_name: &str) -> Result<PathBuf> {
        let d = self.spool.join(dir.replace('/', "+"));
        std::fs::create_dir_all(&d).map_err(|e| {
            OperatorError::io(format!("creating spool directory {}", d.display()), e)
        })?;
        Ok(d.join(tmp_name))
    }
}
