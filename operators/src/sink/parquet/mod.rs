//! The Parquet sink: scored rows and dead letters written as Parquet files,
//! one per partition per batch, each committed exactly once together with
//! the Kafka offsets it covers (see [`commit_log`]).

mod commit;
pub mod commit_log;
mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use commit::{TMP_SUFFIX, write_synced};
pub use commit_log::{CommitEntry, CommitLog, CommittedFile, Recovery};
pub use config::{Compression, ParquetSinkConfig};
pub use sink::{Committed, DEAD_LETTERS_DIR, ParquetSink, SCORES_DIR};
