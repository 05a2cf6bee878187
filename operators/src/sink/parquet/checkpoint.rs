//! Checkpoints of the commit log, so that it stays small however long a job
//! runs and start-up reads a bounded number of entries.
//!
//! A checkpoint (`_scorestream/checkpoints/<seq, 20 digits>.json`) holds,
//! per partition, where its chain ends and which entry is its tail. It is
//! created put-if-absent under the next sequence number, so of two
//! compactions racing one wins and the other changes nothing. Only once it
//! is durable are the entries it supersedes deleted: every entry below the
//! chain's end except the tail, which stays because its writer may still be
//! publishing its files (only a partition's newest entry can be
//! unfinished). State is the newest checkpoint plus the entries at or past
//! its ends, so a crash at any step leaves a log that yields the same state:
//! before the checkpoint exists nothing changed; after it, each remaining
//! superseded entry is ignored.
//!
//! Deleting entries would reopen the door fencing closes (a stalled writer
//! could create an entry named after a deleted one), so a writer checks its
//! new entries against the newest checkpoint before publishing
//! ([`Checkpoint::supersedes`]); entries created that way are strays, never
//! part of a chain, and the next compaction deletes them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::commit_log::{CommitLog, LOG_DIR, Starts, tmp_name};
use super::store::join;
use crate::{OperatorError, Result};

pub(super) const CHECKPOINT_DIR: &str = "_scorestream/checkpoints";
/// Checkpoints kept: the newest, and the one a reader that listed just
/// before the newest appeared may still be reading.
const KEPT: u64 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub seq: u64,
    pub writer: String,
    pub written_at_ms: i64,
    pub partitions: Vec<Mark>,
}

/// One partition's chain as of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    pub topic: String,
    pub partition: i32,
    /// Every offset below is committed: where the partition resumes.
    pub end: i64,
    /// The start of the partition's newest entry, kept in the log.
    pub tail: i64,
}

impl Checkpoint {
    fn mark(&self, topic: &str, partition: i32) -> Option<&Mark> {
        self.partitions
            .iter()
            .find(|m| m.partition == partition && m.topic == topic)
    }

    /// Whether the entry at `start` is part of its partition's chain: at or
    /// past the checkpoint's end, or the tail it kept.
    pub(super) fn is_live(&self, topic: &str, partition: i32, start: i64) -> bool {
        self.mark(topic, partition)
            .is_none_or(|m| start >= m.end || start == m.tail)
    }

    /// The end of the chain, when this checkpoint has already committed an
    /// entry created at `start` out of existence: the entry can only be a
    /// stalled writer's, named after one the checkpoint deleted.
    pub(super) fn supersedes(&self, topic: &str, partition: i32, start: i64) -> Option<i64> {
        self.mark(topic, partition)
            .filter(|m| start < m.end && start != m.tail)
            .map(|m| m.end)
    }
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub seq: u64,
    pub entries_removed: usize,
}

/// The newest checkpoint read so far; checkpoints never change once
/// written, so a sequence number seen before is not read again.
pub(super) type Cache = Arc<Mutex<Option<Arc<Checkpoint>>>>;

#[cfg(test)]
pub(super) fn crash_point(step: &str) -> Result<()> {
    let at = crash::AT.with(|a| a.borrow().clone());
    match at {
        Some((s, true)) if s == step => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(60));
            Ok(())
        }
        Some((s, false)) if s == step => Err(OperatorError::Internal(format!("crashed at {s}"))),
        _ => Ok(()),
    }
}

#[cfg(not(test))]
pub(super) fn crash_point(_step: &str) -> Result<()> {
    Ok(())
}

impl CommitLog {
    /// The newest checkpoint, if any. A compaction may delete the one a
    /// listing named before it is read; the listing is then taken again.
    pub(crate) fn checkpoint(&self) -> Result<Option<Arc<Checkpoint>>> {
        for _ in 0..5 {
            let newest = self
                .store()
                .list_files(CHECKPOINT_DIR)?
                .iter()
                .filter_map(|n| parse_name(n))
                .max();
            let Some(seq) = newest else { return Ok(None) };
            let cache = self.checkpoint_cache();
            if let Some(c) = cache.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
                && c.seq == seq
            {
                return Ok(Some(c.clone()));
            }
            let rel = join(CHECKPOINT_DIR, &file_name(seq));
            let Some(bytes) = self.store().read(&rel)? else {
                continue;
            };
            let c: Checkpoint =
                serde_json::from_slice(&bytes).map_err(|e| OperatorError::CommitLog {
                    location: self.store().describe(&rel),
                    reason: format!("not a valid checkpoint: {e}"),
                })?;
            let c = Arc::new(c);
            *cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
            return Ok(Some(c));
        }
        Err(OperatorError::CommitLog {
            location: self.store().describe(CHECKPOINT_DIR),
            reason: "the newest checkpoint kept disappearing while being read".into(),
        })
    }

    /// Live entries: what start-up reads besides the checkpoint.
    pub(super) fn backlog(&self) -> Result<u64> {
        Ok(self.live()?.1.values().map(|s| s.len() as u64).sum())
    }

    /// Compacts once this process's new entries reach a limit of
    /// `config`. A failure leaves the log as readable as before and is
    /// retried after the next commit, so it is logged, not returned: the
    /// commit it follows has succeeded.
    /// At open: compacts a log left longer than the limit (by an older
    /// version, or a crash before the last checkpoint), and sweeps
    /// abandoned uploads. Only reading the log can fail the open.
    pub(super) fn compact_if_long(
        &self,
        config: &super::ParquetSinkConfig,
        writer: &str,
    ) -> Result<()> {
        if self.backlog()? >= config.commit_log.checkpoint_entries
            && let Err(e) = self.compact(writer)
        {
            warn!(error = %e, "commit log checkpoint failed; retried after the next commit");
        }
        self.sweep_uploads(&config.s3);
        Ok(())
    }

    /// Abandoned uploads are swept at the same pace.
    pub(super) fn compact_if(&self, config: &super::ParquetSinkConfig, writer: &str) {
        if !config.commit_log.due(self.created_since_compaction()) {
            return;
        }
        match self.compact(writer) {
            Ok(_) => self.compacted(),
            Err(e) => {
                warn!(error = %e, "commit log checkpoint failed; retried after the next commit")
            }
        }
        self.sweep_uploads(&config.s3);
    }

    /// Aborts abandoned uploads; a failure (a missing
    /// `s3:ListBucketMultipartUploads` permission, say) only costs storage,
    /// so it is logged, not returned.
    pub(super) fn sweep_uploads(&self, s3: &super::S3Options) {
        let max_age = s3
            .abort_uploads_older_than
            .map_or(super::orphans::DEFAULT_MAX_AGE, |d| d.0);
        if let Err(e) = self.abort_orphaned_uploads(max_age) {
            warn!(error = %e, "could not abort abandoned multipart uploads");
        }
    }

    /// Writes a checkpoint of the log as it is and deletes the entries it
    /// supersedes. `None` when another compaction got there first.
    pub(crate) fn compact(&self, writer: &str) -> Result<Option<Compacted>> {
        let prev = self.checkpoint()?;
        let all = self.starts()?;
        let Some(marks) = self.marks(prev.as_deref(), &all)? else {
            return Ok(None);
        };
        let seq = prev.as_ref().map_or(1, |c| c.seq + 1);
        let next = Checkpoint {
            seq,
            writer: writer.to_owned(),
            written_at_ms: crate::now_ms(),
            partitions: marks,
        };
        let name = file_name(seq);
        let json = serde_json::to_vec_pretty(&next)
            .map_err(|e| OperatorError::Internal(format!("encoding checkpoint: {e}")))?;
        let (rel, tmp) = (
            join(CHECKPOINT_DIR, &name),
            join(CHECKPOINT_DIR, &tmp_name(&name, writer)),
        );
        if !self.store().put_if_absent(&rel, &tmp, json)? {
            return Ok(None);
        }
        self.store().sync_dir(CHECKPOINT_DIR)?;
        crash_point("checkpoint-written")?;

        let mut removed = 0;
        for ((topic, partition), starts) in &all {
            for &s in starts {
                if next.supersedes(topic, *partition, s).is_some() {
                    self.store()
                        .remove(&CommitLog::entry_rel(topic, *partition, s))?;
                    removed += 1;
                    crash_point("entry-removed")?;
                }
            }
        }
        self.store().sync_dir(LOG_DIR)?;
        crash_point("entries-removed")?;
        self.remove_old_checkpoints(seq)?;
        info!(
            seq,
            entries_removed = removed,
            partitions = next.partitions.len(),
            "commit log checkpointed"
        );
        Ok(Some(Compacted {
            seq,
            entries_removed: removed,
        }))
    }

    /// Each partition's end and tail: the previous checkpoint's, moved on
    /// by the newest live entry. `None` when that entry is gone already (a
    /// concurrent compaction, which will win the sequence number).
    fn marks(&self, prev: Option<&Checkpoint>, all: &Starts) -> Result<Option<Vec<Mark>>> {
        let mut marks: BTreeMap<(String, i32), Mark> = prev
            .iter()
            .flat_map(|c| c.partitions.iter())
            .map(|m| ((m.topic.clone(), m.partition), m.clone()))
            .collect();
        for ((topic, partition), starts) in all {
            let live = starts
                .iter()
                .rev()
                .find(|&&s| prev.is_none_or(|c| c.is_live(topic, *partition, s)));
            let Some(&newest) = live else { continue };
            let key = (topic.clone(), *partition);
            if marks.get(&key).is_some_and(|m| m.tail == newest) {
                continue;
            }
            let Some(e) = self.entry(topic, *partition, newest)? else {
                return Ok(None);
            };
            marks.insert(
                key,
                Mark {
                    topic: topic.clone(),
                    partition: *partition,
                    end: e.end,
                    tail: newest,
                },
            );
        }
        Ok(Some(marks.into_values().collect()))
    }

    /// Checkpoints older than the [`KEPT`] newest, and temporaries of
    /// checkpoints that can no longer be created.
    fn remove_old_checkpoints(&self, newest: u64) -> Result<()> {
        for name in self.store().list_files(CHECKPOINT_DIR)? {
            let stale = match parse_name(&name) {
                Some(seq) => seq + KEPT <= newest,
                None => super::commit_log::parse_tmp(&name)
                    .and_then(|(fin, _)| parse_name(fin))
                    .is_some_and(|seq| seq <= newest),
            };
            if stale {
                self.store().remove(&join(CHECKPOINT_DIR, &name))?;
            }
        }
        self.store().sync_dir(CHECKPOINT_DIR)
    }
}

/// Where a test stops a compaction, as a crash would: per thread, so
/// tests running side by side do not stop each other's.
#[cfg(test)]
pub(super) mod crash {
    use std::cell::RefCell;

    thread_local! {
        /// (step, what to do there): `true` SIGKILLs the process, `false`
        /// returns an error so the compaction stops where it is.
        pub(super) static AT: RefCell<Option<(String, bool)>> = const { RefCell::new(None) };
    }

    pub(crate) fn set(step: &str, kill: bool) {
        AT.with(|a| *a.borrow_mut() = Some((step.to_owned(), kill)));
    }
}
