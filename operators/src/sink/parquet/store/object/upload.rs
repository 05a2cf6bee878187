//! Uploads of finished spool files: one request when small, in parts
//! otherwise, with bounded memory.

use std::path::Path as FsPath;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::{ObjectOutput, err};
use crate::{OperatorError, Result};

/// Multipart part size: S3 wants at least 5 MiB for every part but the
/// last. Two parts in flight bound an upload's memory to about 16 MiB.
const PART: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;

impl ObjectOutput {
    /// Uploads a finished spool file to `tmp_rel` (in parts when large) and
    /// removes it. The object appears whole or not at all.
    pub(in super::super) fn upload(&self, local: &FsPath, tmp_rel: &str) -> Result<()> {
        let key = self.key(tmp_rel)?;
        let what = || {
            format!(
                "uploading {} to {}",
                local.display(),
                self.describe(tmp_rel)
            )
        };
        self.block_on(async {
            let io = |e| OperatorError::io(what(), e);
            let mut file = tokio::fs::File::open(local).await.map_err(io)?;
            let len = file.metadata().await.map_err(io)?.len();
            if len <= PART as u64 {
                let mut buf = Vec::with_capacity(len as usize);
                file.read_to_end(&mut buf).await.map_err(io)?;
                self.store
                    .put(&key, PutPayload::from(buf))
                    .await
                    .map_err(err(what()))?;
                return Ok(());
            }
            let upload = self.store.put_multipart(&key).await.map_err(err(what()))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; PART];
            let sent: Result<()> = async {
                loop {
                    let n = read_full(&mut file, &mut buf).await.map_err(io)?;
                    if n == 0 {
                        return Ok(());
                    }
                    w.wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(err(what()))?;
                    w.write(&buf[..n]);
                }
            }
            .await;
            match sent {
                Ok(()) => w.finish().await.map(|_| ()).map_err(err(what())),
                Err(e) => {
                    // Best effort: an abandoned upload is invisible and a
                    // bucket lifecycle rule removes it anyway.
                    let _ = w.abort().await;
                    Err(e)
                }
            }
        })?;
        super::super::local::remove_path(local)
    }
}

/// Fills `buf` unless the file ends first; returns the bytes read.
async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
