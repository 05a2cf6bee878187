use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::boolean::and;
use arrow::compute::kernels::cmp::eq;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use scorestream_schemas::{DeadLetter, DeadLetterBuilder, columns};
use tracing::{debug, info};

use super::commit::write_synced;
use super::commit_log::{CommitEntry, CommitLog, CommittedFile, base_name, sync_dir, tmp_name};
use super::{Compression, ParquetSinkConfig};
use crate::{Coverage, Envelope, OperatorError, Result};

pub const SCORES_DIR: &str = "scores";
pub const DEAD_LETTERS_DIR: &str = "dead_letters";

/// What one [`ParquetSink::write`] made durable.
#[derive(Debug, Default)]
pub struct Committed {
    pub rows: usize,
    pub dead_letters: usize,
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// The offsets now committed to the output: safe to commit to Kafka.
    pub coverage: Coverage,
    /// The rows written, for latency accounting.
    pub batch: Option<RecordBatch>,
}

impl Committed {
    /// Kafka messages accounted for (rows plus dead letters).
    pub fn messages(&self) -> u64 {
        (self.rows + self.dead_letters) as u64
    }
}

/// One partition's share of an envelope, written but not yet committed.
struct Staged {
    entry: CommitEntry,
    /// (temporary path, final path) per file.
    files: Vec<(PathBuf, PathBuf)>,
    rows: usize,
    dead_letters: usize,
}

/// Writes each envelope as one file per partition (and per kind: scores,
/// dead letters), named `<topic>+<partition>+<start offset>.parquet`, and
/// commits each partition's files with its offset range in the
/// [`CommitLog`]. See that module for the protocol.
pub struct ParquetSink {
    root: PathBuf,
    scores_dir: PathBuf,
    dead_dir: PathBuf,
    props: WriterProperties,
    log: CommitLog,
    writer: String,
    dead_letter_files: bool,
}

impl ParquetSink {
    /// Creates the output directories, finishes commits a crash interrupted
    /// and removes temporary files that can never be committed.
    pub fn open(config: &ParquetSinkConfig) -> Result<Self> {
        let root = config.path.clone();
        let scores_dir = root.join(SCORES_DIR);
        let dead_dir = root.join(DEAD_LETTERS_DIR);
        for d in [&scores_dir, &dead_dir] {
            fs::create_dir_all(d)
                .map_err(|e| OperatorError::io(format!("creating {}", d.display()), e))?;
        }
        let log = CommitLog::open(&root)?;
        log.recover(None)?;
        let compression = match config.compression {
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let writer = format!("w{}-{}", crate::now_ms(), std::process::id());
        info!(output = %root.display(), writer, "parquet sink open");
        Ok(Self {
            root,
            scores_dir,
            dead_dir,
            props,
            log,
            writer,
            dead_letter_files: true,
        })
    }

    /// Dead letters go elsewhere (a topic); the commit log still records
    /// their offsets.
    pub fn without_dead_letter_files(mut self) -> Self {
        self.dead_letter_files = false;
        self
    }

    pub fn scores_dir(&self) -> &Path {
        &self.scores_dir
    }

    pub fn commit_log(&self) -> &CommitLog {
        &self.log
    }

    /// Commits the envelope's rows and dead letters, partition by partition,
    /// and returns the offsets now durable. A partition another writer has
    /// already committed past fails with [`OperatorError::Fenced`] after the
    /// other partitions are committed.
    pub fn write(&mut self, env: Envelope) -> Result<Committed> {
        let single = env.coverage.iter().count() == 1;
        let mut parts = Vec::new();
        for (topic, partition, range) in env.coverage.iter() {
            let rows = match &env.batch {
                Some(b) if single => Some(b.clone()),
                Some(b) => Some(rows_of(b, topic, partition)?),
                None => None,
            };
            let dead: Vec<&DeadLetter> = env
                .dead_letters
                .iter()
                .filter(|d| d.partition == partition && d.topic == *topic)
                .collect();
            parts.push((topic, partition, range.clone(), rows, dead));
        }
        let accounted: usize = parts
            .iter()
            .map(|p| p.3.as_ref().map_or(0, RecordBatch::num_rows) + p.4.len())
            .sum();
        if accounted != env.weight() {
            return Err(OperatorError::Internal(format!(
                "envelope holds {} messages but its coverage accounts for {accounted}",
                env.weight()
            )));
        }
        let mut staged = Vec::new();
        for (topic, partition, range, rows, dead) in parts {
            staged.push(self.stage(topic, partition, range, rows, &dead)?);
        }

        let mut committed = Vec::new();
        let mut fenced = None;
        for s in staged {
            match self.log.try_create(&s.entry)? {
                None => committed.push(s),
                Some(other) => {
                    for (tmp, _) in &s.files {
                        fs::remove_file(tmp).map_err(|e| {
                            OperatorError::io(format!("removing {}", tmp.display()), e)
                        })?;
                    }
                    fenced.get_or_insert(OperatorError::Fenced {
                        topic: s.entry.topic.clone(),
                        partition: s.entry.partition,
                        offset: s.entry.start,
                        other,
                    });
                }
            }
        }
        self.log.sync()?;

        let mut c = Committed::default();
        let (mut scores, mut dead) = (false, false);
        for s in committed {
            for (tmp, fin) in &s.files {
                fs::rename(tmp, fin)
                    .map_err(|e| OperatorError::io(format!("committing {}", fin.display()), e))?;
                scores |= fin.starts_with(&self.scores_dir);
                dead |= fin.starts_with(&self.dead_dir);
                c.files.push(fin.clone());
            }
            c.rows += s.rows;
            c.dead_letters += s.dead_letters;
            c.bytes += s.entry.files.iter().map(|f| f.bytes).sum::<u64>();
            let topic: Arc<str> = s.entry.topic.as_str().into();
            c.coverage
                .extend(&topic, s.entry.partition, s.entry.start..s.entry.end)?;
        }
        if scores {
            sync_dir(&self.scores_dir)?;
        }
        if dead {
            sync_dir(&self.dead_dir)?;
        }
        debug!(
            rows = c.rows,
            dead_letters = c.dead_letters,
            files = c.files.len(),
            "committed"
        );
        if let Some(e) = fenced {
            return Err(e);
        }
        c.batch = env.batch;
        Ok(c)
    }

    /// Writes one partition's files under temporary names.
    fn stage(
        &self,
        topic: &str,
        partition: i32,
        range: std::ops::Range<i64>,
        rows: Option<RecordBatch>,
        dead: &[&DeadLetter],
    ) -> Result<Staged> {
        let name = format!("{}.parquet", base_name(topic, partition, range.start));
        let mut s = Staged {
            entry: CommitEntry {
                topic: topic.to_owned(),
                partition,
                start: range.start,
                end: range.end,
                writer: self.writer.clone(),
                committed_at_ms: crate::now_ms(),
                files: Vec::new(),
            },
            files: Vec::new(),
            rows: 0,
            dead_letters: dead.len(),
        };
        let mut batches = Vec::new();
        if let Some(b) = rows.filter(|b| b.num_rows() > 0) {
            s.rows = b.num_rows();
            batches.push((SCORES_DIR, b));
        }
        if !dead.is_empty() && self.dead_letter_files {
            let mut b = DeadLetterBuilder::default();
            dead.iter().for_each(|d| b.push(d));
            batches.push((DEAD_LETTERS_DIR, b.finish()?));
        }
        for (dir, batch) in batches {
            let tmp = self.root.join(dir).join(tmp_name(&name, &self.writer));
            let bytes = write_synced(&tmp, &batch, &self.props)?;
            s.entry.files.push(CommittedFile {
                path: format!("{dir}/{name}"),
                rows: batch.num_rows() as u64,
                bytes,
            });
            s.files.push((tmp, self.root.join(dir).join(&name)));
        }
        Ok(s)
    }

    /// Clears temporary files that later commits made obsolete (left by
    /// crashed writers), so a stopped job leaves only committed files.
    pub fn close(self) -> Result<()> {
        self.log.recover(None).map(|_| ())
    }
}

/// The rows of `batch` that came from one partition.
fn rows_of(batch: &RecordBatch, topic: &str, partition: i32) -> Result<RecordBatch> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| OperatorError::Internal(format!("sink input has no `{name}` column")))
    };
    let by_partition = eq(
        col(columns::SOURCE_PARTITION)?,
        &Int32Array::new_scalar(partition),
    )?;
    let by_topic = eq(col(columns::SOURCE_TOPIC)?, &StringArray::new_scalar(topic))?;
    let mask: BooleanArray = and(&by_partition, &by_topic)?;
    Ok(filter_record_batch(batch, &mask)?)
}
