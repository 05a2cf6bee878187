//! The Parquet sink: scored rows and dead letters written as Hive-partitioned
//! Parquet files that roll by size, rows, age or inactivity, each Kafka
//! partition's files committed exactly once together with the offsets they
//! cover (see [`commit_log`]).

mod checkpoint;
#[cfg(test)]
mod checkpoint_tests;
mod commit;
mod commit_log;
pub mod compact;
pub mod compact_object;
mod config;
mod dictionary;
mod encode;
mod lock;
mod merge;
#[cfg(test)]
mod object_tests;
mod open_file;
mod open_set;
mod orphans;
mod partition;
mod properties;
mod route;
mod sink;
mod split;
mod store;
#[cfg(test)]
mod tests;
mod two_phase;

pub(crate) use commit::TMP_SUFFIX;
pub use commit::write_synced;
pub use commit_log::CommitLog;
pub use config::{CommitLogConfig, Compression, ParquetSinkConfig, RollConfig, RowGroupConfig};
pub use partition::{EVENT_DATE, EVENT_HOUR, PartitionSpec};
pub use properties::writer_properties;
pub use sink::{DEAD_LETTERS_DIR, ParquetSink, SCORES_DIR};
pub use store::{ObjectUrl, OutputPath, S3Options, Store};
