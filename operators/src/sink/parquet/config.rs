use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::store::{OutputPath, S3Options, Store};
use crate::Result;
use crate::config::{ByteSize, ConfigError, HumanDuration, Validate, found};

/// S3 copies at most 5 GiB in one request, and files are published by copy.
const S3_MAX_COPY: u64 = 5 << 30;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output root: scored rows go to `<path>/scores`, dead letters to
    /// `<path>/dead_letters`. A directory (relative paths are resolved
    /// against the working directory) or `s3://bucket/prefix`.
    pub path: OutputPath,
    /// How to reach an `s3://` output, over the `AWS_*` environment.
    #[serde(default)]
    pub s3: S3Options,
    /// Where files bound for an object store are encoded before their
    /// upload; holds at most `max_open_files` files of up to
    /// `roll.max_bytes`. Defaults to `scorestream-spool` in the system's
    /// temporary directory.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    #[serde(default)]
    pub compression: Compression,
    /// Hive partition columns, outermost first: `event_date` and `event_hour`
    /// (derived from `partition_time`, UTC) or any string, integer or boolean
    /// output column. An empty list writes every file in one directory.
    #[serde(default = "default_partition_by")]
    pub partition_by: Vec<String>,
    /// The timestamp column `event_date` and `event_hour` come from. The
    /// Kafka timestamp (`ingest_time`) unless the events carry their own.
    #[serde(default = "default_partition_time")]
    pub partition_time: String,
    #[serde(default)]
    pub row_group: RowGroupConfig,
    #[serde(default)]
    pub roll: RollConfig,
    /// Files open at once over all partitions. Opening one more first commits
    /// the files of the Kafka partition written to least recently.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
    /// Encoded rows held in memory by all open files together; past it the
    /// largest buffered row group goes to disk early, so memory stays bounded
    /// however many partitions are open.
    #[serde(default = "default_max_buffered")]
    pub max_buffered_bytes: ByteSize,
    /// Threads that encode a batch's files at once (each Kafka partition
    /// and partition directory is its own file). Defaults to the cores the
    /// process may use; 1 encodes on the sink's own thread.
    #[serde(default)]
    pub encode_threads: Option<usize>,
    #[serde(default)]
    pub commit_log: CommitLogConfig,
}

/// When the commit log is checkpointed and the entries the checkpoint
/// supersedes deleted, so start-up reads a bounded log however long the
/// job has run: whichever limit this process's new entries reach first.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitLogConfig {
    /// Entries (one per Kafka partition per commit).
    #[serde(default = "default_checkpoint_entries")]
    pub checkpoint_entries: u64,
    /// Bytes of entries.
    #[serde(default = "default_checkpoint_bytes")]
    pub checkpoint_bytes: ByteSize,
}

impl Default for CommitLogConfig {
    fn default() -> Self {
        Self {
            checkpoint_entries: default_checkpoint_entries(),
            checkpoint_bytes: default_checkpoint_bytes(),
        }
    }
}

impl CommitLogConfig {
    /// Whether `entries` new entries of `bytes` call for a checkpoint.
    pub(super) fn due(&self, (entries, bytes): (u64, u64)) -> bool {
        entries >= self.checkpoint_entries || bytes >= self.checkpoint_bytes.0
    }
}

/// Row groups are the unit readers skip by statistics and split work by.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowGroupConfig {
    #[serde(default = "default_row_group_rows")]
    pub rows: usize,
    /// Encoded size at which a row group is closed before reaching `rows`.
    #[serde(default = "default_row_group_bytes")]
    pub bytes: ByteSize,
}

impl Default for RowGroupConfig {
    fn default() -> Self {
        Self {
            rows: default_row_group_rows(),
            bytes: default_row_group_bytes(),
        }
    }
}

/// When the open files of a Kafka partition are closed and committed,
/// whichever comes first; independent of how batches are sized.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollConfig {
    /// A file this large (bytes written so far, estimated while open).
    #[serde(default = "default_roll_bytes")]
    pub max_bytes: ByteSize,
    #[serde(default = "default_roll_rows")]
    pub max_rows: u64,
    /// Time since the first row went in: bounds freshness, the time from an
    /// event's arrival to its row being readable.
    #[serde(default = "default_roll_interval")]
    pub interval: HumanDuration,
    /// A file no row went into for this long.
    #[serde(default = "default_roll_inactivity")]
    pub inactivity: HumanDuration,
}

impl Default for RollConfig {
    fn default() -> Self {
        Self {
            max_bytes: default_roll_bytes(),
            max_rows: default_roll_rows(),
            interval: default_roll_interval(),
            inactivity: default_roll_inactivity(),
        }
    }
}

impl ParquetSinkConfig {
    /// A sink writing to `path` with every other setting at its default.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self::at_output(OutputPath::Local(path.into()))
    }

    /// A sink writing to `path` (a directory or an object store URL).
    pub fn at_output(path: OutputPath) -> Self {
        Self {
            path,
            s3: S3Options::default(),
            spool_dir: None,
            compression: Compression::default(),
            partition_by: default_partition_by(),
            partition_time: default_partition_time(),
            row_group: RowGroupConfig::default(),
            roll: RollConfig::default(),
            max_open_files: default_max_open_files(),
            max_buffered_bytes: default_max_buffered(),
            encode_threads: None,
            commit_log: CommitLogConfig::default(),
        }
    }

    /// `encode_threads`, or the cores available to the process.
    pub fn encode_threads(&self) -> usize {
        self.encode_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Opens the output root this config names.
    pub fn store(&self) -> Result<Store> {
        let spool = self
            .spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("scorestream-spool"));
        Store::open(&self.path, &self.s3, &spool)
    }
}

/// Problems with the numbers. Partition columns are checked against the
/// output schema by [`super::PartitionSpec::new`].
impl Validate for ParquetSinkConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut out = self.location_problems();
        let positive = [
            (self.row_group.rows > 0, "row_group.rows", "rows"),
            (self.row_group.bytes.0 > 0, "row_group.bytes", "bytes"),
            (self.roll.max_bytes.0 > 0, "roll.max_bytes", "max_bytes"),
            (self.roll.max_rows > 0, "roll.max_rows", "max_rows"),
            (
                self.roll.interval.0 > Duration::ZERO,
                "roll.interval",
                "interval",
            ),
            (
                self.roll.inactivity.0 > Duration::ZERO,
                "roll.inactivity",
                "inactivity",
            ),
            (self.max_open_files > 0, "max_open_files", "max_open_files"),
            (
                self.max_buffered_bytes.0 > 0,
                "max_buffered_bytes",
                "max_buffered_bytes",
            ),
            (
                self.encode_threads != Some(0),
                "encode_threads",
                "encode_threads",
            ),
            (
                self.commit_log.checkpoint_entries > 0,
                "commit_log.checkpoint_entries",
                "checkpoint_entries",
            ),
            (
                self.commit_log.checkpoint_bytes.0 > 0,
                "commit_log.checkpoint_bytes",
                "checkpoint_bytes",
            ),
        ];
        for (ok, key, what) in positive {
            if !ok {
                out.push(ConfigError::new(
                    key,
                    format!("{what} must be greater than zero"),
                ));
            }
        }
        found(out)
    }
}

impl ParquetSinkConfig {
    /// Settings that only make sense for the other kind of output are
    /// refused rather than ignored, since they were set for a reason.
    fn location_problems(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        if self.path.is_object_store() {
            if self.roll.max_bytes.0 > S3_MAX_COPY {
                out.push(ConfigError::new(
                    "roll.max_bytes",
                    format!(
                        "max_bytes is {} bytes but files on S3 are published by a copy, which S3 limits to 5GiB",
                        self.roll.max_bytes.0
                    )));
            }
        } else {
            if !self.s3.is_empty() {
                out.push(ConfigError::new(
                    "s3",
                    "[sink.s3] is set but sink.path is a local directory: use s3://bucket/prefix",
                ));
            }
            if self.spool_dir.is_some() {
                out.push(ConfigError::new(
                    "spool_dir",
                    "spool_dir is only used for object store outputs (s3://bucket/prefix)",
                ));
            }
        }
        out
    }
}

fn default_partition_by() -> Vec<String> {
    vec!["event_date".into(), "event_hour".into()]
}
fn default_partition_time() -> String {
    scorestream_schemas::columns::INGEST_TIME.into()
}
fn default_row_group_rows() -> usize {
    1 << 20
}
fn default_row_group_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_roll_bytes() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_roll_rows() -> u64 {
    10_000_000
}
fn default_roll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_roll_inactivity() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_max_open_files() -> usize {
    64
}
fn default_max_buffered() -> ByteSize {
    ByteSize(128 << 20)
}
fn default_checkpoint_entries() -> u64 {
    1000
}
fn default_checkpoint_bytes() -> ByteSize {
    ByteSize(4 << 20)
}
