//! Where one Kafka partition's share of a batch goes: its rows to the open
//! file of each partition directory they fall in, its dead letters to its
//! dead-letter file, opening the files that are missing. Rows are only
//! queued here; they are encoded together with the batch's other files
//! (see [`super::encode`]).

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use parquet::file::properties::WriterProperties;
use scorestream_schemas::{DeadLetter, DeadLetterBuilder, columns, dead_letter_schema};

use super::commit_log::base_name;
use super::open_file::OpenFile;
use super::open_set::OpenSet;
use super::sink::LATENCY_BUCKET_MS;
use super::split::column;
use super::store::Store;
use super::{DEAD_LETTERS_DIR, PartitionSpec, SCORES_DIR};
use crate::{Result, TopicPartition};

/// Rows split off a batch, bound for the open file of a Kafka partition and
/// partition directory, waiting to be encoded with the batch's other files.
pub(super) type Pending = Vec<(TopicPartition, String, RecordBatch)>;

/// A partition's rows by partition directory, each group with the offset of
/// its first row, which names the file the group opens.
pub(super) type Groups = Vec<(String, i64, RecordBatch)>;

/// Splits a partition's rows by partition directory.
pub(super) fn groups(spec: &PartitionSpec, rows: Option<&RecordBatch>) -> Result<Groups> {
    match rows {
        Some(b) if b.num_rows() > 0 => {
            let offsets = column(b, columns::SOURCE_OFFSET)?
                .as_primitive::<Int64Type>()
                .clone();
            Ok(spec
                .split(b)?
                .into_iter()
                .map(|(dir, first, part)| (dir, offsets.value(first), part))
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// Files that writing `groups` and `dead` into `set` would open, so room
/// can be made for them under `max_open_files` first.
pub(super) fn files_needed(
    set: Option<&OpenSet>,
    groups: &Groups,
    dead: &[&DeadLetter],
    dead_letter_files: bool,
) -> usize {
    let mut n = groups
        .iter()
        .filter(|(dir, _, _)| set.is_none_or(|s| !s.scores.contains_key(dir)))
        .count();
    if !dead.is_empty() && dead_letter_files && set.is_none_or(|s| s.dead.is_none()) {
        n += 1;
    }
    n
}

/// The sink's state a partition's share is routed with, borrowed field by
/// field so the set being written can be borrowed mutably beside it.
pub(super) struct Router<'a> {
    pub(super) store: &'a Store,
    pub(super) spec: &'a PartitionSpec,
    pub(super) writer: &'a str,
    pub(super) props: &'a WriterProperties,
    pub(super) dead_props: &'a WriterProperties,
    pub(super) row_group_bytes: usize,
    pub(super) dead_letter_files: bool,
}

impl Router<'_> {
    /// Opens the files of directories new to the set, counts the rows and
    /// their Kafka timestamps, and queues them for encoding.
    pub(super) fn rows(
        &self,
        set: &mut OpenSet,
        tp: &TopicPartition,
        groups: Groups,
        pending: &mut Pending,
    ) -> Result<()> {
        for (dir, first, part) in groups {
            let key = dir.clone();
            if let Entry::Vacant(v) = set.scores.entry(dir) {
                let dir = if v.key().is_empty() {
                    SCORES_DIR.to_owned()
                } else {
                    format!("{SCORES_DIR}/{}", v.key())
                };
                v.insert(OpenFile::create(
                    self.store,
                    &dir,
                    &file_name(tp, first),
                    self.writer,
                    self.spec.file_schema(),
                    self.props,
                    self.row_group_bytes,
                )?);
            }
            set.rows += part.num_rows();
            if let Some(ingest) = part.column_by_name(columns::INGEST_TIME) {
                count_ingest(
                    &mut set.ingest,
                    ingest.as_primitive::<TimestampMillisecondType>(),
                );
            }
            pending.push((tp.clone(), key, part));
        }
        Ok(())
    }

    /// Dead letters are counted even when they go to a topic, since the
    /// commit entry accounts for every offset; the file, when kept, is
    /// named for the first of them.
    pub(super) fn dead_letters(
        &self,
        set: &mut OpenSet,
        tp: &TopicPartition,
        dead: &[&DeadLetter],
        now: Instant,
    ) -> Result<()> {
        let Some(first) = dead.first() else {
            return Ok(());
        };
        set.dead_letters += dead.len();
        for d in dead {
            set.dead_letter_stages.add(d.stage, d.reason_code);
        }
        if !self.dead_letter_files {
            return Ok(());
        }
        let mut b = DeadLetterBuilder::default();
        dead.iter().for_each(|d| b.push(d));
        let batch = b.finish()?;
        if set.dead.is_none() {
            set.dead = Some(OpenFile::create(
                self.store,
                DEAD_LETTERS_DIR,
                &file_name(tp, first.offset),
                self.writer,
                &dead_letter_schema(),
                self.dead_props,
                self.row_group_bytes,
            )?);
        }
        if let Some(f) = set.dead.as_mut() {
            f.write(&batch, now)?;
        }
        Ok(())
    }
}

/// Adds Kafka timestamps to the set's latency buckets.
fn count_ingest(buckets: &mut BTreeMap<i64, u64>, ingest: &TimestampMillisecondArray) {
    for t in ingest.iter().flatten() {
        *buckets.entry(t.div_euclid(LATENCY_BUCKET_MS)).or_insert(0) += 1;
    }
}

/// `<topic>+<partition>+<first offset>.parquet`.
fn file_name(tp: &TopicPartition, first: i64) -> String {
    format!("{}.parquet", base_name(&tp.0, tp.1, first))
}
