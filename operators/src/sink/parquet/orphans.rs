//! Multipart uploads abandoned by a crash: a writer killed while uploading
//! a file leaves the upload open, and S3 keeps its parts (billed, and
//! invisible to any listing of objects) until it is aborted.
//!
//! Only the sink's own uploads are touched: keys under the output's prefix
//! whose name is one of its temporary names (`.<file>.<writer>.tmp`). Of
//! those, an upload for offsets the commit log already holds can never be
//! committed (a writer's files start at or past its chain's end when it
//! opens them) and is aborted at once. One past the chain's end may belong
//! to a writer running now, here or in another process sharing the
//! partitions, so it is aborted only once older than
//! `sink.s3.abort_uploads_older_than`: a live writer uploads a file in
//! seconds to minutes, never a day.

use std::time::Duration;

use tracing::info;

use super::commit_log::{CommitLog, parse_base, parse_tmp};
use super::store::split;
use crate::Result;

/// `sink.s3.abort_uploads_older_than` when unset.
pub(super) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What a sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    pub aborted: usize,
    /// The sink's uploads left alone: young, and possibly a live writer's.
    pub kept: usize,
}

impl CommitLog {
    /// Aborts the sink's abandoned uploads; nothing for stores that keep
    /// no uploads (local directories) or cannot list them.
    pub(crate) fn abort_orphaned_uploads(&self, max_age: Duration) -> Result<Swept> {
        let Some(uploads) = self.store().uploads()? else {
            return Ok(Swept::default());
        };
        let mut swept = Swept::default();
        if uploads.is_empty() {
            return Ok(swept);
        }
        let ends = self.chain_ends()?;
        let now = crate::now_ms();
        for up in uploads {
            let Some((fin, _writer)) = parse_tmp(split(&up.key).1) else {
                continue;
            };
            let Some((topic, partition, first)) = parse_base(fin) else {
                continue;
            };
            let committed = ends
                .get(&(topic.to_owned(), partition))
                .is_some_and(|&end| end > first);
            let old = up
                .initiated_ms
                .is_some_and(|t| now.saturating_sub(t) >= max_age.as_millis() as i64);
            if committed || old {
                self.store().abort_upload(&up)?;
                swept.aborted += 1;
            } else {
                swept.kept += 1;
            }
        }
        if swept.aborted > 0 {
            info!(
                aborted = swept.aborted,
                kept = swept.kept,
                output = %self.store().describe(""),
                "aborted abandoned multipart uploads"
            );
        }
        Ok(swept)
    }
}
