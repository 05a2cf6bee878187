//! The Parquet sink: scored rows and dead letters written as Parquet files,
//! each committed atomically (temporary name, fsync, rename, fsync the
//! directory) before the offsets they cover are acknowledged.

mod commit;
mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use commit::{TMP_SUFFIX, write_atomically};
pub use config::{Compression, ParquetSinkConfig};
pub use sink::{Committed, DEAD_LETTERS_DIR, ParquetSink, SCORES_DIR};
