//! The output's commit log: which files hold which Kafka offsets.
//!
//! One entry per committed range of one partition, named by the range's first
//! offset (`_scorestream/commits/<topic>+<partition>+<start>.json`) and
//! created with put-if-absent semantics (a hard link locally, a conditional
//! put on object stores: see [`super::store`]), like Delta Lake's log.
//! Ranges of a partition chain end to start, so the entry named after an
//! offset can only be created once: two writers that both believe they own
//! a partition cannot both commit the same offsets, and the loser learns it
//! lost.
//!
//! A file commit has three steps: data files written under hidden temporary
//! names and synced (uploaded, on object stores); the entry created and its
//! directory synced (the commit point); the data files renamed (copied, on
//! object stores) to their final names. Recovery rolls a committed entry
//! forward (finishing its renames) and deletes temporary files that can
//! never be committed. Readers that glob `*.parquet` never see data that is
//! not committed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tracing::info;

use super::checkpoint::{self, Checkpoint};
use super::store::{Store, join, split};
use crate::{OperatorError, Result};
pub(super) const LOG_DIR: &str = "_scorestream/commits";
/// Directories that hold committed data files.
const DATA_DIRS: [&str; 2] = [super::SCORES_DIR, super::DEAD_LETTERS_DIR];

/// One committed range of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    /// First offset covered.
    pub start: i64,
    /// One past the last offset covered: where the next range starts.
    pub end: i64,
    /// The process that committed it (`w<start ms>-<pid>`).
    pub writer: String,
    pub committed_at_ms: i64,
    /// Data files, relative to the output root. May be empty when the range
    /// holds no message (transaction markers, compacted offsets).
    pub files: Vec<CommittedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// `<topic>+<partition>+<start, 20 digits>` — Kafka Connect's naming, so the
/// name alone says where the data came from and names sort by offset.
/// Kafka topic names cannot contain `+`.
pub(super) fn base_name(topic: &str, partition: i32, start: i64) -> String {
    format!("{topic}+{partition}+{start:020}")
}

/// Parses a name made by [`base_name`] followed by an extension.
pub(super) fn parse_base(name: &str) -> Option<(&str, i32, i64)> {
    let stem = name
        .strip_suffix(".parquet")
        .or_else(|| name.strip_suffix(".json"))?;
    let (rest, start) = stem.rsplit_once('+')?;
    let (topic, partition) = rest.rsplit_once('+')?;
    Some((topic, partition.parse().ok()?, start.parse().ok()?))
}

/// Where a file of `writer` waits before its commit.
pub(super) fn tmp_name(final_name: &str, writer: &str) -> String {
    format!(".{final_name}.{writer}{}", super::TMP_SUFFIX)
}

/// Splits a temporary name into (final name, writer).
pub(super) fn parse_tmp(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix('.')?
        .strip_suffix(super::TMP_SUFFIX)?
        .rsplit_once('.')
}

/// What a recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Files of committed entries whose rename a crash interrupted, now done.
    pub rolled_forward: usize,
    /// Temporary files that can never be committed, deleted.
    pub removed: usize,
}

/// Entry start offsets by partition, in order.
pub(super) type Starts = HashMap<(String, i32), Vec<i64>>;

#[derive(Debug, Clone)]
pub struct CommitLog {
    store: Store,
    checkpoint: checkpoint::Cache,
    /// Entries this process created since its last compaction, and their bytes.
    created: Arc<[AtomicU64; 2]>,
}

impl CommitLog {
    /// The commit log of a local output directory.
    pub fn open(root: &Path) -> Result<Self> {
        Self::at(Store::local(root))
    }

    pub fn at(store: Store) -> Result<Self> {
        store.create_dir(LOG_DIR)?;
        store.create_dir(checkpoint::CHECKPOINT_DIR)?;
        Ok(Self {
            store,
            checkpoint: Default::default(),
            created: Default::default(),
        })
    }

    pub(super) fn checkpoint_cache(&self) -> &checkpoint::Cache {
        &self.checkpoint
    }

    /// Entries created (and their bytes) since [`CommitLog::compacted`].
    pub(super) fn created_since_compaction(&self) -> (u64, u64) {
        (
            self.created[0].load(Ordering::Relaxed),
            self.created[1].load(Ordering::Relaxed),
        )
    }

    pub(super) fn compacted(&self) {
        self.created
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn entry_rel(topic: &str, partition: i32, start: i64) -> String {
        format!("{LOG_DIR}/{}.json", base_name(topic, partition, start))
    }

    /// Creates `entry` unless its start offset is already committed. Returns
    /// the writer that got there first when it is. The entry is durable only
    /// after [`CommitLog::sync`].
    pub(crate) fn try_create(&self, entry: &CommitEntry) -> Result<Option<String>> {
        let rel = Self::entry_rel(&entry.topic, entry.partition, entry.start);
        let tmp = join(LOG_DIR, &tmp_name(split(&rel).1, &entry.writer));
        let json = serde_json::to_vec_pretty(entry)
            .map_err(|e| OperatorError::Internal(format!("encoding commit entry: {e}")))?;
        let bytes = json.len() as u64;
        if self.store.put_if_absent(&rel, &tmp, json)? {
            self.created[0].fetch_add(1, Ordering::Relaxed);
            self.created[1].fetch_add(bytes, Ordering::Relaxed);
            return Ok(None);
        }
        let other = match self.read_entry(&rel) {
            Ok(Some(o)) => o.writer,
            Ok(None) => "an entry since removed".into(),
            Err(e) => format!("unreadable entry: {e}"),
        };
        Ok(Some(other))
    }

    /// Makes created entries durable: the commit point.
    pub fn sync(&self) -> Result<()> {
        self.store.sync_dir(LOG_DIR)
    }

    fn read_entry(&self, rel: &str) -> Result<Option<CommitEntry>> {
        let Some(bytes) = self.store.read(rel)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OperatorError::CommitLog {
                location: self.store.describe(rel),
                reason: format!("not a valid commit entry: {e}"),
            })
    }

    /// Removes an entry this writer created but must not keep.
    pub(super) fn remove_entry(&self, entry: &CommitEntry) -> Result<()> {
        self.store
            .remove(&Self::entry_rel(&entry.topic, entry.partition, entry.start))
    }

    /// Every entry name, parsed, grouped by partition: start offsets in
    /// order, including entries a checkpoint superseded.
    pub(super) fn starts(&self) -> Result<Starts> {
        let mut out: Starts = HashMap::new();
        for name in self.store.list_files(LOG_DIR)? {
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            if let Some((t, p, s)) = parse_base(&name) {
                out.entry((t.to_owned(), p)).or_default().push(s);
            }
        }
        out.values_mut().for_each(|v| v.sort_unstable());
        Ok(out)
    }

    /// The newest checkpoint and the entries at or past its ends: the
    /// log's state. Read in this order, a compaction in between leaves
    /// extra entries listed, which the checkpoint read first accounts for.
    pub(super) fn live(&self) -> Result<(Option<Arc<Checkpoint>>, Starts)> {
        let ck = self.checkpoint()?;
        let mut starts = self.starts()?;
        if let Some(c) = &ck {
            for ((t, p), s) in starts.iter_mut() {
                s.retain(|&x| c.is_live(t, *p, x));
            }
        }
        Ok((ck, starts))
    }

    /// The entry whose range holds `offset`, if any.
    fn covering(
        &self,
        starts: &Starts,
        key: &(String, i32),
        offset: i64,
    ) -> Result<Option<CommitEntry>> {
        let Some(s) = starts.get(key) else {
            return Ok(None);
        };
        let at = s.partition_point(|&x| x <= offset);
        if at == 0 {
            return Ok(None);
        }
        Ok(self
            .entry(&key.0, key.1, s[at - 1])?
            .filter(|e| e.end > offset))
    }

    /// The entry committed for `start`, if any.
    pub fn entry(&self, topic: &str, partition: i32, start: i64) -> Result<Option<CommitEntry>> {
        self.read_entry(&Self::entry_rel(topic, partition, start))
    }

    /// Where each partition's committed chain ends: the offset to resume from.
    pub(crate) fn chain_ends(&self) -> Result<BTreeMap<(String, i32), i64>> {
        let (ck, starts) = self.live()?;
        let mut out: BTreeMap<(String, i32), i64> = ck
            .iter()
            .flat_map(|c| c.partitions.iter())
            .map(|m| ((m.topic.clone(), m.partition), m.end))
            .collect();
        for ((t, p), starts) in starts {
            if let Some(&last) = starts.last()
                && let Some(e) = self.entry(&t, p, last)?
            {
                let end = out.entry((t, p)).or_insert(e.end);
                *end = (*end).max(e.end);
            }
        }
        Ok(out)
    }

    /// Finishes interrupted commits, for the given partitions (all when
    /// `None`): only the newest entry of a partition can be unfinished,
    /// because a writer finishes its renames before its next commit. A full
    /// pass (`None`) also deletes temporary files that can never be
    /// committed; ones past the end of a chain may belong to a live writer
    /// and are left for a later pass.
    pub(crate) fn recover(&self, only: Option<&[(String, i32)]>) -> Result<Recovery> {
        let starts = self.live()?.1;
        let mut rec = Recovery::default();
        let mut changed_dirs: Vec<String> = Vec::new();
        for ((t, p), s) in &starts {
            if only.is_some_and(|o| !o.iter().any(|(ot, op)| ot == t && op == p)) {
                continue;
            }
            let Some(&last) = s.last() else { continue };
            let Some(entry) = self.entry(t, *p, last)? else {
                continue;
            };
            for f in &entry.files {
                if self.store.exists(&f.path)? {
                    continue;
                }
                let (dir, name) = split(&f.path);
                let tmp = join(dir, &tmp_name(name, &entry.writer));
                if self.store.exists(&tmp)? {
                    self.store.publish(&tmp, &f.path)?;
                    rec.rolled_forward += 1;
                    changed_dirs.push(dir.to_owned());
                }
            }
        }
        if only.is_none() {
            let ends = self.chain_ends()?;
            let mut files = self.store.list_tree(LOG_DIR)?;
            for d in DATA_DIRS {
                files.extend(self.store.list_tree(d)?);
            }
            for (dir, name) in files {
                let is_log = dir == LOG_DIR;
                let Some((fin, writer)) = parse_tmp(&name) else {
                    continue;
                };
                let Some((t, p, first)) = parse_base(fin) else {
                    continue;
                };
                let key = (t.to_owned(), p);
                // Every offset below the chain's end is committed. A data
                // file its entry names is rolled forward (its writer may be
                // renaming it right now); any other can never be committed
                // again. The log's own temporaries are named after an entry.
                let committed = if is_log {
                    self.entry(t, p, first)?.is_some()
                } else {
                    ends.get(&key).is_some_and(|&end| end > first)
                };
                if !committed {
                    continue;
                }
                let tmp = join(&dir, &name);
                let target = join(&dir, fin);
                let named = !is_log
                    && self.covering(&starts, &key, first)?.is_some_and(|en| {
                        en.writer == writer && en.files.iter().any(|f| f.path == target)
                    });
                if named && !self.store.exists(&target)? {
                    self.store.publish(&tmp, &target)?;
                    rec.rolled_forward += 1;
                } else {
                    self.store.remove(&tmp)?;
                    rec.removed += 1;
                }
                changed_dirs.push(dir);
            }
        }
        changed_dirs.sort();
        changed_dirs.dedup();
        for d in &changed_dirs {
            self.store.sync_dir(d)?;
        }
        if rec != Recovery::default() {
            info!(
                rolled_forward = rec.rolled_forward,
                removed = rec.removed,
                "commit log recovery"
            );
        }
        Ok(rec)
    }
}

impl crate::source::kafka::ResumePositions for CommitLog {
    fn resume_positions(&self, partitions: &[(String, i32)]) -> Result<Vec<Option<i64>>> {
        self.recover(Some(partitions))?;
        let ends = self.chain_ends()?;
        Ok(partitions.iter().map(|k| ends.get(k).copied()).collect())
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    super::store::sync_path(dir)
}
