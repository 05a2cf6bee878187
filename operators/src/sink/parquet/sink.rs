use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use scorestream_schemas::DeadLetter;
use tracing::{debug, info};

use super::commit_log::CommitLog;
use super::dictionary;
use super::encode::encode_files;
use super::open_file::OpenFile;
use super::open_set::OpenSet;
use super::properties::{compression, writer_properties, writer_properties_with_plain};
use super::route::{self, Pending, Router};
use super::split::split_by_partition;
use super::store::Store;
use super::two_phase;
use super::{ParquetSinkConfig, PartitionSpec};
use crate::sink::Committed;
use crate::{Envelope, OperatorError, Result, TopicPartition};

pub const SCORES_DIR: &str = "scores";
pub const DEAD_LETTERS_DIR: &str = "dead_letters";

/// Kafka-to-committed latencies are kept per open set at this resolution, so
/// their memory does not grow with the rows a file holds.
pub(super) const LATENCY_BUCKET_MS: i64 = 10;

/// Writes scored rows into Hive-partitioned Parquet files that stay open
/// across batches and roll by size, rows, age or inactivity, whichever comes
/// first; each Kafka partition's open files are committed together with the
/// offsets they cover in the [`CommitLog`] (see that module for the
/// protocol). File names are `<topic>+<partition>+<first offset>.parquet`,
/// unique because every offset is in exactly one file.
pub struct ParquetSink {
    store: Store,
    spec: PartitionSpec,
    props: WriterProperties,
    /// Whether `props` already say which columns go without a dictionary
    /// (decided from the first batch large enough, see [`dictionary`]).
    dictionary_decided: bool,
    dead_props: WriterProperties,
    config: ParquetSinkConfig,
    log: CommitLog,
    writer: String,
    dead_letter_files: bool,
    /// Files of one batch encoded at once (`sink.encode_threads`).
    encode_threads: usize,
    sets: HashMap<TopicPartition, OpenSet>,
    /// Commits made early (to stay under `max_open_files`) and not yet
    /// returned to the caller.
    pending: Committed,
}

impl ParquetSink {
    /// Creates the output directories, finishes commits a crash interrupted
    /// and removes temporary files that can never be committed. An object
    /// store output must be opened inside a multi-threaded tokio runtime.
    pub fn open(config: &ParquetSinkConfig, spec: PartitionSpec) -> Result<Self> {
        let store = config.store()?;
        Self::open_in(store, config, spec)
    }

    /// [`ParquetSink::open`] on a store opened by the caller.
    pub fn open_in(store: Store, config: &ParquetSinkConfig, spec: PartitionSpec) -> Result<Self> {
        for d in [SCORES_DIR, DEAD_LETTERS_DIR] {
            store.create_dir(d)?;
        }
        let log = CommitLog::at(store.clone())?;
        log.recover(None)?;
        let writer = format!("w{}-{}", crate::now_ms(), std::process::id());
        log.compact_if_long(config, &writer)?;
        let props = writer_properties(config);
        let dead_props = WriterProperties::builder()
            .set_compression(compression(config.compression))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        info!(output = %store.describe(""), writer, "parquet sink open");
        Ok(Self {
            store,
            spec,
            props,
            dictionary_decided: false,
            dead_props,
            config: config.clone(),
            log,
            writer,
            dead_letter_files: true,
            encode_threads: config.encode_threads(),
            sets: HashMap::new(),
            pending: Committed::default(),
        })
    }

    /// Dead letters go elsewhere (a topic); the commit log still records
    /// their offsets.
    pub fn without_dead_letter_files(mut self) -> Self {
        self.dead_letter_files = false;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    #[cfg(test)]
    pub(crate) fn commit_log(&self) -> &CommitLog {
        &self.log
    }

    /// Files open now, over all partitions.
    pub fn open_files(&self) -> usize {
        self.sets.values().map(OpenSet::open_files).sum()
    }

    /// Encoded rows the open files hold in memory.
    pub fn buffered_bytes(&self) -> usize {
        self.sets
            .values()
            .flat_map(|s| s.files())
            .map(OpenFile::buffered)
            .sum()
    }

    /// Writes the envelope into the open files and commits what a size limit
    /// (or a flush request) closed. A partition another writer has already
    /// committed past fails with [`OperatorError::Fenced`] after the other
    /// partitions are committed.
    pub fn write(&mut self, env: Envelope) -> Result<Committed> {
        let now = Instant::now();
        if !self.dictionary_decided
            && let Some(plain) = env.batch.as_ref().and_then(dictionary::mostly_distinct)
        {
            info!(
                columns = %plain.join(","),
                "columns written without dictionary encoding: their values are mostly distinct"
            );
            self.props = writer_properties_with_plain(&self.config, &plain);
            self.dictionary_decided = true;
        }
        let parts = split_by_partition(&env)?;
        let mut pending = Pending::new();
        for (tp, range, rows, dead) in parts {
            self.write_partition(tp, range, rows, &dead, now, &mut pending)?;
        }
        self.encode(&mut pending, now)?;
        self.bound_memory()?;
        let due: Vec<TopicPartition> = if env.flush {
            self.sets.keys().cloned().collect()
        } else {
            self.sets
                .iter()
                .filter(|(_, s)| s.full(&self.config.roll))
                .map(|(k, _)| k.clone())
                .collect()
        };
        self.commit(due)
    }

    /// When the next set closes by time alone, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sets
            .values()
            .map(|s| s.deadline(&self.config.roll))
            .min()
    }

    /// Commits every set whose roll interval or inactivity timeout has passed.
    pub fn tick(&mut self, now: Instant) -> Result<Committed> {
        let roll = self.config.roll;
        let due = self
            .sets
            .iter()
            .filter(|(_, s)| s.deadline(&roll) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        self.commit(due)
    }

    /// Commits everything open: on shutdown and when partitions are revoked.
    pub fn flush(&mut self) -> Result<Committed> {
        let all = self.sets.keys().cloned().collect();
        self.commit(all)
    }

    /// Routes one Kafka partition's share of a batch into its open set,
    /// first committing other partitions if its new files would not fit
    /// under `max_open_files`.
    fn write_partition(
        &mut self,
        tp: TopicPartition,
        range: Range<i64>,
        rows: Option<RecordBatch>,
        dead: &[&DeadLetter],
        now: Instant,
        pending: &mut Pending,
    ) -> Result<()> {
        let groups = route::groups(&self.spec, rows.as_ref())?;
        let needed = route::files_needed(self.sets.get(&tp), &groups, dead, self.dead_letter_files);
        self.make_room(needed, pending, now)?;

        let set = self
            .sets
            .entry(tp.clone())
            .or_insert_with(|| OpenSet::new(&tp, range.start, now));
        if set.range.end != range.start {
            return Err(OperatorError::Internal(format!(
                "offsets of {}/{} out of order: {:?} then {range:?}",
                tp.0, tp.1, set.range
            )));
        }
        let router = Router {
            store: &self.store,
            spec: &self.spec,
            writer: &self.writer,
            props: &self.props,
            dead_props: &self.dead_props,
            row_group_bytes: self.config.row_group.bytes.0 as usize,
            dead_letter_files: self.dead_letter_files,
        };
        router.rows(set, &tp, groups, pending)?;
        router.dead_letters(set, &tp, dead, now)?;
        set.range.end = range.end;
        set.last_write = now;
        Ok(())
    }

    /// Commits the least recently written partitions until `needed` more
    /// files fit under `max_open_files`. Rows still pending are encoded
    /// first, since the partition committed may be one they belong to.
    fn make_room(&mut self, needed: usize, pending: &mut Pending, now: Instant) -> Result<()> {
        while needed > 0 && !self.sets.is_empty() {
            if self.open_files() + needed <= self.config.max_open_files {
                return Ok(());
            }
            self.encode(pending, now)?;
            let lru = self
                .sets
                .iter()
                .min_by_key(|(_, s)| s.last_write)
                .map(|(k, _)| k.clone());
            let Some(lru) = lru else { break };
            let c = self.commit(vec![lru])?;
            debug!(
                files = c.files.len(),
                "committed early: too many open files"
            );
            self.pending.absorb(c)?;
        }
        Ok(())
    }

    /// Encodes the pending rows into their open files, the files side by
    /// side (see [`encode_files`]).
    fn encode(&mut self, pending: &mut Pending, now: Instant) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut by_set: HashMap<TopicPartition, HashMap<String, Vec<RecordBatch>>> = HashMap::new();
        for (tp, dir, rows) in pending.drain(..) {
            by_set
                .entry(tp)
                .or_default()
                .entry(dir)
                .or_default()
                .push(rows);
        }
        let mut work = Vec::new();
        for (tp, set) in self.sets.iter_mut() {
            let Some(mut dirs) = by_set.remove(tp) else {
                continue;
            };
            for (dir, file) in set.scores.iter_mut() {
                if let Some(rows) = dirs.remove(dir) {
                    work.push((file, rows));
                }
            }
            if let Some(dir) = dirs.keys().next() {
                return Err(OperatorError::Internal(format!(
                    "rows for {}/{} `{dir}` have no open file",
                    tp.0, tp.1
                )));
            }
        }
        if let Some((tp, _)) = by_set.iter().next() {
            return Err(OperatorError::Internal(format!(
                "rows for {}/{} have no open files",
                tp.0, tp.1
            )));
        }
        encode_files(work, self.encode_threads, now)
    }

    /// Sends the largest buffered row groups to disk while the open files
    /// together hold more than `max_buffered_bytes` in memory.
    fn bound_memory(&mut self) -> Result<()> {
        let limit = self.config.max_buffered_bytes.0 as usize;
        loop {
            if self.buffered_bytes() <= limit {
                return Ok(());
            }
            let largest = self
                .sets
                .values_mut()
                .flat_map(|s| s.scores.values_mut().chain(s.dead.as_mut()))
                .max_by_key(|f| f.buffered());
            match largest {
                Some(f) if f.buffered() > 0 => f.flush_row_group()?,
                _ => return Ok(()),
            }
        }
    }

    /// Commits the given sets in two phases (see [`two_phase`]): finish
    /// their files and stage their entries, create the entries in the
    /// commit log (the commit point, one sync for all), then publish the
    /// files under their final names.
    fn commit(&mut self, keys: Vec<TopicPartition>) -> Result<Committed> {
        let mut c = std::mem::take(&mut self.pending);
        let sets: Vec<OpenSet> = keys.iter().filter_map(|k| self.sets.remove(k)).collect();
        if sets.is_empty() {
            return Ok(c);
        }
        let now_ms = crate::now_ms();
        let staged = two_phase::stage(sets, &self.writer, now_ms)?;
        let (won, fenced) = two_phase::claim(&self.log, staged)?;
        two_phase::publish(&self.store, &won, now_ms, LATENCY_BUCKET_MS, &mut c)?;
        if fenced.is_none() {
            self.log.compact_if(&self.config, &self.writer);
        }
        debug!(
            rows = c.rows,
            dead_letters = c.dead_letters,
            files = c.files.len(),
            "committed"
        );
        match fenced {
            Some(e) => Err(e),
            None => Ok(c),
        }
    }

    /// Commits what is open and clears temporary files that later commits
    /// made obsolete (left by crashed writers), so a stopped job leaves only
    /// committed files.
    pub fn close(mut self) -> Result<Committed> {
        let c = self.flush()?;
        self.log.recover(None)?;
        Ok(c)
    }
}

impl crate::sink::Sink for ParquetSink {
    fn resume_positions(&self) -> Arc<dyn crate::source::kafka::ResumePositions> {
        Arc::new(self.log.clone())
    }

    fn write(&mut self, env: Envelope) -> Result<Committed> {
        ParquetSink::write(self, env)
    }

    fn next_deadline(&self) -> Option<Instant> {
        ParquetSink::next_deadline(self)
    }

    fn tick(&mut self, now: Instant) -> Result<Committed> {
        ParquetSink::tick(self, now)
    }

    fn close(self: Box<Self>) -> Result<Committed> {
        ParquetSink::close(*self)
    }

    fn open_files(&self) -> usize {
        ParquetSink::open_files(self)
    }

    fn buffered_bytes(&self) -> usize {
        ParquetSink::buffered_bytes(self)
    }
}
