use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use scorestream_schemas::DeadLetterBuilder;
use tracing::{debug, info};

use super::commit::{remove_leftovers, write_atomically};
use super::{Compression, ParquetSinkConfig};
use crate::{Acks, Envelope, OperatorError, Result};

pub const SCORES_DIR: &str = "scores";
pub const DEAD_LETTERS_DIR: &str = "dead_letters";

/// What one [`ParquetSink::write`] made durable.
#[derive(Debug, Default)]
pub struct Committed {
    pub rows: usize,
    pub dead_letters: usize,
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Safe to commit to Kafka now.
    pub acks: Acks,
    /// The rows written, for latency accounting.
    pub batch: Option<RecordBatch>,
}

pub struct ParquetSink {
    scores_dir: PathBuf,
    dead_dir: PathBuf,
    props: WriterProperties,
    run_id: String,
    seq: u64,
}

impl ParquetSink {
    /// Creates the output directories and clears temporary files a crashed
    /// run left behind.
    pub fn open(config: &ParquetSinkConfig) -> Result<Self> {
        let scores_dir = config.path.join(SCORES_DIR);
        let dead_dir = config.path.join(DEAD_LETTERS_DIR);
        for d in [&scores_dir, &dead_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| OperatorError::io(format!("creating {}", d.display()), e))?;
            let n = remove_leftovers(d)?;
            if n > 0 {
                info!(dir = %d.display(), files = n, "removed uncommitted files from an earlier run");
            }
        }
        let compression = match config.compression {
            Compression::Zstd => PqCompression::ZSTD(ZstdLevel::default()),
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let run_id = format!("{}-{}", crate::now_ms(), std::process::id());
        Ok(Self {
            scores_dir,
            dead_dir,
            props,
            run_id,
            seq: 0,
        })
    }

    pub fn scores_dir(&self) -> &Path {
        &self.scores_dir
    }

    /// Writes the envelope's rows and dead letters, each to its own committed
    /// file, and hands back the acks that are now safe to commit.
    pub fn write(&mut self, env: Envelope) -> Result<Committed> {
        let mut c = Committed {
            acks: env.acks,
            ..Default::default()
        };
        if let Some(batch) = env.batch.filter(|b| b.num_rows() > 0) {
            let name = self.next_name();
            c.bytes += write_atomically(&self.scores_dir, &name, &batch, &self.props)?;
            c.rows = batch.num_rows();
            c.files.push(self.scores_dir.join(name));
            c.batch = Some(batch);
        }
        if !env.dead_letters.is_empty() {
            let mut b = DeadLetterBuilder::default();
            env.dead_letters.iter().for_each(|d| b.push(d));
            let batch = b.finish()?;
            let name = self.next_name();
            c.bytes += write_atomically(&self.dead_dir, &name, &batch, &self.props)?;
            c.dead_letters = batch.num_rows();
            c.files.push(self.dead_dir.join(name));
        }
        debug!(
            rows = c.rows,
            dead_letters = c.dead_letters,
            files = c.files.len(),
            "committed"
        );
        Ok(c)
    }

    fn next_name(&mut self) -> String {
        self.seq += 1;
        format!("part-{}-{:06}.parquet", self.run_id, self.seq)
    }
}
