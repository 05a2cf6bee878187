//! The output's commit log: which files hold which Kafka offsets.
//!
//! One entry per committed range of one partition, named by the range's first
//! offset (`_scorestream/commits/<topic>+<partition>+<start>.json`) and
//! created with put-if-absent semantics (a hard link, which fails if the name
//! exists), like Delta Lake's log. Ranges of a partition chain end to start,
//! so the entry named after an offset can only be created once: two writers
//! that both believe they own a partition cannot both commit the same
//! offsets, and the loser learns it lost.
//!
//! A file commit has three steps: data files written under hidden temporary
//! names and synced; the entry created and its directory synced (the commit
//! point); the data files renamed to their final names. Recovery rolls a
//! committed entry forward (finishing its renames) and deletes temporary
//! files that can never be committed. Readers that glob `*.parquet` never see
//! data that is not committed.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{OperatorError, Result};

pub const LOG_DIR: &str = "_scorestream/commits";
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
pub fn base_name(topic: &str, partition: i32, start: i64) -> String {
    format!("{topic}+{partition}+{start:020}")
}

/// Parses a name made by [`base_name`] followed by an extension.
fn parse_base(name: &str) -> Option<(&str, i32, i64)> {
    let stem = name
        .strip_suffix(".parquet")
        .or_else(|| name.strip_suffix(".json"))?;
    let (rest, start) = stem.rsplit_once('+')?;
    let (topic, partition) = rest.rsplit_once('+')?;
    Some((topic, partition.parse().ok()?, start.parse().ok()?))
}

/// Where a file of `writer` waits before its commit.
pub fn tmp_name(final_name: &str, writer: &str) -> String {
    format!(".{final_name}.{writer}{}", super::TMP_SUFFIX)
}

/// Splits a temporary name into (final name, writer).
fn parse_tmp(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix('.')?
        .strip_suffix(super::TMP_SUFFIX)?
        .rsplit_once('.')
}

/// What a recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Files of committed entries whose rename a crash interrupted, now done.
    pub rolled_forward: usize,
    /// Temporary files that can never be committed, deleted.
    pub removed: usize,
}

#[derive(Debug, Clone)]
pub struct CommitLog {
    root: PathBuf,
    dir: PathBuf,
}

impl CommitLog {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join(LOG_DIR);
        fs::create_dir_all(&dir)
            .map_err(|e| OperatorError::io(format!("creating {}", dir.display()), e))?;
        Ok(Self {
            root: root.to_owned(),
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates `entry` unless its start offset is already committed. Returns
    /// the writer that got there first when it is. The entry is durable only
    /// after [`CommitLog::sync`].
    pub fn try_create(&self, entry: &CommitEntry) -> Result<Option<String>> {
        let name = format!(
            "{}.json",
            base_name(&entry.topic, entry.partition, entry.start)
        );
        let fin = self.dir.join(&name);
        let tmp = self.dir.join(tmp_name(&name, &entry.writer));
        let io = |what: &str, p: &Path, e| OperatorError::io(format!("{what} {}", p.display()), e);
        let json = serde_json::to_vec_pretty(entry)
            .map_err(|e| OperatorError::Internal(format!("encoding commit entry: {e}")))?;
        let mut f = File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
        f.write_all(&json).map_err(|e| io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        drop(f);
        let linked = fs::hard_link(&tmp, &fin);
        fs::remove_file(&tmp).map_err(|e| io("removing", &tmp, e))?;
        match linked {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other = self
                    .read_entry(&fin)
                    .map(|o| o.writer)
                    .unwrap_or_else(|e| format!("unreadable entry: {e}"));
                Ok(Some(other))
            }
            Err(e) => Err(io("committing", &fin, e)),
        }
    }

    /// Makes created entries durable: the commit point.
    pub fn sync(&self) -> Result<()> {
        sync_dir(&self.dir)
    }

    fn read_entry(&self, path: &Path) -> Result<CommitEntry> {
        let bytes = fs::read(path)
            .map_err(|e| OperatorError::io(format!("reading {}", path.display()), e))?;
        serde_json::from_slice(&bytes).map_err(|e| OperatorError::CommitLog {
            path: path.to_owned(),
            reason: format!("not a valid commit entry: {e}"),
        })
    }

    /// Every entry name, parsed, grouped by partition: start offsets in order.
    fn starts(&self) -> Result<HashMap<(String, i32), Vec<i64>>> {
        let mut out: HashMap<(String, i32), Vec<i64>> = HashMap::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| OperatorError::io(format!("listing {}", self.dir.display()), e))?;
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
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

    /// The entry whose range holds `offset`, if any.
    fn covering(
        &self,
        starts: &HashMap<(String, i32), Vec<i64>>,
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
        let path = self
            .dir
            .join(format!("{}.json", base_name(topic, partition, start)));
        if !path.exists() {
            return Ok(None);
        }
        self.read_entry(&path).map(Some)
    }

    /// Where each partition's committed chain ends: the offset to resume from.
    pub fn chain_ends(&self) -> Result<BTreeMap<(String, i32), i64>> {
        let mut out = BTreeMap::new();
        for ((t, p), starts) in self.starts()? {
            if let Some(&last) = starts.last()
                && let Some(e) = self.entry(&t, p, last)?
            {
                out.insert((t, p), e.end);
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
    pub fn recover(&self, only: Option<&[(String, i32)]>) -> Result<Recovery> {
        let starts = self.starts()?;
        let mut rec = Recovery::default();
        let mut changed_dirs: Vec<PathBuf> = Vec::new();
        for ((t, p), s) in &starts {
            if only.is_some_and(|o| !o.iter().any(|(ot, op)| ot == t && op == p)) {
                continue;
            }
            let Some(&last) = s.last() else { continue };
            let Some(entry) = self.entry(t, *p, last)? else {
                continue;
            };
            for f in &entry.files {
                let fin = self.root.join(&f.path);
                if fin.exists() {
                    continue;
                }
                let (Some(dir), Some(name)) = (fin.parent(), fin.file_name()) else {
                    continue;
                };
                let tmp = dir.join(tmp_name(&name.to_string_lossy(), &entry.writer));
                if tmp.exists() {
                    fs::rename(&tmp, &fin).map_err(|e| {
                        OperatorError::io(format!("finishing commit of {}", fin.display()), e)
                    })?;
                    rec.rolled_forward += 1;
                    changed_dirs.push(dir.to_owned());
                }
            }
        }
        if only.is_none() {
            let ends = self.chain_ends()?;
            let mut dirs = vec![self.dir.clone()];
            for d in DATA_DIRS {
                walk_dirs(&self.root.join(d), &mut dirs);
            }
            for dir in dirs {
                let is_log = dir == self.dir;
                let Ok(listing) = fs::read_dir(&dir) else {
                    continue;
                };
                for e in listing.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let Some((fin, writer)) = parse_tmp(&name) else {
                        continue;
                    };
                    let Some((t, p, first)) = parse_base(fin) else {
                        continue;
                    };
                    let key = (t.to_owned(), p);
                    // Every offset below the chain's end is committed. A
                    // data file its entry names is rolled forward (its
                    // writer may be renaming it right now); any other can
                    // never be committed again. The log's own temporaries
                    // are named after an entry.
                    let committed = if is_log {
                        self.entry(t, p, first)?.is_some()
                    } else {
                        ends.get(&key).is_some_and(|&end| end > first)
                    };
                    if !committed {
                        continue;
                    }
                    let path = e.path();
                    let target = dir.join(fin);
                    let named = !is_log
                        && self.covering(&starts, &key, first)?.is_some_and(|en| {
                            en.writer == writer
                                && en.files.iter().any(|f| self.root.join(&f.path) == target)
                        });
                    if named && !target.exists() {
                        fs::rename(&path, &target).map_err(|e| {
                            OperatorError::io(
                                format!("finishing commit of {}", target.display()),
                                e,
                            )
                        })?;
                        rec.rolled_forward += 1;
                    } else {
                        fs::remove_file(&path).map_err(|e| {
                            OperatorError::io(format!("removing {}", path.display()), e)
                        })?;
                        rec.removed += 1;
                    }
                    changed_dirs.push(dir.clone());
                }
            }
        }
        changed_dirs.sort();
        changed_dirs.dedup();
        for d in &changed_dirs {
            sync_dir(d)?;
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

/// `dir` and every directory under it.
fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    out.push(dir.to_owned());
    for e in listing.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dirs(&e.path(), out);
        }
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OperatorError::io(format!("syncing directory {}", dir.display()), e))
}
